"""CLIP2Point / PointCLIP models: CLIP loading, the pre-training model, zero-shot, few-shot heads.

``clip2point`` (the pre-training model, which needs the renderer) is imported lazily by
attribute access; training itself lives in ``adapterlab.pointclip.train``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .adapters import (
    DualPathAdapter,
    InterViewAdapter,
    PointCLIPAdapterHead,
    SimplifiedViewAdapter,
    smooth_cross_entropy,
)
from .clip import CLIP_MEAN, CLIP_STD, TINY_PRESET, ClipBundle, PretrainedWeightsError, load_clip
from .encoders import load_encoder_weights, save_encoder_weights
from .features import ViewFeatures, extract_view_features
from .losses import Clip2PointLoss, nt_xent
from .zeroshot import (
    TEMPLATES,
    aggregate_view_logits,
    build_text_features,
    encode_views,
    zero_shot_logits,
)

_LAZY = {
    "Clip2PointPretrainModel": "clip2point",
    "load_depth_encoder": "clip2point",
    "ImageFeatureTable": "features",
    "compute_image_features": "features",
}

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "TEMPLATES",
    "TINY_PRESET",
    "Clip2PointLoss",
    "ClipBundle",
    "DualPathAdapter",
    "InterViewAdapter",
    "PointCLIPAdapterHead",
    "PretrainedWeightsError",
    "SimplifiedViewAdapter",
    "ViewFeatures",
    "aggregate_view_logits",
    "build_text_features",
    "encode_views",
    "extract_view_features",
    "load_clip",
    "load_encoder_weights",
    "nt_xent",
    "save_encoder_weights",
    "smooth_cross_entropy",
    "zero_shot_logits",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
