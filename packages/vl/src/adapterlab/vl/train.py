"""Train and evaluate one method on one task with the ``adapterlab.core`` engine.

The recipe follows the released configs: AdamW (weight decay 0.05), linear decay, BLIP's
language-modelling loss, the image encoder frozen; plus a linear warm-up over the first 6 % of
the steps and gradient-norm clipping at 1.0 (BERT / HF Trainer practice). The test score comes
from the checkpoint with the best validation score (the engine restores it).
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from adapterlab.core import load_adapter, trainable_summary
from adapterlab.core.engine import TrainConfig, Trainer, evaluate

from .config import CommonConfig, RunConfig
from .data import DataError, load_coco_captions, load_vqav2, read_json
from .images import EncodedImages, encode_images
from .methods import apply_method, spec
from .models import HUB_IDS, Backbone, load_blip, vqa_from_captioner
from .task import (
    AnswerList,
    CaptionDataset,
    GenerationMetrics,
    QADataset,
    collate,
    loss_fn,
    make_eval_step,
)

__all__ = [
    "EMBEDDED",
    "Prepared",
    "TaskData",
    "eval_step_for",
    "evaluate_run",
    "prepare_task",
    "train",
]

#: settings of the embedded demo (tiny BLIP, 2 CPU cores)
EMBEDDED = {"vqa": {"epochs": 30, "batch_size": 32}, "caption": {"epochs": 5, "batch_size": 32}}
#: the released configs (8 GPUs); epochs and batch per GPU
PAPER = {"vqa": {"epochs": 5, "batch_size": 8}, "caption": {"epochs": 2, "batch_size": 16}}
METRIC = {"vqa": "vqa_accuracy", "caption": "cider"}
MAX_NEW = {"vqa": 5, "caption": 20}


@dataclass
class TaskData:
    """One task's datasets (shared by the runs of a sweep) and how to build its backbone."""

    task: str
    source: str
    datasets: dict[str, Any]
    skipped: dict[str, int] = field(default_factory=dict)
    answer_texts: list[str] = field(default_factory=list)

    def backbone(self) -> Backbone:
        if self.task == "vqa" and self.source.endswith("::captioner"):
            return vqa_from_captioner(load_blip("caption", self.source.split("::")[0]))
        return load_blip(self.task, self.source)


@dataclass
class Prepared:
    """Data roots and model sources resolved for a config."""

    vqa_root: Path
    coco_root: Path
    sources: dict[str, str]
    tasks: dict[str, TaskData] = field(default_factory=dict)


def _subsample(items: list, n: int | None, seed: int) -> list:
    if n is None or n >= len(items):
        return items
    return random.Random(seed).sample(items, n)


def prepare_task(cfg: CommonConfig, prep: Prepared, task: str) -> TaskData:
    """Read the task's splits and preprocess their images once."""
    if task in prep.tasks:
        return prep.tasks[task]
    source = prep.sources[task]
    probe = TaskData(task, source, {})
    backbone = probe.backbone()
    datasets: dict[str, Any] = {}
    skipped = {}
    for split in ("train", "val", "test"):
        if task == "vqa":
            examples = load_vqav2(prep.vqa_root, split, coco_root=prep.coco_root)
        else:
            examples = load_coco_captions(prep.coco_root, split)
        if not examples:
            where = prep.vqa_root if task == "vqa" else prep.coco_root
            raise DataError(f"{where}: the {split} split of {task} has no examples")
        if split == "train":
            examples = _subsample(examples, cfg.max_train, cfg.seed)
        images: EncodedImages = encode_images(
            [e.image for e in examples],
            backbone.image_processor,
            skip_bad=cfg.skip_bad_samples,
            cache_dir=Path(cfg.out) / "image-cache",
            workers=cfg.num_workers,
        )
        for _path, why in images.bad:
            print(f"skipped bad {split} image: {why}")
        if task == "vqa":
            soft = split == "train" and cfg.vqa_targets == "soft"
            ds = QADataset(examples, backbone, images, split, soft_targets=soft)
        else:
            ds = CaptionDataset(examples, backbone, images, split, expand=split == "train")
        datasets[split] = ds
        skipped[split] = ds.skipped
    answers = _answer_list(cfg, datasets["train"].examples) if task == "vqa" else []
    prep.tasks[task] = TaskData(task, source, datasets, skipped, answers)
    return prep.tasks[task]


def _answer_list(cfg: CommonConfig, train: list) -> list[str]:
    """Ranking candidates: ``--answer_list`` or the most frequent training answers."""
    if cfg.answer_list:
        texts = read_json(cfg.answer_list)
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts) or not texts:
            raise DataError(f"{cfg.answer_list}: expected a non-empty JSON list of answers")
        return texts
    counts = Counter(a for ex in train for a in ex.answers)
    return [a for a, _ in counts.most_common(cfg.max_answers)]


def eval_step_for(cfg: CommonConfig, task: str, data: TaskData, backbone: Backbone):
    """The task's ``eval_step``: ranking over the answer list for VQA (unless
    ``vqa_inference="generate"``), greedy generation otherwise."""
    answers = None
    if task == "vqa" and cfg.vqa_inference == "rank":
        answers = AnswerList.build(data.answer_texts, backbone)
    return make_eval_step(backbone, MAX_NEW[task], answers, cfg.k_test)


def _settings(cfg: CommonConfig, task: str) -> dict[str, Any]:
    table = EMBEDDED if cfg.embedded else PAPER
    return {
        "epochs": cfg.epochs or table[task]["epochs"],
        "batch_size": cfg.batch_size or table[task]["batch_size"],
        "reduction": cfg.reduction or (2.0 if cfg.embedded else 8.0),
    }


