"""Run several PETL methods on the same data and write a comparison table (markdown + JSON)."""

from __future__ import annotations

import dataclasses
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .methods import METHODS, spec
from .train import CommonConfig, RunConfig, prepare, train, write_json

DEFAULT_METHODS = "linear,lora,parallel,conformer"


@dataclass
class SweepConfig(CommonConfig):
    """Train several PETL methods on AST with the same data and compare them (adapterlab.audio)."""

    methods: str = DEFAULT_METHODS
    """Comma-separated methods (see `adapterlab-ast train --help` for the names)."""
    out: str = "runs/ast-sweep"
    """Output folder: one run directory per method, sweep.md, sweep.json (and the embedded data)."""

    def method_list(self) -> list[str]:
        names = [m.strip() for m in self.methods.split(",") if m.strip()]
        if not names:
            raise ValueError("--methods is empty")
        for m in names:
            spec(m)
        if len(set(names)) != len(names):
            raise ValueError(f"--methods lists a method twice: {self.methods}")
        return names


def _fmt_acc(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The comparison table: accuracy (best-validation checkpoint), size, time."""
    lines = [
        "| method | description | test acc % | val acc % | trainable params | % of model | train time s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['description']} | {_fmt_acc(r['test_accuracy'])} | "
            f"{_fmt_acc(r['val_accuracy'])} | {r['trainable_params']:,} | "
            f"{r['percent_trainable']:.2f} | {r['train_seconds']:.1f} |"
        )
    return "\n".join(lines)


def beats_linear(rows: list[dict[str, Any]]) -> dict[str, bool] | None:
    """For every non-linear method: is its test accuracy above the linear probe's? (None without one.)"""
    lin = next((r for r in rows if r["method"] == "linear"), None)
    if lin is None or lin["test_accuracy"] is None:
        return None
    return {
        r["method"]: (r["test_accuracy"] or 0.0) > lin["test_accuracy"]
        for r in rows
        if r["method"] != "linear"
    }


def run_sweep(cfg: SweepConfig) -> dict[str, Any]:
    """Train every method of ``cfg.methods`` on shared precomputed features; write and return the results."""
    methods = cfg.method_list()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    prep = prepare(cfg)
    prep_seconds = time.perf_counter() - start
    print(
        prep.splits.summary(), f"| model: {prep.model_source} | data ready in {prep_seconds:.1f}s"
    )
    common = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(CommonConfig)}
    rows = []
    for m in methods:
        print(f"[sweep] {m}: {METHODS[m].description}", flush=True)
        row = train(RunConfig(method=m, **common), prep, run_dir=out / m)
        print(
            f"[sweep] {m}: test {_fmt_acc(row['test_accuracy'])}% (best val "
            f"{_fmt_acc(row['val_accuracy'])}%), {row['trainable_params']:,} params, "
            f"{row['train_seconds']:.1f}s",
            flush=True,
        )
        rows.append(row)
    table = markdown_table(rows)
    wins = beats_linear(rows)
    result = {
        "dataset": prep.splits.name,
        "data_root": str(prep.root),
        "embedded": cfg.embedded,
        "model": prep.model_source,
        "classes": prep.splits.num_classes,
        "sizes": {k: len(getattr(prep.splits, k)) for k in ("train", "val", "test")},
        "settings": prep.settings,
        "config": cfg.to_dict(),
        "rows": rows,
        "beats_linear": wins,
        "data_seconds": prep_seconds,
        "total_seconds": time.perf_counter() - start,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }
    header = (
        f"# adapterlab-ast sweep: {prep.splits.summary()}\n\n"
        f"Model `{prep.model_source}`, {prep.settings['frames']} frames, {prep.settings['epochs']} epochs, "
        f"batch {prep.settings['batch_size']}. Test accuracy of the best-validation checkpoint.\n\n"
    )
    (out / "sweep.md").write_text(header + table + "\n")
    write_json(out / "sweep.json", result)
    print()
    print(table)
    if wins is not None:
        n = sum(wins.values())
        print(f"\n{n}/{len(wins)} methods beat the linear probe on the test split.")
    print(
        f"Wrote {out / 'sweep.md'} and {out / 'sweep.json'} ({result['total_seconds']:.0f}s total)."
    )
    return result
