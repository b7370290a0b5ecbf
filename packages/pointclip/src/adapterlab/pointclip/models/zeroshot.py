"""Zero-shot point-cloud classification with CLIP (PointCLIP / CLIP2Point style).

Each cloud is rendered from V views; every view is encoded (by the original CLIP image encoder or
by CLIP2Point's pre-trained depth encoder), L2-normalised and compared with the class text
features. View scores are aggregated as a weighted sum (CLIP2Point sums them with equal weights;
PointCLIP V2 searches per-view weights). Text features come from one or several prompt templates;
with ``ensemble=True`` the normalised features of all templates are averaged and re-normalised
(CLIP's prompt ensembling).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .clip import ClipBundle

__all__ = [
    "TEMPLATES",
    "aggregate_view_logits",
    "build_text_features",
    "encode_views",
    "format_prompts",
    "zero_shot_logits",
]

#: Prompt template sets. ``clip2point`` is the original CLIP2Point prompt; ``pointclip`` the
#: PointCLIP V1 zero-shot prompt; ``ensemble`` a small hand-written set for ensembling.
TEMPLATES: dict[str, list[str]] = {
    "clip2point": ["image of a {}"],
    "pointclip": ["point cloud depth map of a {}."],
    "pointclip_fewshot": ["point cloud of a big {}."],
    "ensemble": [
        "image of a {}.",
        "point cloud depth map of a {}.",
        "a depth map of a {}.",
        "a grey rendering of a {}.",
        "a 3D model of a {}.",
        "a silhouette of a {}.",
    ],
}


def format_prompts(classnames: Sequence[str], template: str) -> list[str]:
    """``template.format(name)`` for every class, with underscores turned into spaces."""
    if "{}" not in template:
        raise ValueError(f"Prompt template {template!r} has no '{{}}' placeholder for the class")
    return [template.format(c.replace("_", " ")) for c in classnames]


def build_text_features(
    clip: ClipBundle,
    classnames: Sequence[str],
    templates: Sequence[str] | str = "clip2point",
    ensemble: bool = True,
) -> torch.Tensor:
    """L2-normalised class text features ``[C, D]``.

    Args:
        clip: the loaded CLIP model.
        classnames: class names (``night_stand`` becomes "night stand").
        templates: a key of :data:`TEMPLATES` or a list of templates with ``{}``.
        ensemble: average over all templates; if False only the first template is used.
    """
    if isinstance(templates, str):
        if templates not in TEMPLATES:
            raise ValueError(f"Unknown template set {templates!r}; known: {sorted(TEMPLATES)}")
        templates = TEMPLATES[templates]
    if not templates:
        raise ValueError("At least one prompt template is needed")
    if not ensemble:
        templates = list(templates)[:1]
    feats = torch.stack([clip.encode_text(format_prompts(classnames, t)) for t in templates])
    return F.normalize(feats.mean(0), dim=-1)


@torch.no_grad()
def encode_views(encoder: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Encode multi-view renders ``[B, V, 3, H, W]`` into raw features ``[B, V, D]``.

    The encoder's own device is used; the result is on that device, in float32.
    """
    if images.dim() != 5:
        raise ValueError(f"encode_views expects [B, V, 3, H, W] images, got {tuple(images.shape)}")
    b, v = images.shape[:2]
    device = next(encoder.parameters()).device
    flat = images.reshape(b * v, *images.shape[2:])
    out = [
        encoder(flat[i : i + batch_size].to(device)).float()
        for i in range(0, flat.shape[0], batch_size)
    ]
    return torch.cat(out).reshape(b, v, -1)


def aggregate_view_logits(
    view_logits: torch.Tensor, view_weights: Sequence[float] | torch.Tensor | None = None
) -> torch.Tensor:
    """Weighted sum over views of per-view logits ``[B, V, C] -> [B, C]`` (equal weights if
    None)."""
    v = view_logits.shape[1]
    if view_weights is None:
        return view_logits.sum(1)
    w = torch.as_tensor(view_weights, dtype=view_logits.dtype, device=view_logits.device)
    if w.shape != (v,):
        raise ValueError(f"view_weights must have {v} entries (one per view), got {tuple(w.shape)}")
    return (view_logits * w.view(1, v, 1)).sum(1)


def zero_shot_logits(
    view_features: torch.Tensor,
    text_features: torch.Tensor,
    view_weights: Sequence[float] | torch.Tensor | None = None,
    logit_scale: float = 100.0,
) -> torch.Tensor:
    """Zero-shot logits ``[B, C]`` from view features ``[B, V, D]`` and text features ``[C, D]``.

    ``logits[b, c] = logit_scale * sum_v w_v * cos(f_bv, t_c)``.
    """
    if view_features.dim() != 3 or view_features.shape[-1] != text_features.shape[-1]:
        raise ValueError(
            f"view features [B, V, D] and text features [C, D] must share D; got "
            f"{tuple(view_features.shape)} and {tuple(text_features.shape)}"
        )
    f = F.normalize(view_features.float(), dim=-1)
    t = F.normalize(text_features.float().to(f.device), dim=-1)
    per_view = logit_scale * torch.einsum("bvd,cd->bvc", f, t)
    return aggregate_view_logits(per_view, view_weights)
