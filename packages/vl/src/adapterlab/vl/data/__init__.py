"""Datasets: loaders for the real layouts and the embedded synthetic default.

``load_dataset(name, root, split)`` returns a list of examples:
``vqav2`` / ``vizwiz`` -> :class:`VQAExample`, ``coco_captions`` -> :class:`CaptionExample`,
``snli_ve`` -> :class:`VEExample`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .coco_captions import load_coco_captions
from .common import (
    CaptionExample,
    DataError,
    VEExample,
    VQAExample,
    load_image,
    read_json,
    read_jsonl,
)
from .derived import derive_snli_ve, derive_vizwiz
from .snli_ve import LABELS, load_snli_ve
from .synth import QUESTION_TYPES, SynthSpec, read_scenes, scene_statements, synthesize
from .vizwiz import load_vizwiz
from .vqav2 import carve_val, karpathy_splits, load_vqav2

__all__ = [
    "DATASETS",
    "LABELS",
    "CaptionExample",
    "DataError",
    "QUESTION_TYPES",
    "SynthSpec",
    "VEExample",
    "VQAExample",
    "carve_val",
    "derive_snli_ve",
    "derive_vizwiz",
    "karpathy_splits",
    "load_coco_captions",
    "load_dataset",
    "load_image",
    "load_snli_ve",
    "load_vizwiz",
    "load_vqav2",
    "read_json",
    "read_jsonl",
    "read_scenes",
    "scene_statements",
    "synthesize",
]

DATASETS = {
    "vqav2": load_vqav2,
    "vizwiz": load_vizwiz,
    "snli_ve": load_snli_ve,
    "coco_captions": load_coco_captions,
}


def load_dataset(name: str, root: str | Path, split: str, **kwargs: Any) -> list[Any]:
    """Examples of ``split`` from dataset ``name`` stored at ``root`` (see the loaders)."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}") from None
    return loader(root, split, **kwargs)
