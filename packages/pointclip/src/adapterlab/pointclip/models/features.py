"""Render point clouds from all views once and encode them with one or more frozen encoders.

Zero-shot evaluation and few-shot adapter training keep the encoders frozen, so the per-view
features ``[N, V, D]`` of a split are computed once and reused (the original code re-rendered and
re-encoded every epoch; the features are the same for a fixed point sample).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from adapterlab.core.engine import progress as progress_bar
from torch import nn
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "ImageFeatureTable",
    "ViewFeatures",
    "compute_image_features",
    "extract_view_features",
]


@dataclass
class ViewFeatures:
    """Per-view features of a split: ``features[name]`` is ``[N, V, D]``; ``labels`` is ``[N]``."""

    features: dict[str, torch.Tensor]
    labels: torch.Tensor

    def subset(self, indices: list[int]) -> ViewFeatures:
        """The rows ``indices`` of every feature tensor and of the labels."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ViewFeatures({k: v[idx] for k, v in self.features.items()}, self.labels[idx])

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@torch.no_grad()
def extract_view_features(
    dataset: Dataset,
    renderer: nn.Module,
    encoders: Mapping[str, nn.Module],
    batch_size: int = 32,
    device: str | torch.device | None = None,
    progress: bool = True,
    desc: str = "encode views",
) -> ViewFeatures:
    """Render every item of ``dataset`` (items with ``points`` and ``label``) from all views and
    encode the renders with every encoder in ``encoders`` (eval mode; restored afterwards)."""
    if device is None:
        device = next(iter(encoders.values())).parameters().__next__().device
    renderer = renderer.to(device)
    modes = {k: e.training for k, e in encoders.items()}
    for e in encoders.values():
        e.eval()
    feats: dict[str, list[torch.Tensor]] = {k: [] for k in encoders}
    labels: list[torch.Tensor] = []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    for batch in progress_bar(loader, desc=desc, enabled=progress):
        images = renderer(batch["points"].to(device))
        b, v = images.shape[:2]
        flat = images.reshape(b * v, *images.shape[2:])
        for name, enc in encoders.items():
            feats[name].append(enc(flat).float().reshape(b, v, -1).cpu())
        labels.append(torch.as_tensor(batch["label"]).long())
    for k, e in encoders.items():
        e.train(modes[k])
    if not labels:
        raise ValueError("Cannot extract features from an empty dataset")
    return ViewFeatures({k: torch.cat(v) for k, v in feats.items()}, torch.cat(labels))


@dataclass
class ImageFeatureTable:
    """Frozen-image-encoder features of every stored RGB view: ``features[i, v]`` for ``ids[i]``."""

    ids: list[str]
    features: torch.Tensor  # [N, V, D] float32, cpu

    def row(self, item_id: str) -> int:
        """Row of an object id."""
        if not hasattr(self, "_index"):
            self._index = {k: i for i, k in enumerate(self.ids)}
        return self._index[item_id]


@torch.no_grad()
def compute_image_features(
    visual: nn.Module, pairs: Dataset, batch_size: int = 32, progress: bool = True
) -> ImageFeatureTable:
    """Encode every RGB view of a pairs dataset (``views="all"``) with the frozen image encoder."""
    device = next(visual.parameters()).device
    was_training = visual.training
    visual.eval()
    ids, feats = [], []
    loader = DataLoader(pairs, batch_size=batch_size, shuffle=False, num_workers=0)
    for batch in progress_bar(loader, desc="image features", enabled=progress):
        images = batch["images"]
        b, v = images.shape[:2]
        out = visual(images.reshape(b * v, *images.shape[2:]).to(device)).float()
        feats.append(out.reshape(b, v, -1).cpu())
        ids.extend(batch["id"])
    visual.train(was_training)
    if not feats:
        raise ValueError("No image-depth pairs to encode (empty split)")
    return ImageFeatureTable(ids=ids, features=torch.cat(feats))
