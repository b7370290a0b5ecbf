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
from adapterlab.core.engine.seeds import aggregate_seeds, resolve_seeds

from .baselines import logmel_logreg
from .loaders import FOLDS
from .methods import METHODS, parse_method, spec
from .model import DEFAULT_CHECKPOINT, make_tiny_checkpoint
from .paper import PAPER_FEW_SHOT, paper_accuracy, paper_methods
from .train import CommonConfig, Prepared, RunConfig, prepare, train

DEFAULT_METHODS = "linear,lora,parallel,conformer,full"
#: extra rows of the embedded speech demo (see ``--baselines``)
DEMO_BASELINES = "logmel,random:conformer"
#: seeds of the embedded speech demo
DEMO_SEEDS = "3"


@dataclass
class SweepConfig(CommonConfig):
    """Train several PETL methods on AST with the same data and compare them (adapterlab.audio)."""

    methods: str | None = None
    """Comma-separated methods, each optionally with its size as name:size (prompt tokens, prefix vectors
    per layer counting keys and values as the paper does (prefix:24 = 12 + 12), adapter dim or LoRA
    rank), e.g. prompt:300,prompt_deep:25,prompt_deep:100. Without a size each method uses its published
    one. None: linear,lora,parallel,conformer,full (with --preset paper: the paper's Table 1)."""
    folds: str | None = None
    """ESC-50 / UrbanSound8K: 'all' or a list such as 1,3,5 (test folds); the table shows mean +- std.
    None: the single --fold (with --preset paper: all folds)."""
    seeds: str | None = None
    """Repeat every run with these seeds: a count (3 = seeds 0,1,2) or a list (10,11,12; '10,' is the
    single seed 10); the table shows mean +- sample std over seeds. None: --seed only (the embedded
    speech demo: 3 seeds)."""
    baselines: str | None = None
    """Extra reference rows: 'logmel' (logistic regression on each clip's log-mel mean and std, C tuned on
    validation) and 'random:<method>' (<method> on a randomly initialised tiny AST). None:
    'logmel,random:conformer' on the embedded speech demo, none otherwise; '' for none."""
    preset: str | None = None
    """'paper': the paper's Table 1 methods (parallel adapters, PETL-AST's BitFit) unless --methods is
    given, all folds, the original UrbanSound8K protocol unless --us8k_protocol is given, the paper's
    few-shot runs (ESC-50, Speech Commands), and the paper's numbers next to ours."""
    out: str = "runs/ast-sweep"
    """Output folder: one run directory per method (and fold, seed), sweep.md, sweep.json."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.preset not in (None, "paper"):
            raise ValueError(f"preset must be 'paper' or unset, got {self.preset!r}")
        self.baseline_list()  # fail early on a bad --baselines

    def with_preset(self) -> SweepConfig:
        """This config with ``--preset paper``'s defaults filled in where the user left a field unset:
        the original UrbanSound8K protocol (the methods and folds are resolved by :meth:`method_list`
        and :meth:`fold_list`). Explicit settings always win."""
        if self.preset == "paper" and self.us8k_protocol is None:
            return dataclasses.replace(self, us8k_protocol="original")
        return self

    @property
    def demo_speech(self) -> bool:
        return self.embedded and self.demo == "speech"

    def method_list(self) -> list[tuple[str, int | None]]:
        """``(method, size)`` pairs of ``--methods`` (or of the paper preset)."""
        if self.methods is None:
            if self.preset == "paper":
                return [(m, None) for m in paper_methods()]
            return [parse_method(m) for m in DEFAULT_METHODS.split(",")]
        entries = [m.strip() for m in self.methods.split(",") if m.strip()]
        if not entries:
            raise ValueError("--methods is empty")
        if len(set(entries)) != len(entries):
            raise ValueError(f"--methods lists a method twice: {self.methods}")
        return [parse_method(m) for m in entries]

    def baseline_list(self) -> list[str]:
        """``--baselines`` entries: ``"logmel"`` and ``"random:<method>"``."""
        spec_ = self.baselines if self.baselines is not None else ""
        if self.baselines is None and self.demo_speech:
            spec_ = DEMO_BASELINES
        out = [b.strip() for b in spec_.split(",") if b.strip()]
        for b in out:
            kind, _, method = b.partition(":")
            if kind == "random" and method:
                spec(method)
            elif b != "logmel":
                raise ValueError(f"--baselines: unknown entry {b!r} (logmel or random:<method>)")
        return out

    def seed_list(self) -> list[int]:
        """Seeds of ``--seeds`` (default: ``--seed``, or 3 seeds on the embedded speech demo)."""
        spec_ = self.seeds if self.seeds is not None else (DEMO_SEEDS if self.demo_speech else None)
        return resolve_seeds(spec_, default=(self.seed,))

    def resolved_dataset(self) -> str:
        """The dataset layout the sweep runs on (the embedded demos' included)."""
        if self.embedded:
            return "speech_commands" if self.demo == "speech" else "esc50"
        return self.dataset

    def fold_list(self, dataset: str) -> list[int | None]:
        """Test folds to run (``[None]``: the dataset's single split or ``--fold``)."""
        folds = self.folds
        if folds is None and self.preset == "paper" and dataset in FOLDS:
            folds = "all"
        if folds is None:
            return [self.fold]
        if dataset not in FOLDS:
            where = " (the embedded speech demo)" if self.demo_speech else ""
            raise ValueError(
                f"{dataset}{where} has official splits; --folds applies to esc50 and urbansound8k"
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
    """The :class:`RunConfig` of one sweep entry (``size`` goes where the method's size lives).

    A prefix size counts key and value vectors together, as the paper's "Prefix-24" (12 + 12) does.
    """
    kw = dict(common)
    if size is not None:
        kind = spec(method).kind
        key = {"prompt": "num_prompts", "prefix": "num_prefix"}.get(kind, "dim")
        kw[key] = size // 2 if kind == "prefix" else size
    return RunConfig(method=method, **kw)


def _fmt_acc(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per (label, shots): the test accuracy's mean over folds and seeds, and its spread.

    ``test_std`` is the sample std over seeds of the per-seed means over folds (core ``SeedStats``) when
    there are several seeds, else the population std over folds.
    """
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["label"], r.get("few_shot")), []).append(r)
    out = []
    for (name, shots), rs in groups.items():
        accs = [r["test_accuracy"] for r in rs if r["test_accuracy"] is not None]
        seeds = sorted({r.get("seed") for r in rs}, key=str)
        folds = list(dict.fromkeys(r.get("fold") for r in rs))
        per_seed = {
            seed: {
                "test": statistics.fmean(
                    r["test_accuracy"]
                    for r in rs
                    if r.get("seed") == seed and r["test_accuracy"] is not None
                )
            }
            for seed in seeds
            if any(r.get("seed") == seed and r["test_accuracy"] is not None for r in rs)
        }
        if len(per_seed) > 1:
            stats = aggregate_seeds(per_seed)["test"]
            mean, std = stats.mean, stats.std
        else:
            mean = statistics.fmean(accs) if accs else None
            std = statistics.pstdev(accs) if len(accs) > 1 else 0.0
        vals = [r["val_accuracy"] for r in rs if r["val_accuracy"] is not None]
        out.append(
            {
                "label": name,
                "method": rs[0]["method"],
                "few_shot": shots,
                "description": rs[0]["description"],
                "folds": folds,
                "seeds": seeds,
                "test_accuracy": mean,
                "test_std": std,
                "per_seed": {str(k): v["test"] for k, v in per_seed.items()},
                "val_accuracy": statistics.fmean(vals) if vals else None,
                "trainable_params": rs[0]["trainable_params"],
                "percent_trainable": rs[0]["percent_trainable"],
                "train_seconds": sum(r["train_seconds"] for r in rs),
                "skipped_samples": sum(r["skipped_samples"] for r in rs),
                "paper": rs[0].get("paper"),
            }
        )
    return out


def _spread(r: dict[str, Any]) -> str:
    n_seeds, n_folds = len(r.get("seeds") or [None]), len(r["folds"])
    parts = [f"{n_seeds} seeds" if n_seeds > 1 else "", f"{n_folds} folds" if n_folds > 1 else ""]
    what = " x ".join(p for p in parts if p)
    return f" ± {100 * r['test_std']:.2f} ({what})" if what else ""


def markdown_table(lines: list[dict[str, Any]], paper: bool = True) -> str:
    """The comparison table: test accuracy (mean ± std over seeds or folds), the paper's number (when
    ``paper``), size, time."""
    cols = ["method", "description", "test acc %"] + (["paper %"] if paper else [])
    cols += ["val acc %", "trainable params", "% of model", "train time s"]
    header = [
        "| " + " | ".join(cols) + " |",
        "|---|---|" + "---:|" * (len(cols) - 2),
    ]
    for r in lines:
        acc = _fmt_acc(r["test_accuracy"]) + _spread(r)
        name = r["label"] + (f" ({r['few_shot']}-shot)" if r.get("few_shot") else "")
        cells = [name, r["description"], acc]
        if paper:
            cells.append("-" if r.get("paper") is None else f"{r['paper']:.2f}")
        cells += [
            _fmt_acc(r["val_accuracy"]),
            f"{r['trainable_params']:,}",
            f"{r['percent_trainable']:.2f}",
            f"{r['train_seconds']:.1f}",
        ]
        header.append("| " + " | ".join(cells) + " |")
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


def is_paper_checkpoint(source: str) -> bool:
    """The paper's AudioSet-finetuned AST, by hub id or as a local copy named after it."""
    return source == DEFAULT_CHECKPOINT or Path(source).name == DEFAULT_CHECKPOINT.split("/")[-1]


def paper_number(
    cfg: SweepConfig, prep: Prepared, method: str, size: int | None, shots: int | None
) -> float | None:
    """The paper's accuracy for this entry, only where it is comparable: the real dataset, the paper's
    checkpoint, the published size and (UrbanSound8K) the original protocol."""
    if cfg.embedded or size is not None or not is_paper_checkpoint(prep.model_source):
        return None
    if prep.dataset == "urbansound8k" and prep.settings["test_from"] != "last":
        return None
    return paper_accuracy(method, prep.dataset, shots)


def _entries(
    cfg: SweepConfig, dataset: str, shots: int | None
) -> list[tuple[str, str, int | None, str | None]]:
    """``(label, method, size, backbone)`` to run; backbone ``"random"`` for the random-backbone rows."""
    todo = [(label(m, s), m, s, None) for m, s in cfg.method_list()]
    if shots is not None and cfg.preset == "paper" and dataset in PAPER_FEW_SHOT:
        todo = [e for e in todo if e[1] in PAPER_FEW_SHOT[dataset].get(shots, {})]
    for b in cfg.baseline_list():
        kind, _, method = b.partition(":")
        todo.append((b if kind == "random" else "logmel_logreg", method or b, None, kind))
    return todo


def _sub_dir(fold: int | None, shots: int | None, seed: int | None, many: tuple) -> Path:
    parts = [
        f"fold{fold}" if many[0] else None,
        f"{shots}shot" if shots else None,
        f"seed{seed}" if many[1] else None,
    ]
    return Path(*[p for p in parts if p]) if any(parts) else Path()


def run_sweep(cfg: SweepConfig) -> dict[str, Any]:
    """Train every entry of ``cfg.methods`` on every fold and seed; write and return the results."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    cfg = cfg.with_preset()
    dataset = cfg.resolved_dataset()
    folds = cfg.fold_list(dataset)
    seeds = cfg.seed_list()
    shots_list: list[int | None] = [cfg.few_shot]
    if cfg.preset == "paper" and dataset in PAPER_FEW_SHOT:
        shots_list += list(PAPER_FEW_SHOT[dataset])
    common_fields = [f.name for f in dataclasses.fields(CommonConfig)]
    rows: list[dict[str, Any]] = []
    preps: list[Prepared] = []
    data_seconds = 0.0
    many = (len(folds) > 1, len(seeds) > 1)
    for fold in folds:
        for shots in shots_list:
            for seed in seeds:
                t0 = time.perf_counter()
                run_cfg = dataclasses.replace(cfg, fold=fold, few_shot=shots, seed=seed)
                prep = prepare(run_cfg, preps)
                preps.append(prep)
                data_seconds += time.perf_counter() - t0
                print(
                    f"{prep.splits.summary()} | fold {fold} | seed {seed} | model: {prep.model_source}",
                    flush=True,
                )
                common = {k: getattr(run_cfg, k) for k in common_fields}
                for name, method, size, backbone in _entries(cfg, prep.dataset, shots):
                    row = _run_entry(
                        run_cfg,
                        common,
                        prep,
                        name,
                        method,
                        size,
                        backbone,
                        out / _sub_dir(fold, shots, seed, many),
                    )
                    row.update(label=name, fold=fold, few_shot=shots, seed=seed)
                    row["paper"] = (
                        None if backbone else paper_number(cfg, prep, method, size, shots)
                    )
                    print(
                        f"[sweep] {name}: test {_fmt_acc(row['test_accuracy'])}% (val "
                        f"{_fmt_acc(row['val_accuracy'])}%), {row['trainable_params']:,} params, "
                        f"{row['train_seconds']:.1f}s",
                        flush=True,
                    )
                    rows.append(row)
    prep = preps[-1]
    lines = summarise(rows)
    with_paper = any(r.get("paper") is not None for r in lines)
    table = markdown_table(lines, paper=with_paper)
    wins = beats_linear(lines)
    result = {
        "dataset": prep.splits.name,
        "data_root": str(prep.root),
        "embedded": cfg.embedded,
        "model": prep.model_source,
        "classes": prep.splits.num_classes,
        "folds": folds,
        "seeds": seeds,
        "sizes": {k: len(getattr(prep.splits, k)) for k in ("train", "val", "test")},
        "settings": prep.settings,
        "config": cfg.to_dict(),
        "summary": lines,
        "rows": rows,
        "beats_linear": wins,
        "clips_featurised": sum(p.computed for p in preps),
        "data_seconds": data_seconds,
        "total_seconds": time.perf_counter() - start,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }
    atomic_write_text(out / "sweep.md", _header(cfg, prep, folds, seeds, with_paper) + table + "\n")
    atomic_write_json(out / "sweep.json", result)
    print()
    print(table)
    if wins is not None:
        n = sum(wins.values())
        print(f"\n{n}/{len(wins)} other rows beat the linear probe on the test split.")
    print(
        f"Wrote {out / 'sweep.md'} and {out / 'sweep.json'} ({result['total_seconds']:.0f}s total)."
    )
    return result


def _run_entry(
    cfg: SweepConfig,
    common: dict[str, Any],
    prep: Prepared,
    name: str,
    method: str,
    size: int | None,
    backbone: str | None,
    where: Path,
) -> dict[str, Any]:
    if backbone == "logmel":
        print("[sweep] logmel_logreg: logistic regression on log-mel mean + std", flush=True)
        return logmel_logreg(prep.features, prep.splits.num_classes, seed=cfg.seed)
    if backbone == "random":
        random_ast = make_tiny_checkpoint(Path(cfg.out) / "random-ast", seed=0)
        prep = dataclasses.replace(prep, model_source=str(random_ast))
    print(f"[sweep] {name}: {METHODS[method].description}", flush=True)
    row = train(run_config(common, method, size), prep, run_dir=where / name.replace(":", "-"))
    if backbone == "random":
        row["description"] += " on a random tiny AST (no pre-training)"
    return row


def _header(
    cfg: SweepConfig, prep: Prepared, folds: list, seeds: list[int], with_paper: bool
) -> str:
    s = prep.settings
    tested = (
        "Test accuracy of the last epoch's weights (original UrbanSound8K protocol: no validation "
        "fold, so nothing is selected; PETL-AST's numbers are last-epoch too)"
        if s["test_from"] == "last"
        else "Test accuracy of the best-validation checkpoint"
    )
    spread = "mean ± std over seeds" if len(seeds) > 1 else "mean ± std over folds"
    if len(seeds) == 1 and len(folds) == 1:
        spread = f"one seed ({seeds[0]})"
    paper = "; paper: Cappellazzo et al. 2024, Table 1 / few-shot figure" if with_paper else ""
    return (
        f"# adapterlab-ast sweep: {prep.splits.summary()}\n\n"
        f"Model `{prep.model_source}`, {s['frames']} frames, {s['epochs']} epochs, "
        f"batch {s['batch_size']}, folds {folds}, seeds {seeds}. {tested} ({spread}){paper}.\n\n"
    )