def train(cfg: RunConfig, prep: Prepared, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Train ``cfg.method`` on ``cfg.task``; return the test scores and sizes."""
    data = prepare_task(cfg, prep, cfg.task)
    backbone = data.backbone()
    model = backbone.model
    torch.manual_seed(cfg.seed)
    s = _settings(cfg, cfg.task)
    adapter_cfg = apply_method(
        model,
        cfg.method,
        cfg.task,
        reduction=s["reduction"],
        lora_r=cfg.lora_r,
        prefix_tokens=cfg.prefix_tokens,
    )
    summary = trainable_summary(model)
    run_dir = Path(run_dir or Path(cfg.out) / f"{cfg.task}-{cfg.method}")
    steps = s["epochs"] * -(-len(data.datasets["train"]) // s["batch_size"])
    tcfg = TrainConfig(
        output_dir=str(run_dir),
        epochs=s["epochs"],
        batch_size=s["batch_size"],
        lr=cfg.lr if cfg.lr is not None else spec(cfg.method).lr,
        weight_decay=cfg.weight_decay,
        scheduler="linear_warmup",
        warmup_steps=round(cfg.warmup_ratio * steps),
        max_grad_norm=cfg.max_grad_norm,
        metric=METRIC[cfg.task],
        eval_every_epochs=max(1, s["epochs"] // 2),
        keep_last=1,
        seed=cfg.seed,
        skip_bad_samples=cfg.skip_bad_samples,
        num_workers=cfg.num_workers,
        overwrite=True,
        progress=cfg.progress,
        log_every=max(
            1, min(20, s["epochs"] * len(data.datasets["train"]) // s["batch_size"] // 10)
        ),
    )
    metric_fn = GenerationMetrics(backbone, data.datasets, cfg.task)
    trainer = Trainer(
        model,
        tcfg,
        train_data=data.datasets["train"],
        eval_data=data.datasets["val"],
        test_data=data.datasets["test"],
        loss_fn=loss_fn,
        eval_step=eval_step_for(cfg, cfg.task, data, backbone),
        metric_fn=metric_fn,
        collate_fn=functools.partial(collate, pad_id=backbone.pad_id),
        run_config={
            "vl": {
                **cfg.to_dict(),
                **s,
                "source": data.source,
                "vqa_root": str(prep.vqa_root),
                "coco_root": str(prep.coco_root),
                "adapter": adapter_cfg.to_dict(),
            },
            "train": tcfg.to_dict(),
        },
    )
    start = time.perf_counter()
    result = trainer.fit()
    seconds = time.perf_counter() - start
    test = result.test_metrics or {}
    return {
        "task": cfg.task,
        "method": cfg.method,
        "description": spec(cfg.method).description,
        "test": {k: v for k, v in test.items() if k != "num_samples"},
        "val_best": result.best_metric,
        "trainable_params": summary.trainable,
        "total_params": summary.total,
        "percent_trainable": summary.percent,
        "train_seconds": seconds,
        "skipped_samples": result.skipped_samples,
        "run_dir": str(result.run_dir),
        "p_values": _p_values(model),
        "final_train_loss": _final_train_loss(Path(result.run_dir)),
    }


def _final_train_loss(run_dir: Path) -> float | None:
    """Mean of the last logged training losses of the final epoch (``metrics.jsonl``)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    train = [r for r in rows if r.get("split") == "train" and "loss" in r]
    if not train:
        return None
    last = [r["loss"] for r in train if r.get("epoch") == train[-1].get("epoch")]
    return sum(last) / len(last)


def _p_values(model: torch.nn.Module) -> list[float]:
    from adapterlab.core import p_adapter_modules

    return [round(float(b.p().detach()), 4) for b in p_adapter_modules(model).values()]


def resolve_sources(cfg: CommonConfig, pretrained: Path | None) -> dict[str, str]:
    """Model source per task: the given checkpoints, the hub ids, or the pre-trained tiny BLIP."""
    if pretrained is not None:
        return {
            "vqa": cfg.vqa_model or f"{pretrained}::captioner",
            "caption": cfg.caption_model or str(pretrained),
        }
    return {
        "vqa": cfg.vqa_model or HUB_IDS["vqa"],
        "caption": cfg.caption_model or HUB_IDS["caption"],
    }


def evaluate_run(run_dir: str | Path, split: str = "test", batch_size: int = 32) -> dict[str, Any]:
    """Scores of a finished run's best checkpoint on ``split``."""
    run_dir = Path(run_dir)
    cfg_path, best = run_dir / "config.yaml", run_dir / "best"
    if not cfg_path.is_file() or not (best / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{run_dir}: not a finished adapterlab-vl run (config.yaml, best/)")
    vl = yaml.safe_load(cfg_path.read_text()).get("vl")
    if not vl:
        raise ValueError(f"{cfg_path}: no 'vl' section (not an adapterlab-vl run)")
    if split not in ("val", "test"):
        raise ValueError(f"split must be val or test, got {split!r}")
    run = RunConfig(**{k: v for k, v in vl.items() if k in RunConfig.__dataclass_fields__})
    prep = Prepared(Path(vl["vqa_root"]), Path(vl["coco_root"]), {run.task: vl["source"]})
    data = prepare_task(run, prep, run.task)
    backbone = data.backbone()
    load_adapter(backbone.model, best)
    metrics = evaluate(
        backbone.model,
        data.datasets[split],
        eval_step_for(run, run.task, data, backbone),
        GenerationMetrics(backbone, data.datasets, run.task),
        batch_size=batch_size,
        collate_fn=functools.partial(collate, pad_id=backbone.pad_id),
        progress=False,
    )
    return {"run_dir": str(run_dir), "split": split, **metrics}
