"""Training through the core engine: TTC for the NER adapter, then the downstream variants."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from adapterlab.core import save_adapter, trainable_summary
from adapterlab.core.engine import (
    TrainConfig,
    Trainer,
    atomic_write_json,
    atomic_write_text,
    evaluate,
    resolve_device,
    seed_everything,
)
from torch.utils.data import DataLoader

from .config import PrepareConfig, TaskConfig, TTCConfig, apply_preset
from .data.codexglue import load_task
from .data.embedded import module_split, write_refinement, write_summarization
from .data.sources import SourceStats, find_sources, stdlib_root
from .data.token_types import TOKEN_TYPES
from .data.ttc import TTCSettings, build_ttc_dataset, label_counts
from .methods import NER, TASK, add_ner_adapter, apply_variant, variant
from .models.backbone import load_backbone
from .models.ner import TokenTypeModel
from .models.seq2seq import Seq2Seq
from .task import (
    PairDataset,
    class_weights,
    pair_collate,
    prediction_files,
    seq2seq_eval_step,
    seq2seq_loss,
    seq2seq_metric_fn,
    ttc_collate,
    ttc_eval_step,
    ttc_loss_fn,
    ttc_metric_fn,
    ttc_metrics,
)

__all__ = [
    "evaluate_run",
    "prepare",
    "split_sources",
    "task_references",
    "train_task",
    "train_ttc",
]


def _cores(num_proc: int | None) -> int:
    return num_proc or os.cpu_count() or 1


def split_sources(
    source: str | None, languages: list[str] | None, max_files: int | None
) -> tuple[dict[str, list[tuple[str, str]]], Path]:
    """TTC files split by module: the top-level folder/module under the root decides the split
    (a hash), so test files come from modules never seen in training."""
    root = Path(source) if source is not None else stdlib_root()
    files = find_sources(root, languages)
    if source is None:
        from .data.embedded import stdlib_files

        allowed = {str(p) for p in stdlib_files(root)}
        files = [f for f in files if f[0] in allowed]
    groups: dict[str, list[tuple[str, str]]] = {"train": [], "valid": [], "test": []}
    tops = {Path(p).relative_to(root).parts[0] for p, _ in files} if root.is_dir() else set()
    by_module = len(tops) >= 10
    for path, lang in files:
        rel = Path(path).relative_to(root) if root.is_dir() else Path(Path(path).name)
        key = rel.parts[0].removesuffix(".py") if by_module else str(rel)
        groups[module_split(key)].append((path, lang))
    if max_files is not None:
        caps = {"train": max_files, "valid": max(2, max_files // 8), "test": max(2, max_files // 8)}
        for split, items in groups.items():
            if len(items) > caps[split]:
                step = len(items) / caps[split]
                groups[split] = [items[int(i * step)] for i in range(caps[split])]
    if not groups["train"]:
        raise ValueError(f"no training files under {root}")
    for split in ("valid", "test"):
        if not groups[split]:  # a tiny folder: borrow from train so every split exists
            groups[split] = groups["train"][-1:]
    return groups, root


def _settings(cfg: PrepareConfig | TTCConfig) -> TTCSettings:
    return TTCSettings(
        max_length=cfg.max_length,
        keep_parse_errors=cfg.keep_parse_errors,
        on_bad_file=cfg.on_bad_file,
        max_file_bytes=cfg.max_file_bytes,
        max_line_chars=cfg.max_line_chars,
        max_error_rate=cfg.max_error_rate,
    )


def _files_report(stats: SourceStats) -> dict[str, Any]:
    return {**stats.as_dict(), "skipped_files": stats.skipped_files}


def prepare_ttc(
    groups: dict[str, list[tuple[str, str]]],
    tokenizer: Any,
    settings: TTCSettings,
    num_proc: int | None,
    cache_dir: str | None,
) -> tuple[dict[str, Any], dict[str, SourceStats]]:
    """TTC windows and stats per split; skipped files are counted, and named on stderr (the
    first few) and in the reports (all)."""
    data, stats = {}, {}
    for split, files in groups.items():
        data[split], stats[split] = build_ttc_dataset(
            files, tokenizer, settings, num_proc=_cores(num_proc), cache_dir=cache_dir
        )
        if stats[split].skipped:
            named = "; ".join(stats[split].skipped_files[:3])
            more = len(stats[split].skipped_files) - 3
            tail = f" (+{more} more in the report)" if more > 0 else ""
            print(f"TTC {split}: {stats[split].summary()}: {named}{tail}", file=sys.stderr)
    return data, stats


def prepare(cfg: PrepareConfig) -> dict[str, Any]:
    """The ``prepare`` subcommand: cached TTC windows + summarization + refinement folders."""
    _, tokenizer = load_backbone(cfg.model)
    groups, root = split_sources(cfg.source, cfg.languages, cfg.max_files)
    settings = _settings(cfg)
    out = Path(cfg.out)
    start = time.perf_counter()
    data, stats = prepare_ttc(groups, tokenizer, settings, cfg.num_proc, str(out / "cache"))
    report: dict[str, Any] = {
        "root": str(root),
        "ttc_seconds": round(time.perf_counter() - start, 2),
        "ttc": {
            split: {**_files_report(stats[split]), "windows": len(data[split])} for split in data
        },
    }
    if cfg.summaries:
        limits = None
        if cfg.max_summaries is not None:
            limits = {"train": cfg.max_summaries, "valid": 200, "test": 200}
        report["summarization"] = write_summarization(
            out / "summarization", root=root, max_per_split=limits
        )
        report["refinement"] = str(write_refinement(out / "refinement"))
    atomic_write_json(out / "prepare.json", report)
    return report


# ---------------------------------------------------------------------------- TTC
def train_ttc(cfg: TTCConfig, *, progress: bool = True) -> dict[str, Any]:
    """Train the NER adapter + token-type head with TTC on a frozen encoder.

    Writes the engine run directory to ``cfg.out``, the adapter (with head) to
    ``<out>/ner_adapter`` and ``<out>/ttc_report.json`` (test accuracy, macro/per-type F1, the
    majority-type baseline, preprocessing stats, trainable share).
    """
    seed_everything(cfg.seed)
    encoder, tokenizer = load_backbone(cfg.model, seed=cfg.seed)
    groups, root = split_sources(cfg.source, cfg.languages, cfg.max_files)
    settings = _settings(cfg)
    data, stats = prepare_ttc(groups, tokenizer, settings, cfg.num_proc, cfg.cache_dir)
    if len(data["train"]) == 0:
        raise ValueError(f"no usable TTC windows under {root} (all files skipped: {stats})")
    counts = label_counts(data["train"]["labels"])
    model = TokenTypeModel(encoder, len(TOKEN_TYPES))
    add_ner_adapter(model, cfg.adapter, cfg.reduction_factor, head="ttc_head", seed=cfg.seed)
    summary = trainable_summary(model)
    weights = class_weights(counts, cfg.class_weighting)
    train_cfg = TrainConfig(
        output_dir=cfg.out,
        max_steps=cfg.steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        scheduler="linear_warmup",
        warmup_steps=max(1, cfg.steps // 10),
        eval_every_steps=cfg.eval_every,
        metric="accuracy",
        seed=cfg.seed,
        overwrite=cfg.overwrite,
        progress=progress,
        keep_last=1,
    )
    collate = ttc_collate(tokenizer.pad_token_id)
    trainer = Trainer(
        model,
        train_cfg,
        train_data=data["train"].with_format(None),
        eval_data=data["valid"],
        loss_fn=ttc_loss_fn(weights),  # the test pass below (per-type F1) uses the best weights
        eval_step=ttc_eval_step,
        metric_fn=ttc_metric_fn,
        collate_fn=collate,
        adapter_name=NER,
        run_config={"ttc": dataclasses.asdict(cfg)},
    )
    start = time.perf_counter()
    result = trainer.fit()
    seconds = time.perf_counter() - start
    save_adapter(model, Path(cfg.out) / "ner_adapter", NER)
    # full report on the test modules (per-type F1 and the majority-type baseline)
    outputs: dict[str, list] = {"pred": [], "target": []}

    def collect(m: Any, batch: dict) -> dict[str, torch.Tensor]:
        out = ttc_eval_step(m, batch)
        outputs["pred"].append(out["pred"].cpu())
        outputs["target"].append(out["target"].cpu())
        return {}

    evaluate(
        model,
        DataLoader(data["test"], batch_size=cfg.batch_size, collate_fn=collate),
        collect,
        lambda _: {},
        device=resolve_device(None),
        progress=False,
    )
    pred = torch.cat(outputs["pred"]).numpy()
    target = torch.cat(outputs["target"]).numpy()
    majority = int(np.argmax(counts))
    report = {
        "model": cfg.model,
        "test": ttc_metrics(pred, target),
        "majority_type": TOKEN_TYPES[majority],
        "majority_accuracy": float((target == majority).mean()) if len(target) else 0.0,
        "majority_macro_f1": ttc_metrics(np.full_like(target, majority), target)["macro_f1"],
        "test_tokens": int(len(target)),
        "train_type_counts": {TOKEN_TYPES[k]: int(c) for k, c in enumerate(counts)},
        "files": {split: _files_report(stats[split]) for split in stats},
        "windows": {split: len(data[split]) for split in data},
        "trainable_params": summary.trainable,
        "total_params": summary.total,
        "trainable_percent": summary.percent,
        "train_seconds": round(seconds, 1),
        "best_step": result.best_step,
        "class_weighting": cfg.class_weighting,
        "ner_adapter": str(Path(cfg.out) / "ner_adapter"),
    }
    atomic_write_json(Path(cfg.out) / "ttc_report.json", report)
    return report


# ---------------------------------------------------------------------------- downstream
def _task_root(cfg: TaskConfig) -> Path:
    if cfg.data is not None:
        return Path(cfg.data)
    root = Path("data/code") / ("summarization" if cfg.task == "summarization" else "refinement")
    if not root.exists():
        raise FileNotFoundError(
            f"{root} not found: run `adapterlab-code prepare` first or pass --data FOLDER"
        )
    return root


def _cap(pairs: list, limit: int | None) -> list:
    return pairs if limit is None or len(pairs) <= limit else pairs[:limit]


def build_task_model(cfg: TaskConfig) -> tuple[Seq2Seq, Any]:
    """The encoder-decoder of ``cfg.variant`` with its adapters added (weights untrained)."""
    cfg = apply_preset(cfg)
    spec = variant(cfg.variant)
    encoder, tokenizer = load_backbone(cfg.model, seed=cfg.seed)
    model = Seq2Seq(
        encoder,
        decoder_layers=cfg.decoder_layers,
        decoder_ffn=cfg.decoder_ffn,
        sos_id=tokenizer.cls_token_id,
        eos_id=tokenizer.sep_token_id,
        pad_id=tokenizer.pad_token_id,
    )
    apply_variant(model, spec, cfg.task_reduction_factor, cfg.ner_adapter, seed=cfg.seed)
    return model, tokenizer


def task_references(pairs: list) -> list[str]:
    """The references a split is scored against: the targets as read, untouched (only the
    training targets are truncated to ``max_target_length``), as CodeXGLUE's evaluators
    read them from the gold files."""
    return [p.target for p in pairs]


def train_task(cfg: TaskConfig, *, progress: bool = True) -> dict[str, Any]:
    """Fine-tune one variant; returns (and writes ``<out>/task_report.json``) its test scores."""
    cfg = apply_preset(cfg)
    seed_everything(cfg.seed)
    spec = variant(cfg.variant)
    root = _task_root(cfg)
    splits = {
        s: load_task(cfg.task, root, s, skip_bad=cfg.skip_bad_samples)
        for s in ("train", "valid", "test")
    }
    model, tokenizer = build_task_model(cfg)
    pairs = {
        "train": _cap(splits["train"].pairs, cfg.max_train),
        "valid": _cap(splits["valid"].pairs, cfg.max_valid or cfg.max_eval),
        "test": _cap(splits["test"].pairs, cfg.max_eval),
    }
    sets = {
        s: PairDataset(p, tokenizer, cfg.max_source_length, cfg.max_target_length)
        for s, p in pairs.items()
    }
    refs = {s: task_references(p) for s, p in pairs.items()}
    lr = cfg.lr if cfg.lr is not None else spec.lr
    decoder_ids = {id(p) for m in (model.decoder, model.output_dense) for p in m.parameters()}

    def groups(m: Any) -> list[dict]:
        trainable = [p for p in m.parameters() if p.requires_grad]
        dec = [p for p in trainable if id(p) in decoder_ids]
        rest = [p for p in trainable if id(p) not in decoder_ids]
        out = [{"params": dec, "lr": cfg.decoder_lr}]
        return out + ([{"params": rest, "lr": lr}] if rest else [])

    summary = trainable_summary(model)
    max_target = cfg.max_target_length
    predictions: list = []
    valid_metric = seq2seq_metric_fn(cfg.task, tokenizer, refs["valid"])
    test_metric = seq2seq_metric_fn(cfg.task, tokenizer, refs["test"], sink=predictions)
    current = {"split": "valid"}

    def metric_fn(outputs: dict[str, torch.Tensor]) -> dict[str, float]:
        return (test_metric if current["split"] == "test" else valid_metric)(outputs)

    steps = cfg.steps
    if cfg.epochs is not None:  # CodeXGLUE code-to-text counts epochs
        steps = max(1, math.ceil(cfg.epochs * len(sets["train"]) / cfg.batch_size))
    train_cfg = TrainConfig(
        output_dir=cfg.out,
        max_steps=steps,
        batch_size=cfg.batch_size,
        lr=lr,
        weight_decay=0.0,
        scheduler="linear_warmup",
        warmup_steps=max(1, steps // 10),
        eval_every_steps=cfg.eval_every,
        eval_every_epochs=None,
        metric="bleu",
        seed=cfg.seed,
        overwrite=cfg.overwrite,
        progress=progress,
        keep_last=1,
        skip_bad_samples=cfg.skip_bad_samples,
    )
    trainer = Trainer(
        model,
        train_cfg,
        train_data=sets["train"],
        eval_data=sets["valid"],
        loss_fn=seq2seq_loss,
        eval_step=seq2seq_eval_step(max_target, cfg.beam_size, cfg.min_length),
        metric_fn=metric_fn,
        param_groups=groups,
        collate_fn=pair_collate(tokenizer.pad_token_id),
        adapter_name=TASK,
        run_config={"task": dataclasses.asdict(cfg)},
    )
    start = time.perf_counter()
    result = trainer.fit()  # the model now holds the best (validation) weights
    seconds = time.perf_counter() - start
    current["split"] = "test"
    test = trainer.evaluate(sets["test"], "test")
    report = {
        "task": cfg.task,
        "variant": spec.name,
        "seed": cfg.seed,
        "description": spec.description,
        "model": cfg.model,
        "test": {k: v for k, v in test.items() if k != "num_samples"},
        "valid": result.final_metrics,
        "test_examples": len(sets["test"]),
        "train_examples": len(sets["train"]),
        "skipped_lines": {s: splits[s].skipped for s in splits},
        "trainable_params": summary.trainable,
        "total_params": summary.total,
        "trainable_percent": summary.percent,
        "train_seconds": round(seconds, 1),
        "steps": steps,
        "preset": cfg.preset,
    }
    atomic_write_json(Path(cfg.out) / "task_report.json", report)
    files = prediction_files(cfg.task, predictions, refs["test"])
    atomic_write_text(Path(cfg.out) / "test_predictions.txt", files["predictions"])
    atomic_write_text(Path(cfg.out) / "test_gold.txt", files["gold"])
    return report


def evaluate_run(
    run: str, split: str = "test", data: str | None = None, beam_size: int | None = None
) -> dict[str, float]:
    """Scores of a finished ``train`` run's best checkpoint on ``split``."""
    import yaml
    from adapterlab.core import load_adapter

    run_dir = Path(run)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file() or not (run_dir / "best").is_dir():
        raise FileNotFoundError(f"{run_dir} is not a finished train run (config.yaml, best/)")
    saved = yaml.safe_load(config_path.read_text())
    fields = {f.name for f in dataclasses.fields(TaskConfig)}
    cfg = TaskConfig(**{k: v for k, v in saved["task"].items() if k in fields})
    if data is not None:
        cfg.data = data
    model, tokenizer = build_task_model(cfg)
    load_adapter(model, run_dir / "best", TASK)
    pairs = _cap(load_task(cfg.task, _task_root(cfg), split).pairs, cfg.max_eval)
    dataset = PairDataset(pairs, tokenizer, cfg.max_source_length, cfg.max_target_length)
    metrics = evaluate(
        model,
        dataset,
        seq2seq_eval_step(cfg.max_target_length, beam_size or cfg.beam_size, cfg.min_length),
        seq2seq_metric_fn(cfg.task, tokenizer, task_references(pairs)),
        batch_size=cfg.batch_size,
        collate_fn=pair_collate(tokenizer.pad_token_id),
        progress=True,
    )
    return metrics
