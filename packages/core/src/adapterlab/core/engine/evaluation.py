"""Evaluation over a split: per-sample outputs concatenated (and gathered), then metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["EvalAccumulator", "default_metric_fn", "merge_payloads", "split_loss"]

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
