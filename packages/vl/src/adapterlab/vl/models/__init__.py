"""BLIP backbones (real checkpoints or the tiny preset)."""

from .blip import (
    HUB_IDS,
    TINY,
    Backbone,
    ModelLoadError,
    load_blip,
    tiny_backbone,
    tiny_config,
    vqa_from_captioner,
)

__all__ = [
    "HUB_IDS",
    "TINY",
    "Backbone",
    "ModelLoadError",
    "load_blip",
    "tiny_backbone",
    "tiny_config",
    "vqa_from_captioner",
]
