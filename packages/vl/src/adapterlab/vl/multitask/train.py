"""Train one method on VQA and captioning at once, in one BLIP, with the core engine.

The model is BLIP's VQA model (image encoder -> question encoder -> answer decoder); a caption
batch skips the question encoder and decodes from the image, as BLIP's captioner does (the
decoder serves both tasks). Every batch holds one task (VL-Adapter's round-robin mixing,
:mod:`.mixing`) and sets the model's task id (:func:`adapterlab.core.set_task_ids`), which the
task-conditioned methods (per-task / shared / half-shared adapters, Hyperformer) read. The
checkpoint is chosen on the validation average of VQA accuracy and caption BLEU-4.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from adapterlab.core import load_adapter, set_task_ids, trainable_summary
from adapterlab.core.engine import TrainConfig, Trainer, evaluate
from torch import nn
from torch.nn import functional as F

from ..config import CommonConfig
from ..models import Backbone
from ..task import GenerationMetrics, _memory, collate, loss_fn, make_eval_step
from ..train import MAX_NEW, Prepared, TaskData, _final_train_loss, eval_step_for, prepare_task
from .config import TASK_NAMES, MultiTaskConfig
from .methods import apply_mt_method, mt_spec
from .mixing import TaskBatches, unwrap_collate

__all__ = [
    "MTJob",
    "MultiTaskData",
    "MultiTaskMetrics",
    "caption_loss",
    "evaluate_multitask",
    "make_mt_eval_step",
    "make_mt_loss",
    "multitask_data",
    "text_share",
    "train_multitask",
]

#: generated ids of every task are padded to this width (the engine concatenates them)
WIDTH = 40


@dataclass
class MTJob:
    """One run: ``method`` at ``seed`` with the paper's learning rate times ``scale``."""

    cfg: MultiTaskConfig
    method: str
    seed: int
    scale: float | None = None
    task: str = "vqa+caption"

    @property
    def lr(self) -> float:
        return self.cfg.lr_of(self.method, self.scale)


@dataclass
class MultiTaskData:
    """VQA and caption datasets, in task-id order (:data:`TASK_NAMES`)."""

    tasks: list[TaskData]

    def split(self, name: str) -> list[Any]:
        return [t.datasets[name] for t in self.tasks]


def _data_config(cfg: CommonConfig) -> CommonConfig:
    """The data settings of ``cfg`` as the single-task code reads them (no p-adapter preset:
    captions without the p-adapter release's prompt)."""
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(CommonConfig)}
    return CommonConfig(**{**fields, "preset": None})


def multitask_data(cfg: CommonConfig, prep: Prepared) -> MultiTaskData:
    """Both tasks' splits (preprocessed once per ``prep``); the caption tokenizer must be the
    VQA model's (one model reads both)."""
    data = _data_config(cfg)
    tasks = [prepare_task(data, prep, t) for t in TASK_NAMES]
    vocab = [t.datasets["train"].backbone.tokenizer.get_vocab() for t in tasks]
    if vocab[0] != vocab[1]:
        raise ValueError(
            f"the VQA model ({tasks[0].source}) and the captioning model ({tasks[1].source}) "
            "have different tokenizers; one multi-task model needs one vocabulary"
        )
    return MultiTaskData(tasks)


def caption_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """BLIP's captioning loss on a VQA model: the decoder reads the image directly."""
    image, image_mask = _memory(model, {"pixel_values": batch["pixel_values"]})
    return model.text_decoder(
        input_ids=batch["target_ids"],
        attention_mask=batch["target_mask"],
        encoder_hidden_states=image,
        encoder_attention_mask=image_mask,
        labels=batch["labels"],
        reduction="mean",
    ).loss


def _task_of(batch: dict[str, torch.Tensor]) -> int:
    task = batch["task"]
    first = int(task[0])
    if bool((task != first).any()):
        raise ValueError("a multi-task batch must hold one task (VL-Adapter's mixing)")
    return first


def make_mt_loss(root: nn.Module):
    """``loss_fn`` of the engine: sets the batch's task id on ``root`` (the model the adapter
    was added to), then the task's loss (VQA: BLIP's soft-target loss; captions: LM loss)."""

    def mt_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        task = _task_of(batch)
        set_task_ids(root, task)
        return loss_fn(model, batch) if TASK_NAMES[task] == "vqa" else caption_loss(model, batch)

    return mt_loss


