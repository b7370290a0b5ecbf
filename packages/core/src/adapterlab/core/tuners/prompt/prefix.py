"""Prefix tuning (Li & Liang 2021, "Prefix-Tuning: Optimizing Continuous Prompts for
Generation"): learned key and value vectors prepended to every attention layer's projected K/V.

- transformers attention modules (Llama, Qwen2, GPT-2, RoBERTa, AST, ...): the prefixes are
  prepended inside the module's attention function, after RoPE and the KV-cache update, with
  grouped key/value heads and the causal mask respected (see :mod:`.hf_attention`);
- ``nn.MultiheadAttention`` (open_clip): attention is recomputed from the module's own weights;
- other modules with separate q/k/v projections (``q_proj``/``k_proj``/``v_proj`` or
  ``query``/``key``/``value``) and no positional encoding inside: attention is recomputed from
  those projections.

PETL-AST inserts the prefixes after CLS; with no positional information in projected K/V and the
masks extended to match, the position does not change the result, so they go first here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...architectures import match_targets
from ...config import AdapterConfig, register_preset
from ...targeting import resolve_module
from ..base import replace_submodule
from ..mha import MHAWrapper, mha_attention, mha_projections
from ..registry import AdapterMethod, register_method
from ..wrapping import AdapterCarrier
from .hf_attention import run_with_prefix, uses_attention_interface
from .masks import splice_mask

__all__ = ["PrefixConfig", "PrefixMHA", "PrefixAttention"]

_QKV_NAMES = (("q_proj", "k_proj", "v_proj"), ("query", "key", "value"))


@dataclass
class PrefixConfig(AdapterConfig):
    """Prefix-tuning config; ``target_modules`` are attention modules.

    Attributes:
        num_tokens: key vectors (and as many value vectors) per layer (PETL-AST: 12 + 12).
        init_std: prefixes start as N(0, init_std^2).
        init_range: when set, prefixes start uniform in ``[-init_range, init_range]`` instead
            (PETL-AST: 0.0625).
    """

    method = "prefix"

    num_tokens: int = 12
    init_std: float = 0.02
    init_range: float | None = None

    def validate(self) -> None:
        if self.num_tokens < 1:
            raise ValueError("num_tokens must be >= 1")


class PrefixKV(nn.Module):
    """Learned key and value prefixes of one attention layer, ``[num_tokens, dim]`` each."""

    def __init__(
        self, num_tokens: int, dim: int, init_std: float, init_range: float | None = None
    ) -> None:
        super().__init__()
        self.key = nn.Parameter(torch.randn(num_tokens, dim) * init_std)
        self.value = nn.Parameter(torch.randn(num_tokens, dim) * init_std)
        if init_range is not None:
            with torch.no_grad():
                self.key.uniform_(-init_range, init_range)
                self.value.uniform_(-init_range, init_range)


class _PrefixBase(AdapterCarrier):
    def prefixes(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Concatenated key/value prefixes of the running adapters (None when none run)."""
        names = self.running()
        if not names:
            return None
        keys = torch.cat([self.adapters[n].key for n in names])
        values = torch.cat([self.adapters[n].value for n in names])
        return keys, values


class PrefixMHA(_PrefixBase, MHAWrapper):
    """``nn.MultiheadAttention`` with key/value prefixes (attention recomputed from its weights)."""

    def intercepts(self) -> bool:
        return bool(self.running())

    def attend(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, **masks: Any
    ) -> torch.Tensor:
        attn_mask, key_padding_mask = masks["attn_mask"], masks["key_padding_mask"]
        mha: nn.MultiheadAttention = self.base_layer
        kv = self.prefixes()
        (w_q, b_q), (w_k, b_k), (w_v, b_v) = mha_projections(mha)
        q, k, v = F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)
        batch, n, length = q.shape[0], kv[0].shape[0], key.shape[1]
        k = torch.cat([kv[0].to(k.dtype).expand(batch, -1, -1), k], dim=1)
        v = torch.cat([kv[1].to(v.dtype).expand(batch, -1, -1), v], dim=1)
        if attn_mask is not None:
            attn_mask = splice_mask(attn_mask, length, 0, 0, n, torch_style=True)
        if key_padding_mask is not None:
            key_padding_mask = splice_mask(key_padding_mask, length, 0, 0, n, torch_style=True)
        if masks["is_causal"] and attn_mask is None:
            raise ValueError("prefix tuning on nn.MultiheadAttention needs an explicit attn_mask")
        return mha_attention(mha, q, k, v, attn_mask=attn_mask, key_padding_mask=key_padding_mask)


