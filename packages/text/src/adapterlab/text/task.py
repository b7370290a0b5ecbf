"""Losses and evaluation steps the engine needs: masked-LM loss and topic classification."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = ["mlm_eval_step", "mlm_loss", "mlm_metrics", "topic_eval_step", "topic_loss"]


def mlm_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the masked tokens."""
    logits, targets = model.mlm_logits(batch)
    return F.cross_entropy(logits.float(), targets)


def mlm_eval_step(model, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per sample: summed masked-token NLL and the number of masked tokens."""
    logits, targets = model.mlm_logits(batch)
    nll = F.cross_entropy(logits.float(), targets, reduction="none")
    rows = (batch["labels"] != -100).nonzero()[:, 0]
    n = batch["labels"].shape[0]
    total = torch.zeros(n, device=nll.device).index_add_(0, rows, nll)
    count = torch.zeros(n, device=nll.device).index_add_(0, rows, torch.ones_like(nll))
    return {"nll": total, "count": count}


def mlm_metrics(outputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Token-level masked-LM loss and its perplexity over the whole split."""
    loss = float(outputs["nll"].sum() / outputs["count"].sum().clamp_min(1))
    return {"mlm_loss": loss, "perplexity": math.exp(min(loss, 50.0))}


def topic_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return F.cross_entropy(model(batch["input_ids"], batch["attention_mask"]), batch["target"])


def topic_eval_step(model, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"logits": model(batch["input_ids"], batch["attention_mask"]), "target": batch["target"]}
