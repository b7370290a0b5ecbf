"""BLIP backbones (real checkpoints or the tiny preset) and the pre-training converter."""

from .blip import (
    FINETUNED,
    HUB_IDS,
    TINY,
    Backbone,
    ModelLoadError,
    TaskFinetunedWarning,
    load_blip,
    tiny_backbone,
    tiny_config,
    vqa_from_captioner,
    warn_if_task_finetuned,
)
from .convert import (
    PRETRAINED_MARKER,
    ConversionError,
    convert_blip_checkpoint,
    rename_blip_key,
)

__all__ = [
    "FINETUNED",
    "HUB_IDS",
    "PRETRAINED_MARKER",
    "TINY",
    "Backbone",
    "ConversionError",
    "ModelLoadError",
    "TaskFinetunedWarning",
    "convert_blip_checkpoint",
    "load_blip",
    "rename_blip_key",
    "tiny_backbone",
    "tiny_config",
    "vqa_from_captioner",
    "warn_if_task_finetuned",
]
