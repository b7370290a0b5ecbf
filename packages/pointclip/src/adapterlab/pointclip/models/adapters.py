"""Multi-view adapters for few-shot point-cloud classification.

* :class:`SimplifiedViewAdapter` and :class:`DualPathAdapter`: CLIP2Point's Dual-Path Adapter
  (Huang et al., ICCV 2023, Sec. 3.3; arXiv-v1 "DPA", ``models/dpa.py`` + ``models/adapter.py`` of
  the original code). Each path applies per-view weights (init 0.5), BatchNorm over the view
  features, dropout 0.075, ``Linear(V*D -> D)``, BN, ReLU, dropout, ``Linear(D -> D)``; the two
  paths (pre-trained depth encoder, original CLIP encoder) are averaged 0.5/0.5, L2-normalised and
  scored by cosine similarity with the L2-normalised text features, **without a logit scale**.
  As in the original there is no residual connection.
* :class:`InterViewAdapter` and :class:`PointCLIPAdapterHead`: PointCLIP's inter-view adapter
  (Zhang et al., CVPR 2022, ``trainers/fewshot.py``): the global branch above without the last
  Linear, a view branch ``Linear(D->D), ReLU, Linear(D->V*D), ReLU`` and the residual
  ``0.6 * adapted + 0.4 * original``; logits are ``logit_scale * cos`` between the concatenated
  view features and the text features tiled over the views. Trained with
  :func:`smooth_cross_entropy` (label smoothing 0.2, the DGCNN variant PointCLIP uses).

The heads work on pre-computed per-view encoder features ``[B, V, D]``: the encoders are frozen
in few-shot training, so features are computed once (see :mod:`.fewshot`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DualPathAdapter",
    "InterViewAdapter",
    "PointCLIPAdapterHead",
    "SimplifiedViewAdapter",
    "ViewBatchNorm",
    "smooth_cross_entropy",
]


class ViewBatchNorm(nn.Module):
    """BatchNorm1d over the feature axis of ``[B, V, D]`` view features (each view a sample)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, v, d = x.shape
        return self.bn(x.reshape(b * v, d)).reshape(b, v, d)


def _check_views(x: torch.Tensor, num_views: int, dim: int, who: str) -> None:
    if x.dim() != 3 or x.shape[1] != num_views or x.shape[2] != dim:
        raise ValueError(
            f"{who} expects view features of shape [B, {num_views}, {dim}], got {tuple(x.shape)}"
        )


class SimplifiedViewAdapter(nn.Module):
    """CLIP2Point's simplified view adapter: ``[B, V, D] -> [B, D]`` (no residual)."""

    def __init__(self, num_views: int, dim: int, dropout: float = 0.075, init: float = 0.5):
        super().__init__()
        self.num_views, self.dim = num_views, dim
        self.view_weights = nn.Parameter(torch.full((num_views,), float(init)))
        self.global_f = nn.Sequential(
            ViewBatchNorm(dim),
            nn.Dropout(dropout),
            nn.Flatten(),
            nn.Linear(num_views * dim, dim),
            nn.BatchNorm1d(dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(dim, dim),
        )

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        _check_views(feats, self.num_views, self.dim, type(self).__name__)
        return self.global_f(feats * self.view_weights.view(1, -1, 1))


class DualPathAdapter(nn.Module):
    """Dual-Path Adapter head with fixed text features; ``forward`` returns cosine logits.

    Args:
        text_features: ``[C, D]`` class text features (normalised here; kept as a buffer).
        num_views: number of rendered views V.
        dropout: dropout of both adapters (0.075 in the original).
    """

    def __init__(self, text_features: torch.Tensor, num_views: int, dropout: float = 0.075):
        super().__init__()
        dim = text_features.shape[1]
        self.register_buffer("text_features", F.normalize(text_features.detach().float(), dim=-1))
        self.pre_adapter = SimplifiedViewAdapter(num_views, dim, dropout)
        self.ori_adapter = SimplifiedViewAdapter(num_views, dim, dropout)

    def embed(self, pre_feats: torch.Tensor, ori_feats: torch.Tensor) -> torch.Tensor:
        """L2-normalised fused feature ``[B, D]`` from both paths' view features ``[B, V, D]``."""
        fused = 0.5 * (self.pre_adapter(pre_feats) + self.ori_adapter(ori_feats))
        return F.normalize(fused, dim=-1)

    def forward(self, pre_feats: torch.Tensor, ori_feats: torch.Tensor) -> torch.Tensor:
        """Cosine logits ``[B, C]`` (no logit scale, as in the original DPA)."""
        return self.embed(pre_feats, ori_feats) @ self.text_features.t()


class InterViewAdapter(nn.Module):
    """PointCLIP's inter-view adapter: ``[B, V, D] -> [B, V*D]`` with a 0.6/0.4 residual."""

    def __init__(
        self,
        num_views: int,
        dim: int,
        ratio: float = 0.6,
        dropout: float = 0.075,
        init: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_views, self.dim, self.ratio = num_views, dim, ratio
        self.view_weights = nn.Parameter(torch.full((num_views,), float(init)))
        self.global_f = nn.Sequential(
            ViewBatchNorm(dim),
            nn.Dropout(dropout),
            nn.Flatten(),
            nn.Linear(num_views * dim, dim),
            nn.BatchNorm1d(dim),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.view_f = nn.Sequential(
            nn.Linear(dim, dim),
            nn.ReLU(),
            nn.Linear(dim, num_views * dim),
            nn.ReLU(),
        )

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        _check_views(feats, self.num_views, self.dim, type(self).__name__)
        adapted = self.view_f(self.global_f(feats * self.view_weights.view(1, -1, 1)))
        return self.ratio * adapted + (1.0 - self.ratio) * feats.flatten(1)


class PointCLIPAdapterHead(nn.Module):
    """PointCLIP few-shot head: inter-view adapter on one encoder's view features.

    ``logits = logit_scale * normalize(adapter(f)) . normalize(tile_V(text))``.
    """

    def __init__(
        self,
        text_features: torch.Tensor,
        num_views: int,
        logit_scale: float = 100.0,
        ratio: float = 0.6,
    ) -> None:
        super().__init__()
        dim = text_features.shape[1]
        tiled = text_features.detach().float().repeat(1, num_views)
        self.register_buffer("text_features", F.normalize(tiled, dim=-1))
        self.adapter = InterViewAdapter(num_views, dim, ratio=ratio)
        self.logit_scale = logit_scale

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        emb = F.normalize(self.adapter(feats), dim=-1)
        return self.logit_scale * emb @ self.text_features.t()


def smooth_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, eps: float = 0.2
) -> torch.Tensor:
    """Label-smoothed cross entropy as in PointCLIP/DGCNN: ``1-eps`` on the target, ``eps/(C-1)``
    on each other class."""
    n_class = logits.shape[1]
    if n_class < 2:
        return F.cross_entropy(logits, target)
    one_hot = torch.zeros_like(logits).scatter(1, target.view(-1, 1), 1.0)
    one_hot = one_hot * (1 - eps) + (1 - one_hot) * eps / (n_class - 1)
    return -(one_hot * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
