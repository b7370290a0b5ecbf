"""Key/value prefixes inside a transformers attention module, through its attention interface.

Every transformers attention module (Llama, Qwen2, GPT-2, RoBERTa, AST, ...) projects its own
queries, keys and values, applies its positional encoding (RoPE), updates the KV cache and then
calls ``ALL_ATTENTION_FUNCTIONS[config._attn_implementation](module, q, k, v, mask, ...)``. The
prefix runs at exactly that point: :func:`prefixed_attention` is registered as an attention
implementation, the wrapper points the module at it for one forward pass, and it prepends the
learned keys/values (``[num_kv_heads, n, head_dim]``, grouped-query heads included) and extends
the mask with ``n`` always-visible columns before handing over to the model's own
implementation (``eager`` or ``sdpa``). So:

- RoPE is applied by the model to the real keys only; the prefixes are position-free, as in PEFT
  (whose prefixes enter as a pre-filled KV cache, after rotation);
- the causal mask is kept: when the model relies on sdpa's implicit ``is_causal`` (no mask), an
  explicit bottom-right-aligned causal mask is built for the real keys;
- the KV cache holds the real tokens only, so ``generate`` with a cache prepends the same prefix at
  every step. Unlike PEFT, the real tokens keep positions ``0..T-1`` (PEFT shifts them by ``n``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["IMPLEMENTATION", "uses_attention_interface", "run_with_prefix"]

IMPLEMENTATION = "adapterlab_prefix"
_STATE = "_adapterlab_prefix"
_SUPPORTED = ("eager", "sdpa", None)


def uses_attention_interface(module: nn.Module) -> bool:
    """True for a transformers attention module that dispatches through the attention interface.

    Having a transformers ``config`` is not enough: some modules (BLIP's text attention, for one)
    keep the config but compute attention by hand, and a prefix handed to the interface would be
    silently ignored there. Their ``forward`` must look up ``ALL_ATTENTION_FUNCTIONS``.
    """
    config = getattr(module, "config", None)
    if config is None or not hasattr(config, "_attn_implementation"):
        return False
    forward = getattr(type(module).forward, "__code__", None)
    return forward is not None and "ALL_ATTENTION_FUNCTIONS" in forward.co_names


class _ConfigView:
    """The module's config with ``_attn_implementation`` pointed at the prefix function."""

    def __init__(self, config: Any) -> None:
        object.__setattr__(self, "_config", config)

    @property
    def _attn_implementation(self) -> str:
        return IMPLEMENTATION

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_config"), name)


def run_with_prefix(
    attn: nn.Module, key: torch.Tensor, value: torch.Tensor, args: tuple, kwargs: dict
) -> Any:
    """Run ``attn(*args, **kwargs)`` with ``key``/``value`` (``[n, kv_heads * head_dim]``)
    prepended inside its attention function."""
    _register()
    config = attn.config
    implementation = config._attn_implementation
    if implementation not in _SUPPORTED:
        raise ValueError(
            f"prefix tuning supports attn_implementation 'eager' or 'sdpa', not "
            f"{implementation!r}; load the model with attn_implementation='sdpa'"
        )
    attn.__dict__[_STATE] = [key, value, implementation or "eager", False]
    attn.__dict__["config"] = _ConfigView(config)
    try:
        out = attn(*args, **kwargs)
        if not attn.__dict__[_STATE][3]:
            raise RuntimeError(
                f"prefix tuning: {type(attn).__name__} did not call its attention function, so "
                "the prefix would be ignored"
            )
        return out
    finally:
        attn.__dict__["config"] = config
        del attn.__dict__[_STATE]


def _register() -> None:
    from transformers import AttentionInterface

    if IMPLEMENTATION not in AttentionInterface._global_mapping:
        AttentionInterface.register(IMPLEMENTATION, prefixed_attention)


def _delegate(module: nn.Module, implementation: str) -> Callable:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    eager = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
    if eager is None:  # pragma: no cover - every transformers attention module defines one
        from transformers.models.llama.modeling_llama import eager_attention_forward as eager
    return ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager)


def _causal_mask(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """``[1, 1, q, k]`` keep-mask: query ``i`` sees keys ``j <= i + k - q`` (bottom-right)."""
    q_len, k_len = query.shape[-2], key.shape[-2]
    rows = torch.arange(q_len, device=query.device)[:, None] + (k_len - q_len)
    return (rows >= torch.arange(k_len, device=query.device)[None, :])[None, None]


def extend_mask(
    mask: torch.Tensor | None, query: torch.Tensor, key: torch.Tensor, n: int, causal: bool
) -> torch.Tensor | None:
    """The attention mask for ``n`` prefix keys in front of ``key``'s (always visible)."""
    if mask is None:
        if not causal or query.shape[-2] == 1:
            return None  # every real key is visible, and so are the prefixes
        mask = _causal_mask(query, key)
    mask = mask[..., : key.shape[-2]]
    keep: bool | float = True if mask.dtype == torch.bool else 0.0
    block = torch.full((*mask.shape[:-1], n), keep, dtype=mask.dtype, device=mask.device)
    return torch.cat([block, mask], dim=-1)


def prefixed_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attention implementation: prefixes in front of ``key``/``value``, then the model's own."""
    state = module.__dict__[_STATE]
    prefix_key, prefix_value, implementation = state[:3]
    state[3] = True  # the prefix reached the attention function
    batch, kv_heads, _, head_dim = key.shape
    n = prefix_key.shape[0]

    def heads(t: torch.Tensor) -> torch.Tensor:
        if t.shape[-1] != kv_heads * head_dim:
            raise ValueError(
                f"prefix of width {t.shape[-1]} does not match {kv_heads} key/value heads "
                f"of size {head_dim}"
            )
        t = t.to(key.dtype).view(n, kv_heads, head_dim).transpose(0, 1)
        return t.unsqueeze(0).expand(batch, -1, -1, -1)

    causal = kwargs.pop("is_causal", None)
    causal = getattr(module, "is_causal", False) if causal is None else causal
    mask = extend_mask(attention_mask, query, key, n, bool(causal))
    key = torch.cat([heads(prefix_key), key], dim=2)
    value = torch.cat([heads(prefix_value), value], dim=2)
    return _delegate(module, implementation)(
        module, query, key, value, mask, is_causal=False, **kwargs
    )
