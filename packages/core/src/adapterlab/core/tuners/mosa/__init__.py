"""MoSA: mixture of sparse adapters (Zhang et al., "Split & Merge: Unlocking the Potential of
Visual Adapters via Sparse Training", arXiv:2312.02923; code: Theia-4869/MoSA).

Split: each bottleneck projection is divided into ``N`` disjoint random sparse experts. Train:
every forward pass runs one random expert per projection and only its entries learn. Merge:
``merge_adapter(model, name)`` folds the experts into a plain bottleneck adapter (same name,
config becomes a :class:`BottleneckConfig`, no inference overhead). In eval mode an unmerged MoSA
adapter already computes the merged adapter. Optional consistency loss:
:func:`symmetric_kl_loss` between two stochastic passes.
"""

from __future__ import annotations

import torch
from torch import nn

from ..plain_merge import match_base_device, replace_with_bottleneck
from ..registry import AdapterMethod, register_method
from ..state import adapter_state
from ..sublayer import inject_bottleneck_like
from .config import MoSAConfig
from .experts import SparseExpertLinear, random_partition
from .layer import MoSAAdapter
from .loss import symmetric_kl_loss

__all__ = [
    "MoSAConfig",
    "MoSAAdapter",
    "SparseExpertLinear",
    "random_partition",
    "symmetric_kl_loss",
    "set_mosa_expert",
    "mosa_modules",
]

_SUFFIX = "mosa"


def _inject(model: nn.Module, config: MoSAConfig, name: str) -> dict[str, nn.Module]:
    generator = None
    if config.seed is not None:
        generator = torch.Generator().manual_seed(config.seed)
    handles = inject_bottleneck_like(
        model,
        config,
        name,
        MoSAAdapter,
        _SUFFIX,
        num_experts=config.num_experts,
        share=config.share,
        merge_mode=config.merge_mode,
        generator=generator,
        activation=config.activation,
    )
    match_base_device(model, handles, _SUFFIX)
    return handles


def mosa_modules(model: nn.Module, name: str = "default") -> dict[str, MoSAAdapter]:
    """The :class:`MoSAAdapter` s of adapter ``name`` by saved key prefix."""
    handles = adapter_state(model).handles.get(name)
    if handles is None:
        raise ValueError(f"no adapter named {name!r}")
    return {k: m for k, m in handles.items() if isinstance(m, MoSAAdapter)}


def set_mosa_expert(model: nn.Module, expert: int | None, name: str = "default") -> None:
    """Make every MoSA layer of adapter ``name`` run expert ``expert`` in training mode
    (``None`` restores the random draw)."""
    for module in mosa_modules(model, name).values():
        module.forced_expert = expert


def _after_load(model: nn.Module, config: MoSAConfig, name: str) -> None:
    for module in mosa_modules(model, name).values():
        for layer in (module.down, module.up):
            if isinstance(layer, SparseExpertLinear):
                layer._refresh_index()


def _merge(model: nn.Module, config: MoSAConfig, name: str) -> None:
    """Fold each MoSA layer's experts into a plain bottleneck adapter (the adapter stays, its
    config becomes the equivalent :class:`BottleneckConfig`)."""
    replace_with_bottleneck(model, config, name, MoSAAdapter, MoSAAdapter.to_bottleneck, _SUFFIX)


register_method(
    MoSAConfig,
    AdapterMethod(inject=_inject, merge=_merge, after_load=_after_load),
)
