"""Low-bit adapters (Jie, Wang & Deng, "Revisiting the Parameter Efficiency of Adapters from the
Perspective of Precision Redundancy", ICCV 2023; code: JieShibo/PETL-ViT ``binary_adapter``).

A bottleneck adapter whose two matrices are quantised to 1/2/4/8 bits during training (per-matrix
standardisation, normal-quantile codebook, straight-through estimator) and saved as packed codes
plus a float32 ``[mean, std]`` per matrix. The adapter file of a 1-bit adapter is about 1/30 of
its fp32 size.

On disk (``adapter.safetensors``) each quantised matrix ``<key>.weight`` becomes
``<key>.qcodes`` (``uint8``, ``8 // bits`` codes per byte), ``<key>.qstats`` (float32
``[mean, std]``) and ``<key>.qshape`` (int32 shape).
"""

from __future__ import annotations

import torch
from torch import nn

from ..plain_merge import match_base_device, replace_with_bottleneck
from ..registry import AdapterMethod, register_method
from ..state import adapter_state
from ..sublayer import inject_bottleneck_like
from .config import LowBitConfig
from .layer import LowBitAdapter, QuantLinear
from .quant import STD_EPS, normal_codebook, pack_bits, quantise_indices, unpack_bits

__all__ = ["LowBitConfig", "LowBitAdapter", "QuantLinear", "normal_codebook"]

_STATS, _CODES, _SHAPE, _WEIGHT = "qstats", "qcodes", "qshape", "weight"


def _inject(model: nn.Module, config: LowBitConfig, name: str) -> dict[str, nn.Module]:
    handles = inject_bottleneck_like(
        model,
        config,
        name,
        LowBitAdapter,
        "lowbit",
        bits=config.bits,
        activation=config.activation,
    )
    match_base_device(model, handles, "lowbit")
    return handles


def pack_state(state: dict[str, torch.Tensor], config: LowBitConfig) -> dict[str, torch.Tensor]:
    """Replace every quantised ``<key>.weight`` (it has a ``<key>.qstats``) by packed codes."""
    if config.bits == 32:
        return dict(state)
    _, thresholds = normal_codebook(config.bits)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith("." + _STATS):
            prefix = key[: -len(_STATS)]
            # same device and ops as the forward pass, so the codes are the ones it used
            weight = state[prefix + _WEIGHT].detach().float()
            stats = value.detach().float().to(weight.device)
            idx = quantise_indices((weight - stats[0]) / (stats[1] + STD_EPS), thresholds)
            out[prefix + _CODES] = pack_bits(idx, config.bits).cpu()
            out[prefix + _SHAPE] = torch.tensor(weight.shape, dtype=torch.int32)
            out[key] = stats.cpu()
        elif key.endswith("." + _WEIGHT) and key[: -len(_WEIGHT)] + _STATS in state:
            continue
        else:
            out[key] = value
    return out


def unpack_state(state: dict[str, torch.Tensor], config: LowBitConfig) -> dict[str, torch.Tensor]:
    """Inverse of :func:`pack_state`: rebuild ``<key>.weight`` and ``<key>.qstats``.

    The rebuilt latent weight is ``levels[idx] * (std + eps) + mean``, whose standardisation is
    the codebook level itself; on load the :class:`QuantLinear` freezes to the stored codes and
    statistics, so it computes exactly what the saved model computed.
    """
    if config.bits == 32:
        return dict(state)
    levels, _ = normal_codebook(config.bits)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith("." + _CODES):
            prefix = key[: -len(_CODES)]
            for part in (_STATS, _SHAPE):
                if prefix + part not in state:
                    raise ValueError(f"low-bit adapter: {key} has no matching {prefix + part}")
            shape = tuple(int(s) for s in state[prefix + _SHAPE].tolist())
            stats = state[prefix + _STATS].float()
            if stats.shape != (2,):
                raise ValueError(f"low-bit adapter: {prefix + _STATS} must hold [mean, std]")
            numel = 1
            for s in shape:
                numel *= s
            idx = unpack_bits(value, config.bits, numel)
            if idx.max() >= levels.numel():
                raise ValueError(f"low-bit adapter: {key} has codes outside the codebook")
            out[prefix + _WEIGHT] = (levels[idx] * (stats[1] + STD_EPS) + stats[0]).view(shape)
            out[prefix + _STATS] = stats
        elif key.endswith("." + _SHAPE) or key.endswith("." + _STATS):
            if key.rsplit(".", 1)[0] + "." + _CODES not in state:
                out[key] = value
        else:
            out[key] = value
    return out


def _lowbit_modules(model: nn.Module, name: str) -> list[LowBitAdapter]:
    return [m for m in adapter_state(model).handles[name].values() if isinstance(m, LowBitAdapter)]


def _after_load(model: nn.Module, config: LowBitConfig, name: str) -> None:
    """Run on the loaded codes and statistics (exactly what the saved model computed)."""
    for adapter in _lowbit_modules(model, name):
        adapter.down._freeze()
        adapter.up._freeze()


def _merge(model: nn.Module, config: LowBitConfig, name: str) -> None:
    """Replace the quantised layers by a plain bottleneck adapter holding the dequantised
    weights (zero biases), the config by the equivalent :class:`BottleneckConfig`."""
    replace_with_bottleneck(
        model, config, name, LowBitAdapter, LowBitAdapter.to_bottleneck, "lowbit"
    )


register_method(
    LowBitConfig,
    AdapterMethod(
        inject=_inject,
        merge=_merge,
        pack_state=pack_state,
        unpack_state=unpack_state,
        after_load=_after_load,
    ),
)
