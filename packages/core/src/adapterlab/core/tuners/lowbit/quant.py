"""Normal-quantile codebooks, straight-through quantisation and bit packing for low-bit adapters.

Jie, Wang & Deng, "Revisiting the Parameter Efficiency of Adapters from the Perspective of
Precision Redundancy" (ICCV 2023), code: JieShibo/PETL-ViT ``binary_adapter/utils.py``.

A weight matrix ``W`` is standardised with its own mean and (unbiased) standard deviation,
``w = (W - mean) / (std + eps)``, each entry is replaced by the nearest of ``2**bits`` codebook
levels, and the result is mapped back, ``W_q = level * std + mean``. The codebook is computed for
a standard normal by iterating on *quantile midpoints*: thresholds are the midpoints of adjacent
levels, and every level is moved to the normal quantile at the middle of its cell's probability
mass, ``level_k = Phi^-1((Phi(t_{k-1}) + Phi(t_k)) / 2)``. Each level is therefore the median of
its cell (for 1 bit: ``+-Phi^-1(3/4) = +-0.6745``, the quartile midpoints); this differs from the
Lloyd-Max centroid codebook (``+-sqrt(2/pi) = +-0.7979`` for 1 bit), as in the authors' code.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = [
    "SUPPORTED_BITS",
    "STD_EPS",
    "normal_codebook",
    "standardise",
    "quantise_indices",
    "ste_quantise",
    "fake_quantise",
    "dequantise",
    "pack_bits",
    "unpack_bits",
]

SUPPORTED_BITS = (1, 2, 4, 8)
#: added to the standard deviation before dividing (as ``QLinear`` in the authors' code).
STD_EPS = 1e-5


def _check_bits(bits: int) -> None:
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"low-bit adapters support bits in {SUPPORTED_BITS}, got {bits}")


@functools.cache
def _codebook_np(bits: int, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.stats import norm  # lazy: scipy.stats takes seconds to import

    levels = np.zeros(2**bits)
    thresholds = np.zeros(2**bits - 1)
    for _ in range(iterations):
        thresholds = (levels[1:] + levels[:-1]) / 2
        edges = np.concatenate([[0.0], norm.cdf(thresholds), [1.0]])
        levels = norm.ppf((edges[1:] + edges[:-1]) / 2)
    return levels, thresholds


def normal_codebook(bits: int, iterations: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """``(levels, thresholds)`` for ``bits`` (float32, increasing; ``2**bits`` and ``2**bits - 1``).

    Starts from all-zero levels and runs ``iterations`` quantile-midpoint updates (500, as the
    authors). ``thresholds`` are the midpoints of adjacent final levels.
    """
    _check_bits(bits)
    levels, _ = _codebook_np(bits, iterations)
    thresholds = (levels[1:] + levels[:-1]) / 2
    return (
        torch.tensor(levels, dtype=torch.float32),
        torch.tensor(thresholds, dtype=torch.float32),
    )


def standardise(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(w, mean, std)`` with ``w = (weight - mean) / (std + STD_EPS)`` (unbiased std)."""
    mean = weight.mean()
    std = weight.std()
    return (weight - mean) / (std + STD_EPS), mean, std


def quantise_indices(w: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Index of the codebook cell each standardised entry falls in (``int64``)."""
    return torch.bucketize(w.detach(), thresholds.to(w.device))


def ste_quantise(w: torch.Tensor, levels: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Round standardised ``w`` to the codebook; straight-through: value ``levels[idx]``,
    gradient the identity (``q + (w - w.detach())``, exactly ``q`` in value)."""
    q = levels.to(w.device)[quantise_indices(w, thresholds)]
    return q + (w - w.detach())


def fake_quantise(
    weight: torch.Tensor, levels: torch.Tensor, thresholds: torch.Tensor
) -> torch.Tensor:
    """Quantise-dequantise ``weight`` with a straight-through estimator.

    The value is exactly ``levels[idx] * std + mean``; the gradient flows as if the rounding were
    the identity (``w_q = q + (w - w.detach())``), through the standardisation as in the authors'
    ``QLinear``.
    """
    w, mean, std = standardise(weight)
    return ste_quantise(w, levels, thresholds) * std + mean


def dequantise(
    indices: torch.Tensor, levels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """``levels[indices] * std + mean``: the weight a stored low-bit matrix stands for."""
    return levels.to(indices.device)[indices.long()] * std + mean


def pack_bits(indices: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack integer codes ``< 2**bits`` into a flat ``uint8`` tensor, ``8 // bits`` per byte.

    Code ``i`` goes to bits ``(i % per_byte) * bits`` of byte ``i // per_byte`` (the authors'
    order); the last byte is zero-padded.
    """
    _check_bits(bits)
    per_byte = 8 // bits
    flat = indices.reshape(-1).to(torch.int32)
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= 2**bits):
        raise ValueError(f"codes must lie in [0, {2**bits}) to pack into {bits} bits")
    pad = (-flat.numel()) % per_byte
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    shifts = torch.arange(per_byte, dtype=torch.int32, device=flat.device) * bits
    return (flat.view(-1, per_byte) << shifts).sum(dim=1).to(torch.uint8)


def unpack_bits(packed: torch.Tensor, bits: int, numel: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: the first ``numel`` codes as ``int64``."""
    _check_bits(bits)
    per_byte = 8 // bits
    if packed.dtype != torch.uint8 or packed.dim() != 1:
        raise ValueError(
            f"packed codes must be a 1-D uint8 tensor, got {packed.dtype} {packed.shape}"
        )
    if packed.numel() * per_byte < numel:
        raise ValueError(
            f"packed codes hold {packed.numel() * per_byte} entries, the matrix needs {numel}"
        )
    shifts = torch.arange(per_byte, dtype=torch.int32, device=packed.device) * bits
    codes = (packed.to(torch.int32).unsqueeze(1) >> shifts) & (2**bits - 1)
    return codes.reshape(-1)[:numel].long()
