"""Bottleneck adapters: Houlsby (2019), Pfeiffer (2021), parallel (He et al. 2022).

References:
    Houlsby et al., "Parameter-Efficient Transfer Learning for NLP", ICML 2019.
    Pfeiffer et al., "AdapterFusion: Non-Destructive Task Composition for Transfer Learning", EACL 2021.
    He et al., "Towards a Unified View of Parameter-Efficient Transfer Learning", ICLR 2022.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from torch import nn

from ...architectures import default_targets
from ...targeting import match_modules, resolve_module
from ..base import OutputAdapterWrapper, replace_submodule
from ..registry import AdapterMethod, register_method
from ..sublayer import adapter_kwargs, inject_sublayer_adapters
from .config import BottleneckConfig
from .layer import BottleneckAdapter, make_activation

__all__ = [
    "BottleneckAdapter",
    "BottleneckConfig",
    "inject_bottleneck_adapters",
    "make_activation",
]


def _inject(model: nn.Module, config: BottleneckConfig, name: str) -> dict[str, nn.Module]:
    def build(dim: int) -> BottleneckAdapter:
        return BottleneckAdapter(
            dim, config.size(dim), activation=config.activation, **adapter_kwargs(config)
        )

    return inject_bottleneck_adapters(model, config, name, build, "bottleneck")


def inject_bottleneck_adapters(
    model: nn.Module,
    config: BottleneckConfig,
    name: str,
    build: Callable[[int], BottleneckAdapter],
    suffix: str,
) -> dict[str, nn.Module]:
    """Place ``build(dim)`` adapters as ``config`` says (``original_ln_before``: at the closing
    LayerNorms, else on the sublayer outputs); handles are ``<target>.<suffix>``. Shared by the
    bottleneck-shaped methods (bottleneck, Compacter, invertible bottleneck)."""
    if not config.original_ln_before:
        return inject_sublayer_adapters(model, config, name, build, suffix)
    targets = config.target_modules
    if targets is None:
        slots = tuple(f"{loc}_norm" for loc in config.locations)
        fallback = {f"{loc}_norm": loc for loc in config.locations}
        targets = default_targets(model, slots, config.method, fallback=fallback)
    matches = match_modules(model, targets)
    norms = [clean for clean, m in matches if _is_norm(m)]
    others = [clean for clean, m in matches if not _is_norm(m)]
    handles: dict[str, nn.Module] = {}
    if others:
        exact = "|".join(re.escape(c) for c in others)
        handles.update(
            inject_sublayer_adapters(
                model, dataclasses.replace(config, target_modules=exact), name, build, suffix
            )
        )
    for clean in norms:
        path, module = resolve_module(model, clean)
        if isinstance(module, OutputAdapterWrapper):
            wrapper = module
        else:
            wrapper = OutputAdapterWrapper(module)
            replace_submodule(model, path, wrapper)
        adapter = build(int(wrapper.base_layer.normalized_shape[-1]))
        adapter.bind_norm(wrapper.base_layer)
        wrapper.adapters[name] = adapter
        handles[f"{clean}.{suffix}"] = adapter
    return handles


def _is_norm(module: nn.Module) -> bool:
    base = module.base_layer if isinstance(module, OutputAdapterWrapper) else module
    return isinstance(base, nn.LayerNorm)


register_method(BottleneckConfig, AdapterMethod(inject=_inject))
