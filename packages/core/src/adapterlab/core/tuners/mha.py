"""Recompute ``nn.MultiheadAttention`` from its own weights (shared by LoRA's q/k/v split and
prefix tuning): the packed input projection split into q/k/v, and scaled dot-product attention
with torch's ``attn_mask``/``key_padding_mask`` conventions (True = blocked) and ``out_proj``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MHAWrapper", "mha_attention", "mha_projections"]

Projection = tuple[torch.Tensor, torch.Tensor | None]


def mha_projections(mha: nn.MultiheadAttention) -> tuple[Projection, Projection, Projection]:
    """``(weight, bias)`` of the query, key and value projections (views of the packed ones)."""
    if mha._qkv_same_embed_dim:
        weights = mha.in_proj_weight.chunk(3)
    else:
        weights = (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight)
    biases = mha.in_proj_bias.chunk(3) if mha.in_proj_bias is not None else (None,) * 3
    return tuple(zip(weights, biases))  # type: ignore[return-value]


def _to_batch_first(mha: nn.MultiheadAttention, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``[T, B, D]`` inputs of a sequence-first module as ``[B, T, D]`` (others unchanged)."""
    return tensors if mha.batch_first else tuple(t.transpose(0, 1) for t in tensors)


def _from_batch_first(mha: nn.MultiheadAttention, out: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_to_batch_first` for the output."""
    return out if mha.batch_first else out.transpose(0, 1)


def _sdpa_mask(
    attn_mask: torch.Tensor | None, key_padding_mask: torch.Tensor | None
) -> torch.Tensor | None:
    """torch MHA masks (True/-inf = blocked) as one sdpa mask (True/0 = attend)."""
    mask = None
    if attn_mask is not None:
        mask = ~attn_mask if attn_mask.dtype == torch.bool else attn_mask
    if key_padding_mask is not None:
        pad = key_padding_mask[:, None, None, :]
        pad = ~pad if pad.dtype == torch.bool else pad
        mask = pad if mask is None else (mask & pad if mask.dtype == torch.bool else mask + pad)
    return mask


def mha_attention(
    mha: nn.MultiheadAttention,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    attn_mask: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
    is_causal: bool = False,
) -> torch.Tensor:
    """Attention over projected ``[B, T, D]`` q/k/v with ``mha``'s heads, dropout and out_proj."""
    batch, heads = q.shape[0], mha.num_heads

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(batch, t.shape[1], heads, -1).transpose(1, 2)

    mask = _sdpa_mask(attn_mask, key_padding_mask)
    out = F.scaled_dot_product_attention(
        split(q),
        split(k),
        split(v),
        attn_mask=mask,
        dropout_p=mha.dropout if mha.training else 0.0,
        is_causal=is_causal and mask is None,
    )
    return mha.out_proj(out.transpose(1, 2).reshape(batch, q.shape[1], -1))


class MHAWrapper(nn.Module):
    """Stands in for ``base_layer`` (an ``nn.MultiheadAttention``) with the same forward.

    When :meth:`intercepts` is False the module runs unchanged; otherwise :meth:`attend`
    computes the output from batch-first query/key/value (no attention weights are returned).
    """

    def intercepts(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def attend(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, **masks: Any
    ) -> torch.Tensor:  # pragma: no cover - abstract
        """Batch-first output; ``masks``: ``attn_mask``, ``key_padding_mask``, ``is_causal``."""
        raise NotImplementedError

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
        mha: nn.MultiheadAttention = self.base_layer
        if not self.intercepts():
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
        query, key, value = _to_batch_first(mha, query, key, value)
        masks = {"attn_mask": attn_mask, "key_padding_mask": key_padding_mask}
        out = self.attend(query, key, value, **masks, is_causal=is_causal)
        return _from_batch_first(mha, out), None