def make_mt_eval_step(root: nn.Module, steps: list, pad_id: int):
    """``eval_step``: the batch's task id, then that task's step; ids padded to :data:`WIDTH`."""

    def eval_step(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        task = _task_of(batch)
        set_task_ids(root, task)
        out = steps[task](model, batch)
        ids = out["generated"]
        if ids.shape[1] > WIDTH:
            raise ValueError(f"{TASK_NAMES[task]} outputs {ids.shape[1]} ids, more than {WIDTH}")
        out["generated"] = F.pad(ids, (0, WIDTH - ids.shape[1]), value=pad_id)
        out["task"] = batch["task"]
        return out

    return eval_step


class MultiTaskMetrics:
    """``metric_fn``: each task's scores (VQA: the official accuracy; captions: BLEU-4 / CIDEr-D)
    and ``average`` = mean of VQA accuracy and BLEU-4."""

    def __init__(self, per_task: list[GenerationMetrics]) -> None:
        self.per_task = per_task

    def __call__(self, outputs: dict[str, torch.Tensor]) -> dict[str, float]:
        scores: dict[str, float] = {}
        for task, fn in enumerate(self.per_task):
            keep = outputs["task"] == task
            if bool(keep.any()):
                scores.update(fn({k: v[keep] for k, v in outputs.items() if v.dim()}))
        if "vqa_accuracy" in scores and "bleu4" in scores:
            scores["average"] = (scores["vqa_accuracy"] + scores["bleu4"]) / 2
        return scores


def text_share(model: nn.Module) -> float:
    """Trainable % of the model without its (frozen) image encoder: VL-Adapter feeds
    pre-extracted CLIP features, so its Table 1 counts the language model (and adapters)."""
    summary = trainable_summary(model)
    vision = sum(p.numel() for p in model.vision_model.parameters())
    return 100.0 * summary.trainable / (summary.total - vision)


def _eval_batches(data: MultiTaskData, split: str) -> TaskBatches:
    return TaskBatches(data.split(split), [64, 64], names=TASK_NAMES, shuffle=False)


def _evaluation(cfg: MultiTaskConfig, data: MultiTaskData, backbone: Backbone):
    """``(eval_step, metric_fn)``: VQA ranked over the answer list, captions generated (greedy;
    beam search under ``--preset paper``)."""
    caption = make_eval_step(backbone, MAX_NEW["caption"], beams=cfg.recipe["beams"])
    steps = [eval_step_for(_data_config(cfg), "vqa", data.tasks[0], backbone), caption]
    metrics = MultiTaskMetrics(
        [GenerationMetrics(backbone, t.datasets, t.task) for t in data.tasks]
    )
    return make_mt_eval_step(backbone.model, steps, backbone.pad_id), metrics


def evaluate_multitask(
    run_dir: str | Path, prep: Prepared | None = None, split: str = "test"
) -> dict[str, float]:
    """Scores of a finished multi-task run's best checkpoint on ``split``, reloaded from disk."""
    run_dir = Path(run_dir)
    cfg_path, best = run_dir / "config.yaml", run_dir / "best"
    if not cfg_path.is_file() or not (best / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{run_dir}: not a finished multi-task run (config.yaml, best/)")
    saved = yaml.safe_load(cfg_path.read_text()).get("vl_multitask")
    if not saved:
        raise ValueError(f"{cfg_path}: no 'vl_multitask' section (not a multi-task run)")
    names = {f.name for f in dataclasses.fields(MultiTaskConfig)}
    cfg = MultiTaskConfig(**{k: v for k, v in saved.items() if k in names})
    if prep is None:
        prep = Prepared(Path(saved["vqa_root"]), Path(saved["coco_root"]), saved["sources"])
    data = multitask_data(cfg, prep)
    backbone = data.tasks[0].backbone()
    r = saved["recipe"]
    apply_mt_method(
        backbone.model, saved["method"], n_tasks=len(TASK_NAMES), reduction=r["reduction"],
        prompt_tokens=r["prompt_tokens"], hyper=tuple(r["hyper"]),
        train_layer_norms=cfg.train_layer_norms,
    )  # fmt: skip
    load_adapter(backbone.model, best)
    eval_step, metrics = _evaluation(cfg, data, backbone)
    scores = evaluate(
        backbone.model, _eval_batches(data, split), eval_step, metrics, batch_size=1,
        collate_fn=unwrap_collate(functools.partial(collate, pad_id=backbone.pad_id)),
        progress=False,
    )  # fmt: skip
    return {k: v for k, v in scores.items() if k != "num_samples"}


def _eval_every(cfg: MultiTaskConfig, per_epoch: int, epochs: int) -> int | None:
    every = per_epoch if cfg.preset == "paper" or not cfg.embedded else per_epoch * (epochs // 2)
    return every if 0 < every < per_epoch * epochs else None


def train_multitask(
    job: MTJob, prep: Prepared, run_dir: str | Path, data: MultiTaskData | None = None
) -> dict[str, Any]:
    """Train ``job.method`` on VQA and captioning at once; return test scores and sizes."""
    cfg, method = job.cfg, job.method
    mt_spec(method)
    data = data or multitask_data(cfg, prep)
    recipe = cfg.recipe
    vqa = data.tasks[0]
    backbone = vqa.backbone()
    model = backbone.model
    torch.manual_seed(job.seed)
    adapter_cfg = apply_mt_method(
        model, method, n_tasks=len(TASK_NAMES), reduction=recipe["reduction"],
        prompt_tokens=recipe["prompt_tokens"], hyper=recipe["hyper"],
        train_layer_norms=cfg.train_layer_norms,
    )  # fmt: skip
    summary = trainable_summary(model)
    sizes = [recipe["batch_size"], recipe["caption_batch_size"]]
    train_ds = TaskBatches(
        data.split("train"), sizes, names=TASK_NAMES, seed=job.seed, epochs=recipe["epochs"]
    )
    evals = {s: _eval_batches(data, s) for s in ("val", "test")}
    per_epoch, total = train_ds.batches_per_epoch, len(train_ds)
    eval_step, metrics = _evaluation(cfg, data, backbone)
    run_dir = Path(run_dir)
    tcfg = TrainConfig(
        output_dir=str(run_dir), epochs=1, batch_size=1, eval_batch_size=1, shuffle=False,
        lr=job.lr, weight_decay=cfg.weight_decay, scheduler="linear_warmup",
        warmup_steps=round(recipe["warmup_ratio"] * total), max_grad_norm=recipe["max_grad_norm"],
        metric="average", eval_every_steps=_eval_every(cfg, per_epoch, recipe["epochs"]),
        eval_every_epochs=1, keep_last=1, seed=job.seed, skip_bad_samples=cfg.skip_bad_samples,
        num_workers=cfg.num_workers, overwrite=True, progress=cfg.progress,
        log_every=max(1, min(20, total // 10)),
    )  # fmt: skip
    trainer = Trainer(
        model,
        tcfg,
        train_data=train_ds,
        eval_data=evals["val"],
        test_data=evals["test"],
        loss_fn=make_mt_loss(model),
        eval_step=eval_step,
        metric_fn=metrics,
        collate_fn=unwrap_collate(functools.partial(collate, pad_id=backbone.pad_id)),
        run_config={
            "vl_multitask": {
                **cfg.to_dict(),
                "method": method,
                "seed": job.seed,
                "lr": job.lr,
                "lr_scale": job.scale,
                "recipe": {**recipe, "hyper": list(recipe["hyper"])},
                "sources": dict(prep.sources),
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
        "method": method,
        "seed": job.seed,
        "lr": job.lr,
        "lr_scale": job.scale,
        "test": {k: v for k, v in test.items() if k != "num_samples"},
        "val_best": result.best_metric,
        "trainable_params": summary.trainable,
        "total_params": summary.total,
        "percent_trainable": summary.percent,
        "percent_text": text_share(model),
        "train_seconds": seconds,
        "run_dir": str(result.run_dir),
        "final_train_loss": _final_train_loss(Path(result.run_dir)),
        "batches_per_epoch": per_epoch,
    }
