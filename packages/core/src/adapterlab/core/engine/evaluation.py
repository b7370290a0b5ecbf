"""Evaluation over a split: per-sample outputs concatenated (and gathered), then metrics.

:func:`evaluate` is the one evaluation loop of every package; the ``Trainer`` runs the same
:func:`evaluation_loop` over its sharded batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from accelerate.utils import send_to_device
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

__all__ = [
    "EvalAccumulator",
    "batch_length",
    "default_metric_fn",
    "evaluate",
    "evaluation_loop",
    "merge_payloads",
    "split_loss",
]

MetricFn = Callable[[dict[str, torch.Tensor]], dict[str, float]]


def default_metric_fn(outputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Top-1 accuracy from ``outputs["logits"]`` (argmax over the last dim) and ``outputs["target"]``."""
    if "logits" not in outputs or "target" not in outputs:
        return {}
    pred = outputs["logits"].argmax(dim=-1)
    target = outputs["target"].reshape(pred.shape)
    return {"accuracy": (pred == target).float().mean().item() if len(pred) else float("nan")}


def split_loss(out: Any, where: str = "loss_fn") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``loss_fn`` output -> (scalar loss, other scalar tensors to log)."""
    if isinstance(out, torch.Tensor):
        loss, extras = out, {}
    elif isinstance(out, dict) and "loss" in out:
        loss = out["loss"]
        extras = {
            k: v
            for k, v in out.items()
            if k != "loss" and isinstance(v, torch.Tensor) and v.dim() == 0
        }
    else:
        raise ValueError(
            f"{where} must return a scalar tensor or a dict with a 'loss' entry, got {type(out)}"
        )
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise ValueError(
            f"{where}'s loss must be a scalar tensor, got {getattr(loss, 'shape', loss)!r}"
        )
    return loss, extras


class EvalAccumulator:
    """Collects one process's evaluation outputs: scalars are averaged (weighted by batch size),
    tensors with a batch dimension are concatenated."""

    def __init__(self) -> None:
        self.per_sample: dict[str, list[torch.Tensor]] = {}
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, out: Any, n: int) -> None:
        """Add one batch's ``eval_step`` (or ``loss_fn``) output for ``n`` samples."""
        if isinstance(out, torch.Tensor):
            out = {"loss": out}
        if not isinstance(out, dict):
            raise ValueError(f"eval_step must return a dict of tensors, got {type(out).__name__}")
        self.count += n
        for key, value in out.items():
            if not isinstance(value, torch.Tensor):
                continue
            value = value.detach()
            if value.dim() == 0:
                self.sums[key] = self.sums.get(key, 0.0) + float(value.float()) * n
            else:
                value = value.float() if value.is_floating_point() else value
                self.per_sample.setdefault(key, []).append(value.cpu())

    def payload(self) -> dict[str, Any]:
        """What this process contributes (CPU tensors and floats)."""
        return {"per_sample": self.per_sample, "sums": self.sums, "count": self.count}


def merge_payloads(payloads: list[dict[str, Any]], metric_fn: MetricFn) -> dict[str, float]:
    """Combine the processes' payloads (in rank order) and compute the metrics."""
    count = sum(p["count"] for p in payloads)
    metrics: dict[str, float] = {}
    for key in sorted({k for p in payloads for k in p["sums"]}):
        metrics[key] = sum(p["sums"].get(key, 0.0) for p in payloads) / max(count, 1)
    outputs: dict[str, torch.Tensor] = {}
    for key in sorted({k for p in payloads for k in p["per_sample"]}):
        parts = [t for p in payloads for t in p["per_sample"].get(key, [])]
        outputs[key] = torch.cat(parts) if parts else torch.empty(0)
    metrics.update({k: float(v) for k, v in metric_fn(outputs).items()})
    metrics["num_samples"] = float(count)
    return metrics


def batch_length(batch: Any) -> int:
    """Number of samples in a batch: the first dimension of its first tensor (dicts, lists,
    tuples and objects with tensor attributes are searched in order)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    if isinstance(batch, dict):
        items = list(batch.values())
    elif isinstance(batch, list | tuple):
        items = list(batch)
    elif hasattr(batch, "__dict__"):
        items = list(vars(batch).values())
    else:
        items = []
    for item in items:
        n = batch_length(item) if isinstance(item, torch.Tensor | dict | list | tuple) else 0
        if n:
            return n
    if isinstance(batch, list | tuple) and batch:
        return len(batch)
    raise ValueError(f"cannot tell the number of samples in a batch of type {type(batch).__name__}")


def evaluation_loop(
    model: nn.Module,
    batches: Iterable[tuple[Any, int]],
    step_fn: Callable[[nn.Module, Any], Any],
    *,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
    non_blocking: bool = False,
) -> EvalAccumulator:
    """Run ``step_fn`` on ``(batch, n)`` pairs under ``no_grad`` in eval mode; the model's
    train/eval mode is restored afterwards, also on error."""
    was_training = model.training
    model.eval()
    accumulator = EvalAccumulator()
    try:
        with torch.no_grad():
            for batch, n in batches:
                batch = send_to_device(batch, device, non_blocking=non_blocking)
                with autocast():
                    out = step_fn(model, batch)
                accumulator.add(out, n)
    finally:
        model.train(was_training)
    return accumulator


def evaluate(
    model: nn.Module,
    data: Dataset | Iterable[Any],
    eval_step: Callable[[nn.Module, Any], Any],
    metric_fn: MetricFn | None = None,
    *,
    batch_size: int = 32,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    device: str | torch.device | None = None,
    progress: bool | None = True,
    desc: str = "eval",
) -> dict[str, float]:
    """Metrics of ``model`` on ``data``: the engine's evaluation outside a ``Trainer``.

    ``data`` is a map-style ``Dataset`` (batched here with ``batch_size`` and ``collate_fn``) or
    any iterable of ready batches (a ``DataLoader``). ``eval_step(model, batch)`` returns a dict:
    scalars are averaged over samples, tensors with a batch dimension are concatenated and handed
    to ``metric_fn`` (default: accuracy from ``logits`` and ``target``). The model is moved to
    ``device`` (default :func:`resolve_device`); a progress bar shows on a terminal.
    """
    from .device import resolve_device
    from .progress import progress as progress_bar

    target = resolve_device(device)
    model.to(target)
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        loader: Iterable[Any] = DataLoader(
            data, batch_size=batch_size, shuffle=False, collate_fn=collate_fn
        )
    else:
        loader = data
    total = len(loader) if hasattr(loader, "__len__") else None
    pairs = ((batch, batch_length(batch)) for batch in loader)
    accumulator = evaluation_loop(
        model,
        progress_bar(pairs, desc=desc, total=total, enabled=progress),
        eval_step,
        device=target,
    )
    return merge_payloads([accumulator.payload()], metric_fn or default_metric_fn)
