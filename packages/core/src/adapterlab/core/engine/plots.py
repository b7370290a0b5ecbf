"""``curves.png``: training loss, learning rate and evaluation metrics against the step.

Uses matplotlib's object API with the Agg canvas, so it never touches the global backend.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path

__all__ = ["plot_curves"]


def _series(jsonl: Path) -> dict[str, dict[str, tuple[list[int], list[float]]]]:
    out: dict[str, dict[str, tuple[list[int], list[float]]]] = defaultdict(dict)
    for line in jsonl.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        split, step = record.pop("split"), record.pop("step")
        record.pop("epoch", None)
        for key, value in record.items():
            if isinstance(value, int | float) and math.isfinite(value):
                xs, ys = out[split].setdefault(key, ([], []))
                xs.append(step)
                ys.append(value)
    return out


def plot_curves(jsonl: str | Path, png: str | Path) -> Path:
    """Draw every numeric series of ``metrics.jsonl`` (one panel per train/eval quantity)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    jsonl, png = Path(jsonl), Path(png)
    series = _series(jsonl)
    skip = ("samples_per_s", "num_samples")
    panels = [("train", k) for k in series.get("train", {}) if k not in skip]
    panels += [("eval", k) for k in series.get("eval", {}) if k not in skip]
    cols = min(3, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / cols))
    fig = Figure(figsize=(4.5 * cols, 3.2 * rows))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.1, top=0.92, wspace=0.3, hspace=0.55)
    FigureCanvasAgg(fig)
    for i, (split, key) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        xs, ys = series[split][key]
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3)
        ax.set_title(f"{split}/{key}")
        ax.set_xlabel("step")
        if key == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax.grid(alpha=0.3)
    if not panels:
        fig.add_subplot(1, 1, 1).text(0.5, 0.5, "no metrics logged", ha="center")
    tmp = png.with_name(f".{png.stem}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, png)
    return png
