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
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from ..mha import MHAWrapper, mha_attention, mha_projections
from ..wrapping import BaseLayerProxy

__all__ = ["SplitMultiheadAttention"]


def _view_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    linear.weight = nn.Parameter(weight, requires_grad=False)
    if bias is not None:
        linear.bias = nn.Parameter(bias, requires_grad=False)
    return linear


class SplitMultiheadAttention(BaseLayerProxy, MHAWrapper):
    """Wraps ``base_layer`` (an ``nn.MultiheadAttention``) and adds ``q_proj``/``k_proj``/``v_proj``."""

    def __init__(self, base_layer: nn.MultiheadAttention) -> None:
        super().__init__()
        if not base_layer._qkv_same_embed_dim:
            raise ValueError("SplitMultiheadAttention needs a packed in_proj_weight")
        self.base_layer = base_layer
        (w_q, b_q), (w_k, b_k), (w_v, b_v) = mha_projections(base_layer)
        self.q_proj = _view_linear(w_q.detach(), None if b_q is None else b_q.detach())
        self.k_proj = _view_linear(w_k.detach(), None if b_k is None else b_k.detach())
        self.v_proj = _view_linear(w_v.detach(), None if b_v is None else b_v.detach())
        # the views alias in_proj_weight/in_proj_bias: keep them out of the state dict
        self._register_state_dict_hook(_drop_views)

    def intercepts(self) -> bool:
        """True while a LoRA on q/k/v runs unmerged."""
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

    def attend(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, **masks: Any
    ) -> torch.Tensor:
        q, k, v = self.q_proj(query), self.k_proj(key), self.v_proj(value)
        return mha_attention(self.base_layer, q, k, v, **masks)


def _drop_views(module: nn.Module, state: dict, prefix: str, local_metadata: Any) -> None:
    for key in list(state):
        rest = key[len(prefix) :]
        if rest.split(".")[0] in ("q_proj", "k_proj", "v_proj") and "lora_" not in rest:
            del state[key]
