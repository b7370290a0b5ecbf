"""What the core engine needs for AST classification: loss, evaluation step, and the torch datasets."""

from __future__ import annotations

import torch

from .features import FbankConfig
from .loaders import AudioClipDataset, FeatureSet
from .specaug import SpecAugment


def loss_fn(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of the classifier on a batch."""
    return torch.nn.functional.cross_entropy(model(batch["input_values"]), batch["labels"])


def eval_step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-sample logits and targets (the engine computes accuracy from them)."""
    return {"logits": model(batch["input_values"]).float(), "target": batch["labels"]}


def clip_datasets(
    features: dict[str, FeatureSet], fbank: FbankConfig, augment: SpecAugment | None = None
) -> dict[str, AudioClipDataset]:
    """One dataset per split from precomputed features; ``augment`` applies to ``train`` only."""
    return {
        split: AudioClipDataset(
            fs.items, fbank, features=fs.features, augment=augment if split == "train" else None
        )
        for split, fs in features.items()
    }
