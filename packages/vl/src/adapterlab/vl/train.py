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
from .data import (
    LABELS,
    DataError,
    carve_val,
    load_coco_captions,
    load_snli_ve,
    load_vizwiz,
    load_vqav2,
    read_json,
)
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
EMBEDDED = {
    "vqa": {"epochs": 20, "batch_size": 32},
    "caption": {"epochs": 5, "batch_size": 32},
    "snli_ve": {"epochs": 10, "batch_size": 32},
    "vizwiz": {"epochs": 20, "batch_size": 32},
}
#: real data without a preset: the released epochs and batch sizes (8 GPUs; batch per GPU)
PAPER = {
    "vqa": {"epochs": 5, "batch_size": 8},
    "caption": {"epochs": 2, "batch_size": 16},
    "snli_ve": {"epochs": 5, "batch_size": 8},
    "vizwiz": {"epochs": 5, "batch_size": 8},
}
#: ``--preset paper``: every setting of the released configs (wuhy68/p-Adapter,
#: eff_blip_configs/eff_{vqa,snli_ve,caption_coco}.yaml; VizWiz has no config there and takes
#: VQA's): AdamW wd 0.05, linear decay, no warm-up, reduction 8, p initialised
#: per task, the release's p-adapter (``p_adapter_release``), ranking over the answer list with
#: k_test candidates, captions with the prompt and beam search
RELEASE = {
    "vqa": {"epochs": 5, "batch_size": 8, "lr": 5e-4, "k_test": 32},
    "vizwiz": {"epochs": 5, "batch_size": 8, "lr": 5e-4, "k_test": 32},
    "snli_ve": {"epochs": 5, "batch_size": 8, "lr": 5e-4, "k_test": 3},
    "caption": {
        "epochs": 2, "batch_size": 16, "lr": 3e-4, "beams": 5, "max_new": 40, "min_new": 5,
        "prompt": "What does the image describe? ",
    },
}  # fmt: skip
RELEASE_COMMON = {"warmup_ratio": 0.0, "weight_decay": 0.05, "reduction": 8.0}
METRIC = {
    "vqa": "vqa_accuracy",
    "caption": "cider",
    "snli_ve": "accuracy",
    "vizwiz": "vqa_accuracy",
}
MAX_NEW = {"vqa": 5, "caption": 20, "snli_ve": 3, "vizwiz": 5}
#: the BLIP model class each task uses ("vqa": question encoder + answer decoder)
MODEL = {"vqa": "vqa", "caption": "caption", "snli_ve": "vqa", "vizwiz": "vqa"}


@dataclass
class TaskData:
    """One task's datasets (shared by the runs of a sweep) and how to build its backbone."""

    task: str
    source: str
    datasets: dict[str, Any]
    skipped: dict[str, int] = field(default_factory=dict)
    answer_texts: list[str] = field(default_factory=list)

    def backbone(self) -> Backbone:
        kind = MODEL[self.task]
        if kind == "vqa" and self.source.endswith("::captioner"):
            return vqa_from_captioner(load_blip("caption", self.source.split("::")[0]))
        return load_blip(kind, self.source)


@dataclass
class Prepared:
    """Data roots and model sources resolved for a config (``root`` holds ``snli_ve/`` and
    ``vizwiz/`` next to ``vqav2/`` and ``coco/``)."""

    vqa_root: Path
    coco_root: Path
    sources: dict[str, str]
    tasks: dict[tuple, TaskData] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.vqa_root.parent


def _examples(prep: Prepared, task: str, split: str) -> list:
    """The task's examples of ``split`` (train / val / test).

    VizWiz's test answers are not released: its official ``val`` is our test and validation is
    carved out of ``train`` by image (as for VQAv2 without the Karpathy file). SNLI-VE's ``dev``
    is validation."""
    if task == "vqa":
        return load_vqav2(prep.vqa_root, split, coco_root=prep.coco_root)
    if task == "caption":
        return load_coco_captions(prep.coco_root, split)
    if task == "snli_ve":
        return load_snli_ve(prep.root / "snli_ve", split)
    if split == "test":
        return load_vizwiz(prep.root / "vizwiz", "val")
    train = load_vizwiz(prep.root / "vizwiz", "train")
    held = carve_val({e.image.name for e in train})
    return [e for e in train if (e.image.name in held) == (split == "val")]


def _subsample(items: list, n: int | None, seed: int) -> list:
    if n is None or n >= len(items):
        return items
    return random.Random(seed).sample(items, n)


def prepare_task(cfg: CommonConfig, prep: Prepared, task: str) -> TaskData:
    """Read the task's splits and preprocess their images once."""
    # everything that shapes the datasets: a run with other settings gets its own
    key = (task, _settings(cfg, task)["prompt"], cfg.vqa_targets, cfg.max_train,
           cfg.seed if cfg.max_train else None,
           cfg.skip_bad_samples, cfg.answer_list, cfg.max_answers)  # fmt: skip
    if key in prep.tasks:
        return prep.tasks[key]
    source = prep.sources[task]
    probe = TaskData(task, source, {})
    backbone = probe.backbone()
    datasets: dict[str, Any] = {}
    skipped = {}
    for split in ("train", "val", "test"):
        examples = _examples(prep, task, split)
        if not examples:
            where = {"vqa": prep.vqa_root, "caption": prep.coco_root}.get(task, prep.root / task)
            raise DataError(where, f"the {split} split of {task} has no examples")
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
        if task == "caption":
            prompt = _settings(cfg, task)["prompt"]
            ds = CaptionDataset(
                examples, backbone, images, split, expand=split == "train", prompt=prompt
            )
        else:
            soft = split == "train" and cfg.vqa_targets == "soft" and task != "snli_ve"
            ds = QADataset(examples, backbone, images, split, soft_targets=soft)
        datasets[split] = ds
        skipped[split] = ds.skipped
    answers = []
    if task == "snli_ve":
        answers = list(LABELS)
    elif task != "caption":
        answers = _answer_list(cfg, datasets["train"].examples)
    prep.tasks[key] = TaskData(task, source, datasets, skipped, answers)
    return prep.tasks[key]


