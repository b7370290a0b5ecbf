"""MoSA's optional consistency loss between two stochastic forward passes."""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["symmetric_kl_loss"]


def symmetric_kl_loss(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """``0.5 * (KL(q || p) + KL(p || q))`` averaged over the batch, ``p, q`` the softmaxes.

    As the authors' ``symmetric_KL_loss`` (``src/solver/losses.py``), used with
    ``ADDITIONAL=True``: the model runs twice on the same batch (each pass draws its own
    experts) and this term, times ``REG_WEIGHT`` (1.0), is added to the task loss. Each KL term
    treats its target distribution as a constant (``detach``), so every pass is pulled towards
    the other. Logits are ``[batch, classes]`` (any leading shape; the batch is the first dim).
    Computed in float32.
    """
    if logits_a.shape != logits_b.shape:
        raise ValueError(f"logit shapes differ: {tuple(logits_a.shape)} vs {tuple(logits_b.shape)}")
    a = logits_a.float()
    b = logits_b.float()
    kl_ab = F.kl_div(F.log_softmax(a, dim=-1), F.softmax(b.detach(), dim=-1), reduction="batchmean")
    kl_ba = F.kl_div(F.log_softmax(b, dim=-1), F.softmax(a.detach(), dim=-1), reduction="batchmean")
    return 0.5 * (kl_ab + kl_ba)
