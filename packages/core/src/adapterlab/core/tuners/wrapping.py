"""Wrappers that stand in for a submodule: its attributes stay reachable, adapters ride along."""

from __future__ import annotations

from typing import Any

from torch import nn

from .base import AdapterControl

__all__ = ["AdapterCarrier", "BaseLayerProxy"]


class BaseLayerProxy:
    """Mixin for an ``nn.Module`` wrapper: attributes it lacks come from ``base_layer``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)  # type: ignore[misc]
        except AttributeError:
            return getattr(super().__getattr__("base_layer"), name)  # type: ignore[misc]


class AdapterCarrier(BaseLayerProxy, nn.Module, AdapterControl):
    """Wraps ``base_layer`` and carries adapters in ``self.adapters``, keyed by adapter name."""

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.adapters = nn.ModuleDict()
        self._init_control()

    def adapter_names(self) -> list[str]:
        return list(self.adapters.keys())
