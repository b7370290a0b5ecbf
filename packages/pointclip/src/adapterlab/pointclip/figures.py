"""Figures of the main job: ``views.png`` (depth next to RGB renders) and ``curves.png``.

matplotlib's object API with the Agg canvas is used, so the global backend is never touched;
files are written with the core's atomic write.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from adapterlab.core.engine import atomic_write_bytes

from .models.clip import CLIP_MEAN, CLIP_STD

__all__ = ["plot_run_curves", "plot_views", "to_display"]


def to_display(image: torch.Tensor) -> torch.Tensor:
    """``[3, H, W]`` CLIP-normalised image -> ``[H, W, 3]`` in [0, 1] for imshow."""
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    return (image.detach().cpu().float() * std + mean).clamp(0, 1).permute(1, 2, 0)


def _save(fig, path: Path) -> Path:
    """Render the figure to PNG bytes and write them with the core's atomic write."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())
    return path


def plot_views(
    depth: torch.Tensor,
    rgb: torch.Tensor,
    path: str | Path,
    titles: Sequence[str] | None = None,
    views: Sequence[int] | None = None,
) -> Path:
    """Grid of depth renders next to RGB renders.

    Args:
        depth: ``[N, V, 3, H, W]`` CLIP-normalised depth renders.
        rgb: ``[N, V, 3, H, W]`` CLIP-normalised RGB renders of the same views.
        path: output PNG.
        titles: one label per object (row).
        views: which view indices to show (default: up to 4 spread over V).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n, v = depth.shape[:2]
    if views is None:
        k = min(4, v)
        views = sorted({round(i * (v - 1) / max(1, k - 1)) for i in range(k)})
    cols = 2 * len(views)
    fig = Figure(figsize=(1.6 * cols, 1.7 * n), layout="constrained")
    FigureCanvasAgg(fig)
    for r in range(n):
        for j, view in enumerate(views):
            for k, (img, kind) in enumerate(((depth, "depth"), (rgb, "RGB"))):
                ax = fig.add_subplot(n, cols, r * cols + 2 * j + k + 1)
                ax.imshow(to_display(img[r, view]).numpy())
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"view {view} {kind}", fontsize=8)
                if j == 0 and k == 0 and titles is not None:
                    ax.set_ylabel(titles[r], fontsize=8)
    return _save(fig, Path(path))


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_run_curves(
    runs: Mapping[str, str | Path],
    panels: Sequence[tuple[str, str, str]],
    path: str | Path,
) -> Path:
    """One panel per ``(run name, split, key)`` from engine ``metrics.jsonl`` files.

    ``runs`` maps a run name to its engine run directory. Several entries with the same
    ``split/key`` title but different runs are drawn in the same panel (e.g. pre-trained vs
    untrained DPA validation accuracy).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = {name: _read_jsonl(Path(d) / "metrics.jsonl") for name, d in runs.items()}
    grouped: dict[str, list[tuple[str, list[int], list[float]]]] = {}
    for name, split, key in panels:
        xs, ys = [], []
        for rec in records.get(name, []):
            value = rec.get(key)
            if (
                rec.get("split") == split
                and isinstance(value, int | float)
                and math.isfinite(value)
            ):
                xs.append(int(rec["step"]))
                ys.append(float(value))
        title = f"{name.split(':')[0]} {split}/{key}"
        grouped.setdefault(title, []).append((name, xs, ys))
    cols = min(3, max(1, len(grouped)))
    rows = max(1, math.ceil(len(grouped) / cols))
    fig = Figure(figsize=(4.5 * cols, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (title, lines) in enumerate(grouped.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        for name, xs, ys in lines:
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=name)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=7)
    return _save(fig, Path(path))
