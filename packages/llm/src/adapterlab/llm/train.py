"""Training through the core engine's ``Trainer`` (adapters on a frozen LM, top layers trained on
cached bottom hidden states) and evaluation through the engine's ``evaluate``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from adapterlab.core import add_adapter, delete_adapter, get_adapter_parameters, trainable_summary
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

__all__ = ["RunResult", "adapter_layers", "top_of", "score_generation", "train_adapter", "train_lm"]


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


def top_of(lm: nn.Module, top_layers: int) -> TopOfModel:
    """The trainable top of ``lm``: decoder layers from ``len - top_layers`` (0 = all). Build it
    once per base model and train every adapter of that model through it."""
    return TopOfModel(lm, adapter_layers(lm, top_layers).start)


def train_lm(
    top: TopOfModel,
    adapter_config: Any,
    train_items: Sequence[Tokenised],
    val_items: Sequence[Tokenised],
    *,
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
    """Add ``adapter_config`` as adapter ``name`` to ``top`` (it becomes the active adapter) and
    train it with the language-model loss on ``train_items``, keeping the checkpoint with the
    lowest validation loss; the layers below ``top.start`` run once to cache their outputs."""
    seed_everything(seed)
    add_adapter(top, adapter_config, name=name)
    own = {id(p) for p in get_adapter_parameters(top, name)}
    for p in top.parameters():  # adapters kept from earlier runs stay as they are
        p.requires_grad_(id(p) in own)
    train = CachedLMData(train_items, top.lm, top.start)
    val = CachedLMData(val_items, top.lm, top.start)
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
    lm: nn.Module,
    tok,
    examples: Sequence[Example],
    kind: str,
    *,
    style: str = "alpaca",
    max_new_tokens: int = 24,
    num_beams: int = 1,
) -> dict[str, float]:
    """Accuracy (%) of ``lm`` (with whatever adapter is active) on ``examples`` by generation."""
    step = generation_eval_step(
        tok, kind, style=style, max_new_tokens=max_new_tokens, num_beams=num_beams
    )
    loader = DataLoader(list(examples), batch_size=16, collate_fn=_list_collate)
    return evaluate(
        lm, loader, step, accuracy_metrics, device=next(lm.parameters()).device, progress=False
    )


def train_adapter(
    top: TopOfModel,
    tok,
    cfg: AdaptConfig,
    train: Sequence[Example],
    val: Sequence[Example],
    test: Sequence[Example],
    *,
    kind: str,
    keep: bool = False,
    name: str | None = None,
) -> RunResult:
    """Train ``cfg.method`` on ``train`` (best checkpoint by ``val`` loss) and score ``test`` by
    generation with LLM-Adapters' answer extraction. The adapter is removed again unless ``keep``."""
    method, placement = parse_method(cfg.method)
    layers = range(top.start, len(decoder_layers(top.lm)))
    adapter_cfg = build_config(
        cfg.method, layers, bottleneck=cfg.bottleneck, lora_r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, prefix_tokens=cfg.prefix_tokens,
    )  # fmt: skip
    tokenise = {
        "style": cfg.prompt_style,
        "train_on_inputs": cfg.train_on_inputs,
        "cutoff": cfg.cutoff,
    }
    start = time.perf_counter()
    name = name or f"{method}_{placement}"
    result, top = train_lm(
        top, adapter_cfg, tokenise_examples(train, tok, **tokenise),
        tokenise_examples(val, tok, **tokenise), run_dir=cfg.out, name=name,
        steps=cfg.steps, epochs=cfg.epochs, batch_size=cfg.batch_size, grad_accum=cfg.grad_accum,
        lr=cfg.lr or (METHODS[method].lr if cfg.preset == "paper" else METHODS[method].short_lr),
        seed=cfg.seed, warmup_steps=cfg.warmup_steps,
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


class _GenAdapterTrainer(nn.Module):
    """Holds the generator for the engine (the frozen LM is not part of its state)."""

    def __init__(self, adapter: Any) -> None:
        super().__init__()
        self.adapter = adapter
        self.generators = adapter.generators


def genadapter_loss(
    model: _GenAdapterTrainer, batch: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Self-supervised loss (the paper's reconstruction + completion): the context is encoded
    into deltas, then the LM without the context in its prompt predicts the context again
    (reconstruction) and the text that follows it (completion)."""
    ga = model.adapter
    states = ga.encode(batch["context"], batch["context_mask"])
    with ga.using(states):
        logits = ga.lm(
            input_ids=batch["target"], attention_mask=batch["target_mask"], use_cache=False
        ).logits
    mask = batch["target_mask"][:, 1:].bool()
    loss = torch.nn.functional.cross_entropy(
        logits[:, :-1][mask].float(), batch["target"][:, 1:][mask]
    )
    return {"loss": loss}


class GenAdapterData(torch.utils.data.Dataset):
    """(context ids, target ids) pairs: each document's first part is the context; targets are
    the context itself (reconstruction) and the rest (completion)."""

    def __init__(self, texts: Sequence[str], tok, cutoff: int = 256) -> None:
        self.items: list[tuple[list[int], list[int]]] = []
        for text in texts:
            ids = tok(text, add_special_tokens=False)["input_ids"][:cutoff]
            cut = max(1, len(ids) // 2)
            self.items.append((ids[:cut], ids[:cut]))  # reconstruction
            if len(ids) - cut > 1:
                self.items.append((ids[:cut], ids[cut:]))  # completion
        if not self.items:
            raise ValueError("no documents to train on")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[list[int], list[int]]:
        return self.items[index]


def collate_genadapter(items: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
    from .task import _pad

    ctx, cm = _pad([c for c, _ in items], 0)
    tgt, tm = _pad([t for _, t in items], 0)
    return {"context": ctx, "context_mask": cm, "target": tgt, "target_mask": tm}


def train_genadapter(
    adapter: Any,
    tok,
    train_texts: Sequence[str],
    val_texts: Sequence[str],
    *,
    run_dir: str | Path,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> Any:
    """Train the generator of ``adapter`` (a :class:`GenerativeAdapter`) through the engine."""
    from adapterlab.core import LinearProbeConfig

    seed_everything(seed)
    model = _GenAdapterTrainer(adapter)
    add_adapter(model, LinearProbeConfig(modules_to_save=["generators"]), name="genadapter")
    cfg = TrainConfig(
        output_dir=str(run_dir), max_steps=steps, batch_size=batch_size, eval_batch_size=8, lr=lr,
        scheduler="linear_warmup", warmup_steps=max(1, steps // 10), metric="loss",
        metric_mode="min", eval_every_steps=max(1, steps // 2), keep_last=1, seed=seed,
        log_every=max(1, steps // 4), overwrite=True, progress=False, max_grad_norm=1.0,
    )  # fmt: skip
    trainer = Trainer(
        model, cfg, train_data=DataLoader(GenAdapterData(train_texts, tok), collate_fn=collate_genadapter),
        eval_data=DataLoader(GenAdapterData(val_texts, tok), collate_fn=collate_genadapter),
        loss_fn=genadapter_loss, metric_fn=lambda outputs: {}, adapter_name="genadapter",
        run_config={"stage": "genadapter"},
    )  # fmt: skip
    return trainer.fit()
