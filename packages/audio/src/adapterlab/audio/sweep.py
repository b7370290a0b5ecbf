"""Run several PETL methods on the same data (over one or several folds) and write a comparison table."""

from __future__ import annotations

import dataclasses
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from adapterlab.core.engine import atomic_write_json, atomic_write_text

from .loaders import FOLDS
from .methods import METHODS, parse_method, spec
from .paper import PAPER_FEW_SHOT, paper_accuracy, paper_methods
from .train import CommonConfig, Prepared, RunConfig, prepare, train

DEFAULT_METHODS = "linear,lora,parallel,conformer,full"


@dataclass
class SweepConfig(CommonConfig):
    """Train several PETL methods on AST with the same data and compare them (adapterlab.audio)."""

    methods: str = DEFAULT_METHODS
    """Comma-separated methods, each optionally with its size as name:size (prompt/prefix tokens, adapter
    dim or LoRA rank), e.g. prompt:300,prompt_deep:25,prompt_deep:100. Without a size each method uses
    its published one."""
    folds: str | None = None
    """ESC-50 / UrbanSound8K: 'all' or a list such as 1,3,5 (test folds); the table shows mean +- std.
    None: the single --fold."""
    preset: str | None = None
    """'paper': every method of the paper's Table 1 (parallel adapters, PETL-AST's BitFit), all folds,
    the original UrbanSound8K protocol, the paper's few-shot runs (ESC-50, Speech Commands), and the
    paper's numbers next to ours."""
    out: str = "runs/ast-sweep"
    """Output folder: one run directory per method (and fold), sweep.md, sweep.json."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.preset not in (None, "paper"):
            raise ValueError(f"preset must be 'paper' or unset, got {self.preset!r}")

    def method_list(self) -> list[tuple[str, int | None]]:
        """``(method, size)`` pairs of ``--methods`` (or of the paper preset)."""
        if self.preset == "paper":
            return [(m, None) for m in paper_methods()]
        entries = [m.strip() for m in self.methods.split(",") if m.strip()]
        if not entries:
            raise ValueError("--methods is empty")
        if len(set(entries)) != len(entries):
            raise ValueError(f"--methods lists a method twice: {self.methods}")
        return [parse_method(m) for m in entries]

    def fold_list(self, dataset: str) -> list[int | None]:
        """Test folds to run (``[None]``: the dataset's single split or ``--fold``)."""
        folds = "all" if self.preset == "paper" and dataset in FOLDS else self.folds
        if folds is None:
            return [self.fold]
        if dataset not in FOLDS:
            raise ValueError(
                f"{dataset} has official splits; --folds applies to esc50 and urbansound8k"
            )
        if folds == "all":
            return list(range(1, FOLDS[dataset] + 1))
        try:
            chosen = [int(f) for f in folds.split(",") if f.strip()]
        except ValueError:
            raise ValueError(
                f"--folds must be 'all' or a comma-separated list, got {folds!r}"
            ) from None
        bad = [f for f in chosen if not 1 <= f <= FOLDS[dataset]]
        if bad or not chosen or len(set(chosen)) != len(chosen):
            raise ValueError(f"--folds {folds!r}: need distinct folds in 1..{FOLDS[dataset]}")
        return chosen


def label(method: str, size: int | None) -> str:
    return method if size is None else f"{method}:{size}"


def run_config(common: dict[str, Any], method: str, size: int | None) -> RunConfig:
    """The :class:`RunConfig` of one sweep entry (``size`` goes where the method's size lives)."""
    kw = dict(common)
    if size is not None:
        key = {"prompt": "num_prompts", "prefix": "num_prefix"}.get(spec(method).kind, "dim")
        kw[key] = size
    return RunConfig(method=method, **kw)


def _fmt_acc(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per (label, shots): mean and std of the test accuracy over folds."""
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["label"], r.get("few_shot")), []).append(r)
    out = []
    for (name, shots), rs in groups.items():
        accs = [r["test_accuracy"] for r in rs if r["test_accuracy"] is not None]
        out.append(
            {
                "label": name,
                "method": rs[0]["method"],
                "few_shot": shots,
                "description": rs[0]["description"],
                "folds": [r.get("fold") for r in rs],
                "test_accuracy": statistics.fmean(accs) if accs else None,
                "test_std": statistics.pstdev(accs) if len(accs) > 1 else 0.0,
                "val_accuracy": statistics.fmean(r["val_accuracy"] or 0.0 for r in rs),
                "trainable_params": rs[0]["trainable_params"],
                "percent_trainable": rs[0]["percent_trainable"],
                "train_seconds": sum(r["train_seconds"] for r in rs),
                "skipped_samples": sum(r["skipped_samples"] for r in rs),
                "paper": rs[0].get("paper"),
            }
        )
    return out


def markdown_table(lines: list[dict[str, Any]]) -> str:
    """The comparison table: test accuracy (mean +- std over folds), the paper's number, size, time."""
    header = [
        "| method | description | test acc % | paper % | val acc % | trainable params | "
        "% of model | train time s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in lines:
        n = len(r["folds"])
        acc = _fmt_acc(r["test_accuracy"])
        if n > 1:
            acc += f" ± {100 * r['test_std']:.2f} ({n} folds)"
        name = r["label"] + (f" ({r['few_shot']}-shot)" if r.get("few_shot") else "")
        paper = "-" if r.get("paper") is None else f"{r['paper']:.2f}"
        header.append(
            f"| {name} | {r['description']} | {acc} | {paper} | {_fmt_acc(r['val_accuracy'])} | "
            f"{r['trainable_params']:,} | {r['percent_trainable']:.2f} | {r['train_seconds']:.1f} |"
        )
    return "\n".join(header)


def beats_linear(lines: list[dict[str, Any]]) -> dict[str, bool] | None:
    """For every other full-data line: is its mean test accuracy above the linear probe's?"""
    full = [r for r in lines if not r.get("few_shot")]
    lin = next((r for r in full if r["label"] == "linear"), None)
    if lin is None or lin["test_accuracy"] is None:
        return None
    return {
        r["label"]: (r["test_accuracy"] or 0.0) > lin["test_accuracy"]
        for r in full
        if r["label"] != "linear"
    }


def run_sweep(cfg: SweepConfig) -> dict[str, Any]:
    """Train every entry of ``cfg.methods`` on every fold; write and return the results."""
    entries = cfg.method_list()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if cfg.preset == "paper" and cfg.dataset == "urbansound8k":
        cfg = dataclasses.replace(cfg, us8k_protocol="original")
    dataset = cfg.dataset if not cfg.embedded else None
    folds = cfg.fold_list(dataset) if dataset else [cfg.fold]
    shots_list: list[int | None] = [cfg.few_shot]
    if cfg.preset == "paper" and dataset in PAPER_FEW_SHOT:
        shots_list += list(PAPER_FEW_SHOT[dataset])
    common_fields = [f.name for f in dataclasses.fields(CommonConfig)]
    rows: list[dict[str, Any]] = []
    prep: Prepared | None = None
    data_seconds = 0.0
    for fold in folds:
        for shots in shots_list:
            t0 = time.perf_counter()
            fold_cfg = dataclasses.replace(cfg, fold=fold, few_shot=shots)
            prep = prepare(fold_cfg)
            data_seconds += time.perf_counter() - t0
            print(prep.splits.summary(), f"| fold {fold} | model: {prep.model_source}", flush=True)
            common = {k: getattr(fold_cfg, k) for k in common_fields}
            todo = entries
            if shots is not None and cfg.preset == "paper":
                todo = [(m, s) for m, s in entries if m in PAPER_FEW_SHOT[dataset][shots]]
            for method, size in todo:
                name = label(method, size)
                sub = Path(
                    *[
                        p
                        for p in (
                            f"fold{fold}" if len(folds) > 1 else None,
                            f"{shots}shot" if shots else None,
                        )
                        if p
                    ]
                )
                print(f"[sweep] {name}: {METHODS[method].description}", flush=True)
                row = train(run_config(common, method, size), prep, run_dir=out / sub / name)
                row.update(label=name, fold=fold, few_shot=shots)
                row["paper"] = None if cfg.embedded else paper_accuracy(method, prep.dataset, shots)
                print(
                    f"[sweep] {name}: test {_fmt_acc(row['test_accuracy'])}% (best val "
                    f"{_fmt_acc(row['val_accuracy'])}%), {row['trainable_params']:,} params, "
                    f"{row['train_seconds']:.1f}s",
                    flush=True,
                )
                rows.append(row)
    assert prep is not None
    lines = summarise(rows)
    table = markdown_table(lines)
    wins = beats_linear(lines)
    result = {
        "dataset": prep.splits.name,
        "data_root": str(prep.root),
        "embedded": cfg.embedded,
        "model": prep.model_source,
        "classes": prep.splits.num_classes,
        "folds": folds,
        "sizes": {k: len(getattr(prep.splits, k)) for k in ("train", "val", "test")},
        "settings": prep.settings,
        "config": cfg.to_dict(),
        "summary": lines,
        "rows": rows,
        "beats_linear": wins,
        "data_seconds": data_seconds,
        "total_seconds": time.perf_counter() - start,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }
    header = (
        f"# adapterlab-ast sweep: {prep.splits.summary()}\n\n"
        f"Model `{prep.model_source}`, {prep.settings['frames']} frames, {prep.settings['epochs']} epochs, "
        f"batch {prep.settings['batch_size']}, folds {folds}. Test accuracy of the best-validation "
        "checkpoint (mean ± std over folds); paper: Cappellazzo et al. 2024, Table 1 / few-shot figure.\n\n"
    )
    atomic_write_text(out / "sweep.md", header + table + "\n")
    atomic_write_json(out / "sweep.json", result)
    print()
    print(table)
    if wins is not None:
        n = sum(wins.values())
        print(f"\n{n}/{len(wins)} methods beat the linear probe on the test split.")
    print(
        f"Wrote {out / 'sweep.md'} and {out / 'sweep.json'} ({result['total_seconds']:.0f}s total)."
    )
    return result
