"""One language adapter, start to end: MLM adaptation, held-out MLM loss, downstream topic task.
All training goes through the core engine's Trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from adapterlab.core import (
    add_adapter,
    get_adapter_parameters,
    get_config,
    list_adapters,
    set_active,
)
from adapterlab.core.engine import TrainConfig, Trainer, evaluate

from .config import LangAdaptConfig
from .data import MLMDataset, TopicDataset
from .methods import HEAD_TRANSFORM, TASK_ADAPTER, language_adapter_config
from .models import TextModel, load_mlm
from .task import mlm_eval_step, mlm_loss, mlm_metrics, topic_eval_step, topic_loss

__all__ = ["build_model", "evaluate_mlm", "train_language_adapter", "train_topic_task"]


def _engine(
    cfg: LangAdaptConfig,
    out: Path,
    seed: int,
    steps: int,
    batch: int,
    lr: float,
    metric: str,
    mode: str,
) -> TrainConfig:
    return TrainConfig(
        output_dir=str(out),
        epochs=1000,
        max_steps=steps,
        batch_size=batch,
        eval_batch_size=cfg.eval_batch,
        lr=lr,
        eval_every_steps=steps,  # one evaluation, at the end (no selection on test)
        eval_every_epochs=None,
        metric=metric,
        metric_mode=mode,
        seed=seed,
        keep_last=1,
        overwrite=True,
        plots=False,
        progress=cfg.progress,
        log_every=max(1, steps // 5),
    )


def build_model(
    cfg: LangAdaptConfig, n_labels: int, seed: int, tokenizer: Any = None
) -> tuple[TextModel, Any]:
    """A fresh masked LM (+ a seeded topic classifier) and its tokenizer."""
    mlm, tok = load_mlm(cfg.model, tokenizer)
    torch.manual_seed(seed)
    return TextModel(mlm, n_labels).eval(), tok


def evaluate_mlm(model: TextModel, data: MLMDataset, batch: int) -> dict[str, float]:
    """Masked-LM loss on a fixed-mask held-out set."""
    return evaluate(model, data, mlm_eval_step, mlm_metrics, batch_size=batch, progress=False)


def train_language_adapter(
    model: TextModel,
    method: str,
    train: MLMDataset,
    val: MLMDataset,
    cfg: LangAdaptConfig,
    seed: int,
    out: Path,
) -> int:
    """Add language adapter ``lang`` (``head_only``: the MLM head transform alone) and train it by
    MLM; returns its trainable parameter count (head transform excluded)."""
    if method == "head_only":
        config = get_config("linear_probe", modules_to_save=[HEAD_TRANSFORM])
    else:
        config = language_adapter_config(method)
    add_adapter(model, config, "lang", seed=seed)  # init from (seed, name): same for every run
    head = {id(p) for n, p in model.named_parameters() if n.startswith(HEAD_TRANSFORM)}
    n_adapter = sum(p.numel() for p in get_adapter_parameters(model, "lang") if id(p) not in head)
    engine = _engine(cfg, out, seed, cfg.mlm_steps, cfg.mlm_batch, cfg.mlm_lr, "mlm_loss", "min")
    Trainer(
        model, engine, train_data=train, eval_data=val, loss_fn=mlm_loss, eval_step=mlm_eval_step,
        metric_fn=mlm_metrics, adapter_name="lang",
    ).fit()  # fmt: skip
    model.eval()
    return n_adapter


def train_topic_task(
    model: TextModel,
    train: TopicDataset,
    val: TopicDataset,
    test: TopicDataset,
    cfg: LangAdaptConfig,
    seed: int,
    out: Path,
) -> float:
    """Stack a new task adapter (+ the classifier) on the frozen language adapter, train it on the
    topic task and return test accuracy."""
    preset, options = TASK_ADAPTER
    has_lang = "lang" in list_adapters(model)
    add_adapter(
        model, get_config(preset, modules_to_save=["classifier"], **options), "task", seed=seed
    )
    if has_lang:
        set_active(model, ["lang", "task"])
        for p in get_adapter_parameters(model, "lang"):
            p.requires_grad_(False)
    engine = _engine(cfg, out, seed, cfg.task_steps, cfg.task_batch, cfg.task_lr, "accuracy", "max")
    result = Trainer(
        model, engine, train_data=train, eval_data=val, test_data=test, loss_fn=topic_loss,
        eval_step=topic_eval_step, adapter_name="task",
    ).fit()  # fmt: skip
    return float(result.test_metrics["accuracy"])
