"""What the core engine needs for each training task: loss_fn, eval_step and metric_fn.

* Pre-training (CLIP2Point image-depth): the model's loss dict; evaluation embeds un-jittered
  depth renders and scores depth -> image retrieval against the frozen image features.
* Few-shot heads: cross entropy on the Dual-Path Adapter's cosine logits; label-smoothed (0.2)
  cross entropy for PointCLIP's inter-view adapter. The engine's default metric (accuracy on
  ``logits``/``target``) scores both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .models.adapters import smooth_cross_entropy

__all__ = [
    "FEWSHOT_STEPS",
    "dpa_eval_step",
    "dpa_loss",
    "logging_metric_fn",
    "pointclip_eval_step",
    "pointclip_loss",
    "pretrain_eval_step",
    "pretrain_loss",
    "pretrain_metric_fn",
    "pretrain_param_groups",
    "retrieval_metrics",
]


def retrieval_metrics(
    depth: torch.Tensor, image: torch.Tensor, groups: torch.Tensor | None = None
) -> dict[str, float]:
    """Top-1 / top-5 retrieval between paired features (``depth[i]`` matches ``image[i]``).

    With ``groups`` retrieval runs inside each group (candidates = the group's image features)
    and the results are averaged over all pairs. ``retrieval_chance`` is the expected top-1 of
    a random ranking.
    """
    if groups is None:
        groups = torch.zeros(depth.shape[0], dtype=torch.long)
    d = F.normalize(depth.float(), dim=-1)
    im = F.normalize(image.float(), dim=-1)
    groups = groups.to(d.device)
    top1 = top5 = i2d = chance = 0.0
    n = d.shape[0]
    for g in torch.unique(groups):
        idx = (groups == g).nonzero().squeeze(1)
        sim = d[idx] @ im[idx].t()
        target = torch.arange(len(idx), device=sim.device)
        k = min(5, len(idx))
        top1 += float((sim.argmax(1) == target).sum())
        top5 += float((sim.topk(k, dim=1).indices == target[:, None]).any(1).sum())
        i2d += float((sim.argmax(0) == target).sum())
        chance += 1.0  # len(idx) pairs, each with chance 1 / len(idx)
    return {
        "retrieval_top1": top1 / n,
        "retrieval_top5": top5 / n,
        "retrieval_i2d_top1": i2d / n,
        "retrieval_chance": chance / n,
    }


# --------------------------------------------------------------------------- pre-training


def pretrain_loss(model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """CLIP2Point's loss dict (``loss``, ``loss_image``, ``loss_depth``, ``w``) of a batch."""
    return model(batch["points"], batch["view"], batch["image_feat"])


def pretrain_eval_step(model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Depth features of un-jittered renders next to the frozen image features."""
    return {
        "depth": model.embed_depth(batch["points"], batch["view"]),
        "image": batch["image_feat"],
        "view": batch["view"],
        "round": batch["round"],
    }


def pretrain_metric_fn(outputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Retrieval within each round (mixed views, the headline number) and, as a harder variant,
    within each view ("which object is this, given the view")."""
    out = retrieval_metrics(outputs["depth"], outputs["image"], outputs["round"])
    same_view = retrieval_metrics(outputs["depth"], outputs["image"], outputs["view"])
    out["retrieval_top1_same_view"] = same_view["retrieval_top1"]
    return out


def logging_metric_fn(epochs: int) -> Callable[[dict[str, torch.Tensor]], dict[str, float]]:
    """:func:`pretrain_metric_fn` that also prints one line per evaluation (progress when no
    bar is shown)."""
    count = {"n": 0}

    def fn(outputs: dict[str, torch.Tensor]) -> dict[str, float]:
        metrics = pretrain_metric_fn(outputs)
        count["n"] += 1
        print(
            f"      pretrain eval {count['n']}: retrieval top-1 {metrics['retrieval_top1']:.3f}"
            f" (chance {metrics['retrieval_chance']:.3f}, {epochs} epochs)",
            flush=True,
        )
        return metrics

    return fn


def pretrain_param_groups(model: nn.Module, w_lr: float) -> list[dict[str, Any]]:
    """Depth-encoder (or adapter) parameters at the run's lr; ``w`` at ``w_lr``, no decay."""
    w = model.criterion.w
    rest = [p for p in model.parameters() if p.requires_grad and p is not w]
    return [{"params": rest}, {"params": [w], "lr": w_lr, "weight_decay": 0.0}]


# --------------------------------------------------------------------------- few-shot heads


def dpa_loss(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    """Cross entropy on the Dual-Path Adapter's cosine logits (CLIP2Point's ``fewshot.py``)."""
    return F.cross_entropy(model(batch["pre"], batch["ori"]), batch["label"])


def dpa_eval_step(model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Logits and targets for the engine's accuracy."""
    return {"logits": model(batch["pre"], batch["ori"]), "target": batch["label"]}


def pointclip_loss(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    """PointCLIP's label-smoothed cross entropy (eps 0.2)."""
    return smooth_cross_entropy(model(batch["pre"]), batch["label"], eps=0.2)


def pointclip_eval_step(model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Logits and targets for the engine's accuracy."""
    return {"logits": model(batch["pre"]), "target": batch["label"]}


#: head name -> (loss_fn, eval_step)
FEWSHOT_STEPS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "dpa": (dpa_loss, dpa_eval_step),
    "pointclip": (pointclip_loss, pointclip_eval_step),
}