def _answer_list(cfg: CommonConfig, train: list) -> list[str]:
    """Ranking candidates: ``--answer_list`` or the most frequent training answers."""
    if cfg.answer_list:
        texts = read_json(cfg.answer_list)
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts) or not texts:
            raise DataError(cfg.answer_list, "expected a non-empty JSON list of answers")
        return texts
    counts = Counter(a for ex in train for a in ex.answers)
    return [a for a, _ in counts.most_common(cfg.max_answers)]


def eval_step_for(cfg: CommonConfig, task: str, data: TaskData, backbone: Backbone):
    """The task's ``eval_step``: ranking over the answer list for VQA / VizWiz / SNLI-VE
    (unless ``vqa_inference="generate"``), generation for captions (greedy; beam search and the
    prompt under ``--preset paper``)."""
    s = _settings(cfg, task)
    answers = None
    if task != "caption" and cfg.vqa_inference == "rank":
        answers = AnswerList.build(data.answer_texts, backbone)
    return make_eval_step(
        backbone, s["max_new"], answers, s["k_test"], beams=s["beams"],
        min_new=s["min_new"], prompt=s["prompt"],
    )  # fmt: skip


def _settings(cfg: CommonConfig, task: str) -> dict[str, Any]:
    """Epochs, batch size, reduction, learning rate, schedule and decoding of ``task``: the
    explicit options, else ``--preset paper`` (the release), else the defaults."""
    paper = cfg.preset == "paper"
    table = RELEASE if paper else (EMBEDDED if cfg.embedded else PAPER)
    row = {**(RELEASE_COMMON if paper else {}), **table[task]}
    return {
        "epochs": cfg.epochs or row["epochs"],
        "batch_size": cfg.batch_size or row["batch_size"],
        "reduction": cfg.reduction or row.get("reduction") or (2.0 if cfg.embedded else 8.0),
        "lr": cfg.lr if cfg.lr is not None else row.get("lr"),
        "warmup_ratio": row.get("warmup_ratio", cfg.warmup_ratio),
        "weight_decay": row.get("weight_decay", cfg.weight_decay),
        "k_test": cfg.k_test or row.get("k_test", 32),
        "beams": row.get("beams", 1),
        "max_new": row.get("max_new", MAX_NEW[task]),
        "min_new": row.get("min_new", 0),
        "prompt": row.get("prompt", ""),
        "release": paper,
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
        release=s["release"],
    )
    summary = trainable_summary(model)
    run_dir = Path(run_dir or Path(cfg.out) / f"{cfg.task}-{cfg.method}")
    steps = s["epochs"] * -(-len(data.datasets["train"]) // s["batch_size"])
    tcfg = TrainConfig(
        output_dir=str(run_dir),
        epochs=s["epochs"],
        batch_size=s["batch_size"],
        lr=s["lr"] if s["lr"] is not None else spec(cfg.method).lr,
        weight_decay=s["weight_decay"],
        scheduler="linear_warmup",
        warmup_steps=round(s["warmup_ratio"] * steps),
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
        "p_by_layer": _p_by_layer(model),
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


def _p_by_layer(model: torch.nn.Module) -> dict[str, float]:
    from adapterlab.core import p_adapter_modules

    return {n: round(float(b.p().detach()), 4) for n, b in p_adapter_modules(model).items()}


def _p_values(model: torch.nn.Module) -> list[float]:
    from adapterlab.core import p_adapter_modules

    return [round(float(b.p().detach()), 4) for b in p_adapter_modules(model).values()]


def resolve_sources(cfg: CommonConfig, pretrained: Path | None) -> dict[str, str]:
    """Model source per task: the given checkpoints, the converted BLIP pre-training folders
    (``--pretrained``, required by ``--preset paper`` on real data), the hub ids, or the
    pre-trained tiny BLIP. VizWiz and SNLI-VE use the VQA model."""
    if pretrained is not None:
        vqa, caption = f"{pretrained}::captioner", str(pretrained)
    elif cfg.pretrained:
        vqa, caption = str(Path(cfg.pretrained) / "vqa"), str(Path(cfg.pretrained) / "caption")
    elif cfg.preset == "paper" and not (cfg.vqa_model and cfg.caption_model):
        raise ValueError(
            "--preset paper adapts the pre-trained BLIP: convert model_base_capfilt_large.pth "
            "with `adapterlab-vl convert` and pass --pretrained DIR"
        )
    else:
        vqa, caption = HUB_IDS["vqa"], HUB_IDS["caption"]
    vqa = cfg.vqa_model or vqa
    return {"vqa": vqa, "caption": cfg.caption_model or caption, "snli_ve": vqa, "vizwiz": vqa}


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
