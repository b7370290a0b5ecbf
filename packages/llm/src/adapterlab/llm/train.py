"""Training through the core engine's ``Trainer`` (adapters on a frozen LM, top layers trained on
cached bottom hidden states) and evaluation through the engine's ``evaluate``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from adapterlab.core import add_adapter, delete_adapter, trainable_summary
from adapterlab.core.engine import TrainConfig, Trainer, evaluate, seed_everything
from torch import nn
from torch.utils.data import DataLoader

from .config import AdaptConfig
from .data.alpaca import Example
from .methods import METHODS, build_config, parse_method
from .models.llm import decoder_layers
from .models.top import TopOfModel
from .task import (
    CachedLMData,
    Tokenised,
    accuracy_metrics,
    collate_cached,
    generation_eval_step,
    lm_loss,
    tokenise_examples,
)

__all__ = ["RunResult", "adapter_layers", "score_generation", "train_adapter", "train_lm"]


@dataclass
class RunResult:
    """Outcome of one adapter run."""

    name: str
    seed: int
    test: dict[str, float]
    val_loss: float | None
    trainable_params: int
    seconds: float
    run_dir: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def adapter_layers(lm: nn.Module, top_layers: int) -> range:
    """Decoder layers that get adapters: the top ``top_layers`` (0 = all)."""
    n = len(decoder_layers(lm))
    return range(0 if top_layers <= 0 else max(0, n - top_layers), n)


def _list_collate(items: list[Any]) -> list[Any]:
    return list(items)


def train_lm(
    lm: nn.Module,
    adapter_config: Any,
    train_items: Sequence[Tokenised],
    val_items: Sequence[Tokenised],
    *,
    layers: range,
    run_dir: str | Path,
    name: str,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    epochs: int = 0,
    grad_accum: int = 1,
    warmup_steps: int = 0,
    test_data: Any = None,
    test_step: Any = None,
    metric_fn: Any = None,
    run_config: dict[str, Any] | None = None,
) -> tuple[Any, TopOfModel]:
    """Add ``adapter_config`` as adapter ``name`` to ``lm`` and train it with the language-model
    loss on ``train_items``, keeping the checkpoint with the lowest validation loss; the bottom
    layers below ``layers`` run once to cache their outputs."""
    seed_everything(seed)
    top = TopOfModel(lm, layers.start)
    add_adapter(top, adapter_config, name=name)
    train = CachedLMData(train_items, lm, layers.start)
    val = CachedLMData(val_items, lm, layers.start)
    cfg = TrainConfig(
        output_dir=str(run_dir), max_steps=None if epochs else steps, epochs=max(1, epochs),
        batch_size=batch_size, eval_batch_size=16, lr=lr, grad_accum=grad_accum,
        scheduler="linear_warmup", warmup_steps=warmup_steps, metric="loss", metric_mode="min",
        eval_every_steps=max(1, steps // 2) if not epochs else None,
        eval_every_epochs=1, keep_last=1, seed=seed, log_every=max(1, steps // 4), overwrite=True,
        progress=False, plots=True, max_grad_norm=1.0,
    )  # fmt: skip

    def eval_step(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        if isinstance(batch, list):  # the test split: generation
            return test_step(model.lm, batch)
        return lm_loss(model, batch)

    def metrics(outputs: dict[str, torch.Tensor]) -> dict[str, float]:
        if "correct" in outputs:
            return metric_fn(outputs)
        return {}  # the validation loss is averaged by the engine

    trainer = Trainer(
        top, cfg, train_data=DataLoader(train, collate_fn=collate_cached),
        eval_data=DataLoader(val, collate_fn=collate_cached),
        test_data=DataLoader(test_data, batch_size=16, collate_fn=_list_collate) if test_data is not None else None,
        loss_fn=lm_loss, eval_step=eval_step, metric_fn=metrics,
        adapter_name=name, run_config=run_config,
    )  # fmt: skip
    return trainer.fit(), top


def score_generation(
    lm: nn.Module, tok, examples: Sequence[Example], kind: str, *, style: str = "alpaca",
    max_new_tokens: int = 24, num_beams: int = 1,
) -> dict[str, float]:
    """Accuracy (%) of ``lm`` (with whatever adapter is active) on ``examples`` by generation."""
    step = generation_eval_step(tok, kind, style=style, max_new_tokens=max_new_tokens, num_beams=num_beams)
    return evaluate(
        lm, list(examples), step, accuracy_metrics, batch_size=16, collate_fn=_list_collate,
        device=next(lm.parameters()).device, progress=False,
    )  # fmt: skip


def train_adapter(
    lm: nn.Module,
    tok,
    cfg: AdaptConfig,
    train: Sequence[Example],
    val: Sequence[Example],
    test: Sequence[Example],
    *,
    kind: str,
    keep: bool = False,
) -> RunResult:
    """Train ``cfg.method`` on ``train`` (best checkpoint by ``val`` loss) and score ``test`` by
    generation with LLM-Adapters' answer extraction. The adapter is removed again unless ``keep``."""
    method, placement = parse_method(cfg.method)
    layers = adapter_layers(lm, cfg.top_layers)
    adapter_cfg = build_config(
        cfg.method, layers, bottleneck=cfg.bottleneck, lora_r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, prefix_tokens=cfg.prefix_tokens,
    )  # fmt: skip
    tokenise = {"style": cfg.prompt_style, "train_on_inputs": cfg.train_on_inputs, "cutoff": cfg.cutoff}
    start = time.perf_counter()
    name = f"{method}_{placement}"
    result, top = train_lm(
        lm, adapter_cfg, tokenise_examples(train, tok, **tokenise),
        tokenise_examples(val, tok, **tokenise), layers=layers, run_dir=cfg.out, name=name,
        steps=cfg.steps, epochs=cfg.epochs, batch_size=cfg.batch_size, grad_accum=cfg.grad_accum,
        lr=cfg.lr or METHODS[method].lr, seed=cfg.seed, warmup_steps=cfg.warmup_steps,
        test_data=list(test),
        test_step=generation_eval_step(
            tok, kind, style=cfg.prompt_style, max_new_tokens=cfg.max_new_tokens, num_beams=cfg.num_beams
        ),
        metric_fn=accuracy_metrics, run_config={"adapt": asdict(cfg), "kind": kind},
    )  # fmt: skip
    trainable = trainable_summary(top).trainable
    if not keep:
        delete_adapter(top, name)
    return RunResult(
        cfg.method, cfg.seed, dict(result.test_metrics or {}), result.best_metric, trainable,
        time.perf_counter() - start, str(cfg.out),
    )  # fmt: skip
