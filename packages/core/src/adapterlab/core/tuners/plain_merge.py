"""Turn a bottleneck-shaped adapter (MoSA, low-bit) into a plain bottleneck adapter in place.

Used as their ``merge``: the adapter keeps its name, its layers become :class:`BottleneckAdapter`
s computing the same function and its config becomes the equivalent :class:`BottleneckConfig`,
so ``save_adapter`` then writes a plain bottleneck adapter any model can load.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from torch import nn

from ..config import AdapterConfig
from .base import OutputAdapterWrapper
from .bottleneck.config import BottleneckConfig
from .bottleneck.layer import BottleneckAdapter
from .state import adapter_state

__all__ = ["match_base_device", "replace_with_bottleneck"]


def replace_with_bottleneck(
    model: nn.Module,
    config: AdapterConfig,
    name: str,
    kind: type[nn.Module],
    convert: Callable[[nn.Module], BottleneckAdapter],
    suffix: str,
) -> None:
    """Replace adapter ``name``'s ``kind`` layers by ``convert(layer)`` and its config by the
    :class:`BottleneckConfig` with ``config``'s bottleneck fields."""
    state = adapter_state(model)
    wrappers = {
        id(w.adapters[name]): w
        for w in model.modules()
        if isinstance(w, OutputAdapterWrapper) and name in w.adapters
    }
    handles: dict[str, nn.Module] = {}
    for key, module in state.handles[name].items():
        if not isinstance(module, kind):
            handles[key] = module
            continue
        plain = convert(module)
        wrappers[id(module)].adapters[name] = plain
        handles[key[: -len(suffix)] + "bottleneck"] = plain
    fields = {f.name for f in dataclasses.fields(BottleneckConfig)}
    state.handles[name] = handles
    state.configs[name] = BottleneckConfig(**{n: getattr(config, n) for n in fields})


def match_base_device(model: nn.Module, handles: dict[str, nn.Module], suffix: str) -> None:
    """Move each new adapter (handle key ``<target>.<suffix>``) to its target layer's device."""
    from ..targeting import resolve_module

    for key, adapter in handles.items():
        _, wrapper = resolve_module(model, key[: -len(suffix) - 1])
        base = wrapper.base_layer if isinstance(wrapper, OutputAdapterWrapper) else wrapper
        ref = next(iter(base.parameters()), None)
        if ref is not None:
            adapter.to(device=ref.device)
