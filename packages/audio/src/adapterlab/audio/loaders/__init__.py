"""Dataset loaders (real on-disk layouts), few-shot sampling, feature caching and the synthetic default."""

from __future__ import annotations

import os

from .cache import FeatureSet, cached_features, compute_features
from .common import AudioClipDataset, AudioItem, AudioSplits, class_counts, few_shot
from .esc50 import esc50_folds, load_esc50
from .fluent_speech import load_fluent_speech
from .speech_commands import load_speech_commands
from .synth import SYNTH_CLASSES, synthesize_esc50
from .urbansound8k import load_urbansound8k

DATASETS = ("esc50", "urbansound8k", "speech_commands", "fluent_speech")


#: folds of the cross-validated datasets (the paper reports the mean over all of them)
FOLDS = {"esc50": 5, "urbansound8k": 10}


def load_dataset(
    name: str, root: str | os.PathLike, fold: int | None = None, *, us8k_protocol: str = "ours"
) -> AudioSplits:
    """Splits of dataset ``name`` (one of :data:`DATASETS`) at ``root``; ``fold`` is the test fold (ESC-50/US8K).

    ``us8k_protocol``: ``"ours"`` (val = the fold before the test fold) or ``"original"`` (PETL-AST).
    """
    if name == "esc50":
        return load_esc50(root, test_fold=fold or 5)
    if name == "urbansound8k":
        return load_urbansound8k(root, test_fold=fold or 10, protocol=us8k_protocol)
    if fold is not None:
        raise ValueError(f"{name} has official splits; --fold does not apply")
    if name == "speech_commands":
        return load_speech_commands(root)
    if name == "fluent_speech":
        return load_fluent_speech(root)
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")


__all__ = [
    "DATASETS",
    "FOLDS",
    "AudioClipDataset",
    "AudioItem",
    "AudioSplits",
    "FeatureSet",
    "SYNTH_CLASSES",
    "cached_features",
    "class_counts",
    "compute_features",
    "esc50_folds",
    "few_shot",
    "load_dataset",
    "load_esc50",
    "load_fluent_speech",
    "load_speech_commands",
    "load_urbansound8k",
    "synthesize_esc50",
]
