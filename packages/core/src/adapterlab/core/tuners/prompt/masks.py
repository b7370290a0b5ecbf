"""Resize attention masks when tokens are inserted into (or removed from) a sequence."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["splice_masks"]

# torch's own masks mark *blocked* positions with True; HF's boolean masks mark *kept* ones.
_TORCH_STYLE = ("attn_mask", "key_padding_mask")


def _keep_value(mask: torch.Tensor, torch_style: bool) -> float | bool:
    if mask.dtype == torch.bool:
        return not torch_style
    if mask.is_floating_point():
        return 0.0  # additive mask: 0 = attend
    return 1  # integer 0/1 keep-mask


def _splice_dim(
    mask: torch.Tensor, dim: int, position: int, remove: int, insert: int, keep: float | bool
) -> torch.Tensor:
    size = list(mask.shape)
    size[dim] = insert
    block = torch.full(size, keep, dtype=mask.dtype, device=mask.device)
    head = mask.narrow(dim, 0, position)
    tail = mask.narrow(dim, position + remove, mask.shape[dim] - position - remove)
    return torch.cat([head, block, tail], dim=dim)


def splice_mask(
    mask: torch.Tensor, length: int, position: int, remove: int, insert: int, torch_style: bool
) -> torch.Tensor:
    """Apply the token splice to the key dim (last) and, for square masks, the query dim."""
    keep = _keep_value(mask, torch_style)
    out = _splice_dim(mask, mask.dim() - 1, position, remove, insert, keep)
    if mask.dim() >= 2 and mask.shape[-2] == length:
        out = _splice_dim(out, out.dim() - 2, position, remove, insert, keep)
    return out


def splice_masks(
    args: tuple, kwargs: dict[str, Any], length: int, position: int, remove: int, insert: int
) -> tuple[tuple, dict[str, Any]]:
    """Splice every mask-like tensor among a block's extra arguments whose last dim is ``length``."""
    new_args = []
    for value in args:
        if isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[-1] == length:
            value = splice_mask(value, length, position, remove, insert, torch_style=False)
        new_args.append(value)
    new_kwargs = {}
    for key, value in kwargs.items():
        if (
            "mask" in key
            and isinstance(value, torch.Tensor)
            and value.dim() >= 1
            and value.shape[-1] == length
        ):
            value = splice_mask(value, length, position, remove, insert, key in _TORCH_STYLE)
        new_kwargs[key] = value
    return tuple(new_args), new_kwargs
