"""The datasets the engine trains on: pre-training samples and few-shot feature rows.

Both wrap objects built elsewhere (an ``ImageDepthPairs`` split with an image-feature table; a
``ViewFeatures`` split) and only index them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = ["AugmentedClouds", "FeatureDataset", "PretrainDataset"]


class PretrainDataset(Dataset):
    """Points + a view index + the frozen image feature of that view.

    Args:
        pairs: an ``ImageDepthPairs`` split (points and ids are taken from it).
        table: image features of the same objects.
        views_per_object: training: each object appears this many times per epoch, each time
            with a fresh random view (CLIP2Point draws one random view per object).
        all_views: evaluation: every (object, view) pair once, arranged in V rounds; in round
            r object i shows view (i + r) mod V. Items carry ``round`` so retrieval runs inside a
            round (N candidates, one view per object, as in a CLIP2Point batch) and is averaged
            over the rounds.
    """

    def __init__(
        self,
        pairs: Any,
        table: Any,
        views_per_object: int = 1,
        all_views: bool = False,
    ) -> None:
        self.pairs, self.table = pairs, table
        self.num_views = table.features.shape[1]
        self.all_views = all_views
        self.repeat = self.num_views if all_views else max(1, int(views_per_object))

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat

    def _split(self, index: int) -> tuple[int, int | None]:
        n = len(self.pairs)
        if self.all_views:
            rnd, i = divmod(index, n)
            return i, (i + rnd) % self.num_views
        return index % n, None

    def describe(self, index: int) -> str:
        """The object id (and the pairs folder) behind an index."""
        i, _ = self._split(index)
        return f"{getattr(self.pairs, 'root', '')}:{self.pairs.ids[i]}"

    def __getitem__(self, index: int) -> dict[str, Any]:
        i, view = self._split(index)
        points = self.pairs.points(i)  # the image side is the cached feature: no PNG decode
        if view is None:
            view = int(torch.randint(self.num_views, (1,)))
        row = self.table.row(self.pairs.ids[i])
        return {
            "points": points,
            "view": torch.tensor(view, dtype=torch.long),
            "round": torch.tensor(index // len(self.pairs), dtype=torch.long),
            "image_feat": self.table.features[row, view],
        }


class FeatureDataset(Dataset):
    """Items ``{"pre": [V, D], "ori": [V, D], "label": int}`` from per-view features (``ViewFeatures``)."""

    def __init__(self, feats: Any, pre_key: str = "pre", ori_key: str = "ori") -> None:
        self.pre = feats.features[pre_key]
        self.ori = feats.features[ori_key]
        self.labels = feats.labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"pre": self.pre[i], "ori": self.ori[i], "label": self.labels[i]}


class AugmentedClouds(Dataset):
    """Items of a point-cloud dataset with PointCLIP's random scale/shift applied (seeded per
    item, so a copy is reproducible)."""

    def __init__(self, dataset: Any, seed: int = 0) -> None:
        self.dataset, self.seed = dataset, int(seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from .transforms import scale_and_shift

        item = self.dataset[i]
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        return {"points": scale_and_shift(item["points"], gen), "label": item["label"]}