class PrefixAttention(_PrefixBase):
    """An attention module with q/k/v projections, with key/value prefixes.

    transformers modules keep their own forward (RoPE, KV cache, masks, grouped heads) and get the
    prefixes inside their attention function (:func:`.hf_attention.run_with_prefix`). Other
    modules are recomputed from their projections (so LoRA on them still applies) with the mask
    extended to match, and an ``o_proj`` when they have one. With no prefix running, the module
    runs unchanged.
    """

    def __init__(self, base_layer: nn.Module, names: tuple[str, str, str] | None) -> None:
        super().__init__(base_layer)
        self.proj_names = names

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        kv = self.prefixes()
        attn = self.base_layer
        if kv is None:
            return attn(*args, **kwargs)
        if uses_attention_interface(attn):
            return run_with_prefix(attn, kv[0], kv[1], args, kwargs)
        return self._recompute(kv, *args, **kwargs)

    def _recompute(
        self, kv: tuple[torch.Tensor, torch.Tensor], *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, None]:
        attn = self.base_layer
        hidden = args[0] if args else kwargs["hidden_states"]
        mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        q_proj, k_proj, v_proj = (getattr(attn, n) for n in self.proj_names)
        batch, length, n = hidden.shape[0], hidden.shape[1], kv[0].shape[0]
        head_dim = getattr(attn, "head_dim", None) or attn.attention_head_size

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, t.shape[1], -1, head_dim).transpose(1, 2)

        q = q_proj(hidden)
        k = torch.cat([kv[0].to(q.dtype).expand(batch, -1, -1), k_proj(hidden)], dim=1)
        v = torch.cat([kv[1].to(q.dtype).expand(batch, -1, -1), v_proj(hidden)], dim=1)
        if mask is not None:
            if mask.dim() == 2:  # [B, T] keep-mask
                mask = mask[:, None, None, :].bool()
            mask = splice_mask(mask, length, 0, 0, n, torch_style=False)
            mask = _keep_queries(mask, length)
        dropout = getattr(attn, "attention_dropout", None)
        if dropout is None:
            dropout = getattr(getattr(attn, "dropout", None), "p", 0.0)
        out = F.scaled_dot_product_attention(
            split(q),
            split(k),
            split(v),
            attn_mask=mask,
            dropout_p=dropout if self.training else 0.0,
            scale=getattr(attn, "scaling", None),
        )
        out = out.transpose(1, 2).reshape(batch, length, -1)
        o_proj = getattr(attn, "o_proj", None)
        if o_proj is not None:
            out = o_proj(out)
        return out, None


def _keep_queries(value: Any, length: int) -> Any:
    if isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[-2] > length:
        return value[..., -length:, :]
    return value


def _qkv_names(module: nn.Module) -> tuple[str, str, str] | None:
    for names in _QKV_NAMES:
        if all(isinstance(getattr(module, n, None), nn.Module) for n in names):
            return names
    return None


def _kv_width(attn: nn.Module, names: tuple[str, str, str] | None) -> int:
    """Width of one key (all key/value heads) of a transformers attention module."""
    if names is not None and hasattr(getattr(attn, names[1]), "out_features"):
        return getattr(attn, names[1]).out_features
    config = attn.config
    head_dim = getattr(attn, "head_dim", None) or getattr(attn, "attention_head_size", None)
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    if head_dim is None:
        head_dim = config.hidden_size // config.num_attention_heads
    return int(heads * head_dim)


def _inject(model: nn.Module, config: PrefixConfig, name: str) -> dict[str, nn.Module]:
    matches = match_targets(model, config.target_modules, ("attention",), "prefix")
    plan = []
    for clean, _ in matches:
        path, module = resolve_module(model, clean)
        base = module.base_layer if isinstance(module, _PrefixBase) else module
        if isinstance(base, nn.MultiheadAttention):
            plan.append((clean, path, module, None, base.embed_dim))
            continue
        names = _qkv_names(base)
        if uses_attention_interface(base):
            plan.append((clean, path, module, names, _kv_width(base, names)))
            continue
        if names is None:
            raise ValueError(
                f"prefix tuning: {clean} ({type(base).__name__}) is neither nn.MultiheadAttention, "
                "a transformers attention module, nor a module with q_proj/k_proj/v_proj or "
                "query/key/value projections"
            )
        plan.append((clean, path, module, names, getattr(base, names[1]).out_features))
    handles: dict[str, nn.Module] = {}
    for clean, path, module, names, dim in plan:
        if not isinstance(module, _PrefixBase):
            mha = isinstance(module, nn.MultiheadAttention)
            module = PrefixMHA(module) if mha else PrefixAttention(module, names)
            replace_submodule(model, path, module)
        module.adapters[name] = PrefixKV(config.num_tokens, dim, config.init_std, config.init_range)
        handles[f"{clean}.prefix"] = module.adapters[name]
    return handles


register_method(PrefixConfig, AdapterMethod(inject=_inject))
register_preset("prefix", "prefix")
