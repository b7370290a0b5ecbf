"""Expose ``nn.MultiheadAttention``'s packed input projection as q/k/v ``nn.Linear`` views.

PEFT's own LoRA for ``nn.MultiheadAttention`` merges the update into ``in_proj_weight`` before
every forward and subtracts it afterwards, so the frozen base weights drift by float rounding and
LoRA lands on q, k and v together. Splitting the projection lets PEFT put its plain
``lora.Linear`` on ``q_proj`` and ``v_proj`` (the LoRA paper's W_q, W_v): base tensors stay
bit-identical, and merging writes straight into ``in_proj_weight`` because the q/k/v weights are
views of it. With no LoRA running, the original module runs unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

__all__ = ["SplitMultiheadAttention"]


def _view_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    linear.weight = nn.Parameter(weight, requires_grad=False)
    if bias is not None:
        linear.bias = nn.Parameter(bias, requires_grad=False)
    return linear


class SplitMultiheadAttention(nn.Module):
    """Wraps ``base_layer`` (an ``nn.MultiheadAttention``) and adds ``q_proj``/``k_proj``/``v_proj``."""

    def __init__(self, base_layer: nn.MultiheadAttention) -> None:
        super().__init__()
        if not base_layer._qkv_same_embed_dim:
            raise ValueError("SplitMultiheadAttention needs a packed in_proj_weight")
        self.base_layer = base_layer
        weights = base_layer.in_proj_weight.detach().chunk(3)
        biases = (
            base_layer.in_proj_bias.detach().chunk(3)
            if base_layer.in_proj_bias is not None
            else (None,) * 3
        )
        self.q_proj = _view_linear(weights[0], biases[0])
        self.k_proj = _view_linear(weights[1], biases[1])
        self.v_proj = _view_linear(weights[2], biases[2])
        # the views alias in_proj_weight/in_proj_bias: keep them out of the state dict
        self._register_state_dict_hook(_drop_views)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("base_layer"), name)

    def _lora_running(self) -> bool:
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            if (
                isinstance(proj, BaseTunerLayer)
                and not proj.disable_adapters
                and not proj.merged
                and any(a in proj.lora_A for a in proj.active_adapters)
            ):
                return True
        return False

    def sync_merged(self) -> None:
        """Copy q/k/v weights back into ``in_proj_weight`` (after a merge that replaced them)."""
        mha = self.base_layer
        with torch.no_grad():
            for i, proj in enumerate((self.q_proj, self.k_proj, self.v_proj)):
                base = proj.get_base_layer() if isinstance(proj, BaseTunerLayer) else proj
                d = mha.embed_dim
                target = mha.in_proj_weight[i * d : (i + 1) * d]
                if base.weight.data_ptr() != target.data_ptr():
                    target.copy_(base.weight)

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
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        mha = self.base_layer
        if not self._lora_running():
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
        q, k, v = self.q_proj(query), self.k_proj(key), self.v_proj(value)
        batch, heads = q.shape[0], mha.num_heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, t.shape[1], heads, -1).transpose(1, 2)

        mask = None
        if attn_mask is not None:
            mask = ~attn_mask if attn_mask.dtype == torch.bool else attn_mask
        if key_padding_mask is not None:
            pad = key_padding_mask[:, None, None, :]
            pad = ~pad if pad.dtype == torch.bool else pad
            mask = pad if mask is None else (mask & pad if mask.dtype == torch.bool else mask + pad)
        out = F.scaled_dot_product_attention(
            split(q),
            split(k),
            split(v),
            attn_mask=mask,
            dropout_p=mha.dropout if self.training else 0.0,
            is_causal=is_causal and mask is None,
        )
        out = mha.out_proj(out.transpose(1, 2).reshape(batch, q.shape[1], -1))
        return (out if mha.batch_first else out.transpose(0, 1)), None


def _drop_views(module: nn.Module, state: dict, prefix: str, local_metadata: Any) -> None:
    for key in list(state):
        rest = key[len(prefix) :]
        if rest.split(".")[0] in ("q_proj", "k_proj", "v_proj") and "lora_" not in rest:
            del state[key]
