"""Prefix tuning (Li & Liang 2021, "Prefix-Tuning: Optimizing Continuous Prompts for
Generation"): learned key and value vectors prepended to every attention layer's projected K/V.

Works on ``nn.MultiheadAttention`` (open_clip) by recomputing attention from the module's own
weights, and on attention modules with separate q/k/v projections (HF: ``q_proj``/``k_proj``/``v_proj``
or ``query``/``key``/``value``) by recomputing attention from those projections. PETL-AST inserts the prefixes after CLS; with
no positional information in projected K/V and the masks extended to match, the position does not
change the result, so they go first here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...architectures import default_targets
from ...config import AdapterConfig, register_config, register_preset
from ...targeting import match_modules, resolve_module
from ..base import AdapterControl, replace_submodule
from ..registry import AdapterMethod, register_method
from .masks import splice_mask

__all__ = ["PrefixConfig", "PrefixMHA", "PrefixAttention"]

_QKV_NAMES = (("q_proj", "k_proj", "v_proj"), ("query", "key", "value"))


@register_config
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


class _PrefixBase(nn.Module, AdapterControl):
    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.adapters = nn.ModuleDict()
        self._init_control()

    def adapter_names(self) -> list[str]:
        return list(self.adapters.keys())

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("base_layer"), name)

    def prefixes(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Concatenated key/value prefixes of the running adapters (None when none run)."""
        names = self.running()
        if not names:
            return None
        keys = torch.cat([self.adapters[n].key for n in names])
        values = torch.cat([self.adapters[n].value for n in names])
        return keys, values


class PrefixMHA(_PrefixBase):
    """``nn.MultiheadAttention`` with key/value prefixes (attention recomputed from its weights)."""

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, None]:
        kv = self.prefixes()
        mha: nn.MultiheadAttention = self.base_layer
        if kv is None:
            return mha(
                query,
                key,
                value,
                key_padding_mask=key_padding_mask,
                need_weights=need_weights,
                attn_mask=attn_mask,
                average_attn_weights=average_attn_weights,
                is_causal=is_causal,
            )
        if not mha.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if mha._qkv_same_embed_dim:
            w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
        else:
            w_q, w_k, w_v = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
        b_q = b_k = b_v = None
        if mha.in_proj_bias is not None:
            b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
        q, k, v = F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)
        batch, n = q.shape[0], kv[0].shape[0]
        k = torch.cat([kv[0].to(k.dtype).expand(batch, -1, -1), k], dim=1)
        v = torch.cat([kv[1].to(v.dtype).expand(batch, -1, -1), v], dim=1)
        heads, length = mha.num_heads, key.shape[1]

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, t.shape[1], heads, -1).transpose(1, 2)

        mask = None
        if attn_mask is not None:
            mask = splice_mask(attn_mask, length, 0, 0, n, torch_style=True)
            mask = ~mask if mask.dtype == torch.bool else mask
        if key_padding_mask is not None:
            pad = splice_mask(key_padding_mask, length, 0, 0, n, torch_style=True)
            pad = (~pad if pad.dtype == torch.bool else pad)[:, None, None, :]
            mask = pad if mask is None else (mask & pad if mask.dtype == torch.bool else mask + pad)
        out = F.scaled_dot_product_attention(
            split(q),
            split(k),
            split(v),
            attn_mask=mask,
            dropout_p=mha.dropout if self.training else 0.0,
            is_causal=False,
        )
        out = out.transpose(1, 2).reshape(batch, q.shape[1], -1)
        out = mha.out_proj(out)
        return (out if mha.batch_first else out.transpose(0, 1)), None


class PrefixAttention(_PrefixBase):
    """An HF attention module (q/k/v projections, optional ``o_proj``) with key/value prefixes.

    With prefixes running, attention is recomputed from the module's own projections (so LoRA on
    them still applies) with the prefixes prepended to the projected keys and values and the
    mask extended to match; otherwise the module runs unchanged.
    """

    def __init__(self, base_layer: nn.Module, names: tuple[str, str, str]) -> None:
        super().__init__(base_layer)
        self.proj_names = names

    def forward(self, hidden: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        kv = self.prefixes()
        attn = self.base_layer
        if kv is None:
            return attn(hidden, *args, **kwargs)
        mask = kwargs.get("attention_mask", args[0] if args else None)
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


def _inject(model: nn.Module, config: PrefixConfig, name: str) -> dict[str, nn.Module]:
    targets = config.target_modules
    if targets is None:
        targets = default_targets(model, ("attention",), "prefix")
    matches = match_modules(model, targets)
    plan = []
    for clean, _ in matches:
        path, module = resolve_module(model, clean)
        base = module.base_layer if isinstance(module, _PrefixBase) else module
        if isinstance(base, nn.MultiheadAttention):
            plan.append((clean, path, module, None, base.embed_dim))
            continue
        names = _qkv_names(base)
        if names is None:
            raise ValueError(
                f"prefix tuning: {clean} ({type(base).__name__}) is neither nn.MultiheadAttention "
                "nor an attention module with q_proj/k_proj/v_proj or query/key/value projections"
            )
        plan.append((clean, path, module, names, getattr(base, names[1]).out_features))
    handles: dict[str, nn.Module] = {}
    for clean, path, module, names, dim in plan:
        if not isinstance(module, _PrefixBase):
            module = PrefixMHA(module) if names is None else PrefixAttention(module, names)
            replace_submodule(model, path, module)
        module.adapters[name] = PrefixKV(config.num_tokens, dim, config.init_std, config.init_range)
        handles[f"{clean}.prefix"] = module.adapters[name]
    return handles


register_method(PrefixConfig, AdapterMethod(inject=_inject))
register_preset("prefix", "prefix")
