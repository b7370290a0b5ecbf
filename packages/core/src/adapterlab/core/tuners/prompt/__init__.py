"""Prompt tuning (VPT shallow/deep) and prefix tuning for encoders PEFT's prompt methods do not
cover (open_clip ViT, HF AST, any block-structured token encoder)."""

from .prefix import PrefixAttention, PrefixConfig, PrefixMHA
from .prompt import PromptBlockWrapper, PromptConfig, PromptTokens

__all__ = [
    "PrefixAttention",
    "PrefixConfig",
    "PrefixMHA",
    "PromptBlockWrapper",
    "PromptConfig",
    "PromptTokens",
]
