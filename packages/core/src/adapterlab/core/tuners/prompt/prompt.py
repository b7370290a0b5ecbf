"""Visual prompt tuning for token-sequence encoders (Jia et al. 2022, "Visual Prompt Tuning").

Shallow: ``N`` learned tokens are inserted into the sequence before the first block. Deep: before
every block the previous block's prompt outputs are replaced by fresh learned tokens. For the
Audio Spectrogram Transformer the study (Cappellazzo et al. 2024) lets the prompts *replace* the
distillation token: ``position=1, replace=1``. The prompts are stripped after the last block
(``strip_output``), so the model's own pooling and heads see a sequence of the usual layout.

On a causal decoder LM (Llama, Qwen2, GPT-2, ...) prompt tuning follows Lester et al. 2021 and
PEFT instead: the prompts go in front of the input embeddings (see :mod:`.decoder`), and with
``deep`` each later layer's prompt positions are overwritten by fresh tokens; ``position``,
``batch_first`` and ``target_modules`` do not apply, and ``replace`` is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...architectures import match_targets
from ...config import AdapterConfig, register_preset
from ...targeting import match_modules, resolve_module
from ..base import replace_submodule
from ..registry import AdapterMethod, register_method
from ..wrapping import AdapterCarrier
from .decoder import (
    DecoderPromptWrapper,
    DeepPromptTokens,
    decoder_layers,
    find_decoder_base_models,
)
from .masks import splice_masks

__all__ = ["PromptConfig", "PromptBlockWrapper", "PromptTokens"]


@dataclass
class PromptConfig(AdapterConfig):
    """Prompt-tuning config; ``target_modules`` are the transformer blocks (in order).

    Attributes:
        num_tokens: prompts per block (the study: 25).
        deep: fresh prompts before every block (VPT-deep) instead of the first only.
        position: index in the token sequence where prompts go (1 = after CLS).
        replace: existing tokens at ``position`` dropped at the first block (AST: 1, the
            distillation token).
        init_range: prompts start uniform in ``[-init_range, init_range]`` (PETL-AST: 0.0625).
        strip_output: remove the prompt tokens after the last block.
        batch_first: block inputs are ``[B, T, D]`` (else ``[T, B, D]``).
    """

    method = "prompt"

    num_tokens: int = 25
    deep: bool = False
    position: int = 1
    replace: int = 0
    init_range: float = 0.0625
    strip_output: bool = True
    batch_first: bool = True

    def validate(self) -> None:
        if self.num_tokens < 1:
            raise ValueError("num_tokens must be >= 1")
        if self.position < 0 or self.replace < 0:
            raise ValueError("position and replace must be >= 0")


class PromptTokens(nn.Module):
    """``num_tokens`` learned vectors of size ``dim``."""

    def __init__(self, num_tokens: int, dim: int, init_range: float) -> None:
        super().__init__()
        self.prompts = nn.Parameter(torch.empty(num_tokens, dim).uniform_(-init_range, init_range))


@dataclass
class _Role:
    first: bool
    last: bool
    config: PromptConfig


class PromptBlockWrapper(AdapterCarrier):
    """Wraps one transformer block: inserts/replaces prompts before it, strips them after it."""

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        self.roles: dict[str, _Role] = {}

    def adapter_names(self) -> list[str]:
        return list(self.roles)

    def forward(self, hidden: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        names = self.running()
        if not names:
            return self.base_layer(hidden, *args, **kwargs)
        if len(names) > 1:
            raise ValueError(f"only one prompt adapter can run at a time, active: {names}")
        role = self.roles[names[0]]
        cfg = role.config
        h = hidden if cfg.batch_first else hidden.transpose(0, 1)
        p, n = cfg.position, cfg.num_tokens
        original_length = h.shape[1] if role.first else h.shape[1] - n + cfg.replace
        if role.first or cfg.deep:
            tokens = self.adapters[names[0]].prompts.to(h.dtype).expand(h.shape[0], -1, -1)
            drop = cfg.replace if role.first else n
            h = torch.cat([h[:, :p], tokens, h[:, p + drop :]], dim=1)
        args, kwargs = splice_masks(args, kwargs, original_length, p, cfg.replace, n)
        out = self.base_layer(h if cfg.batch_first else h.transpose(0, 1), *args, **kwargs)
        if not (role.last and cfg.strip_output):
            return out
        y = out[0] if isinstance(out, tuple) else out
        y = y if cfg.batch_first else y.transpose(0, 1)
        y = torch.cat([y[:, :p], y[:, p + n :]], dim=1)
        y = y if cfg.batch_first else y.transpose(0, 1)
        return (y, *out[1:]) if isinstance(out, tuple) else y


def _block_dim(block: nn.Module) -> int:
    for module in block.modules():
        if isinstance(module, nn.LayerNorm):
            return module.normalized_shape[-1]
    for module in block.modules():
        if isinstance(module, nn.Linear):
            return module.in_features
    raise ValueError(f"cannot infer the hidden size of block {type(block).__name__}")


def _inject_decoder(
    model: nn.Module, config: PromptConfig, name: str, decoders: list[str]
) -> dict[str, nn.Module]:
    """Prompt tuning on decoder LMs: prompts in front of the input embeddings (as PEFT)."""
    if config.replace:
        raise ValueError("prompt tuning: replace must be 0 on decoder LMs")
    if config.target_modules is not None:
        chosen = [clean for clean, _ in match_modules(model, config.target_modules)]
        bad = [c for c in chosen if c not in decoders]
        if bad:
            raise ValueError(
                f"prompt tuning on a decoder LM wraps its base model ({decoders}), not {bad}; "
                "leave target_modules=None"
            )
        decoders = chosen
    handles: dict[str, nn.Module] = {}
    for clean in decoders:
        path, module = resolve_module(model, clean)
        if not isinstance(module, DecoderPromptWrapper):
            module = DecoderPromptWrapper(module)
            replace_submodule(model, path, module)
        dim = module.base_layer.get_input_embeddings().embedding_dim
        if config.deep:
            layers = len(decoder_layers(module.base_layer))
            tokens = DeepPromptTokens(layers, config.num_tokens, dim, config.init_range)
            module.enable_deep()
        else:
            tokens = PromptTokens(config.num_tokens, dim, config.init_range)
        module.adapters[name] = tokens
        handles[f"{clean}.prompt" if clean else "prompt"] = module.adapters[name]
    return handles


def _inject(model: nn.Module, config: PromptConfig, name: str) -> dict[str, nn.Module]:
    decoders = find_decoder_base_models(model)
    if decoders:
        return _inject_decoder(model, config, name, decoders)
    matches = match_targets(model, config.target_modules, ("blocks",), "prompt")
    handles: dict[str, nn.Module] = {}
    for index, (clean, _) in enumerate(matches):
        path, block = resolve_module(model, clean)
        if not isinstance(block, PromptBlockWrapper):
            block = PromptBlockWrapper(block)
            replace_submodule(model, path, block)
        block.roles[name] = _Role(index == 0, index == len(matches) - 1, config)
        if index == 0 or config.deep:
            tokens = PromptTokens(
                config.num_tokens, _block_dim(block.base_layer), config.init_range
            )
            block.adapters[name] = tokens
            handles[f"{clean}.prompt"] = tokens
    return handles


register_method(PromptConfig, AdapterMethod(inject=_inject))
register_preset("prompt", "prompt", deep=False)
register_preset("prompt_deep", "prompt", deep=True)
