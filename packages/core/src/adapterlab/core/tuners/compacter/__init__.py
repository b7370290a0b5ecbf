"""Compacter and Compacter++ (Karimi Mahabadi et al., "Compacter: Efficient Low-Rank Hypercomplex
Adapter Layers", NeurIPS 2021), as AdapterHub's ``CompacterConfig`` / ``CompacterPlusPlusConfig``.

A bottleneck adapter (same placements as ``houlsby`` / ``pfeiffer``) whose projections are PHM
layers: ``H = sum_i kron(A_i, W_i)`` with slow rules ``A_i`` shared by every layer of the adapter
and fast low-rank ``W_i`` per projection. ``merge_adapter`` turns it into the plain bottleneck
adapter with weights ``H.T`` (same outputs).
"""

from __future__ import annotations

from torch import nn

from ..bottleneck import inject_bottleneck_adapters
from ..plain_merge import replace_with_bottleneck
from ..registry import AdapterMethod, register_method
from ..state import adapter_state
from ..sublayer import adapter_kwargs
from .config import CompacterConfig
from .layer import CompacterAdapter, PHMLinear, PHMRule, kron_sum

__all__ = ["CompacterAdapter", "CompacterConfig", "PHMLinear", "PHMRule", "kron_sum"]

_SUFFIX = "compacter"


def _inject(model: nn.Module, config: CompacterConfig, name: str) -> dict[str, nn.Module]:
    shared = PHMRule(config, shared=True) if config.shared_phm_rule else None
    built: list[CompacterAdapter] = []

    def build(dim: int) -> CompacterAdapter:
        adapter = CompacterAdapter(
            dim, config.size(dim), config, shared, owns_rule=not built, **adapter_kwargs(config)
        )
        built.append(adapter)
        return adapter

    return inject_bottleneck_adapters(model, config, name, build, _SUFFIX)


def _rules(model: nn.Module, config: CompacterConfig, name: str) -> list[nn.Parameter]:
    """The rule tensors (frozen when ``learn_phm=False``)."""
    if config.learn_phm:
        return []
    out: list[nn.Parameter] = []
    for module in adapter_state(model).handles[name].values():
        for key, param in module.named_parameters():
            if key.rsplit(".", 1)[-1].startswith("phm_rule"):
                out.append(param)
    return out


def _merge(model: nn.Module, config: CompacterConfig, name: str) -> None:
    """Each Compacter layer becomes the plain bottleneck adapter with weights ``H.T``."""
    replace_with_bottleneck(
        model, config, name, CompacterAdapter, CompacterAdapter.to_bottleneck, _SUFFIX
    )


register_method(CompacterConfig, AdapterMethod(inject=_inject, merge=_merge, frozen=_rules))
