"""What adapterlab knows about a model: its adapters' configs, tensors, extra modules and switches.

Lives below ``tuners/`` so that methods can read it without importing the model-level API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..config import AdapterConfig

__all__ = ["AdapterState", "adapter_state", "list_adapters"]

_STATE_ATTR = "_adapterlab_state"


@dataclass
class AdapterState:
    """Configs, tensors and extra modules (``modules_to_save`` copies) per adapter."""

    configs: dict[str, AdapterConfig] = field(default_factory=dict)
    handles: dict[str, dict[str, nn.Module]] = field(default_factory=dict)
    extras: dict[str, dict[str, nn.Module]] = field(default_factory=dict)
    active: list[str] = field(default_factory=list)
    composition: str = "stack"


def adapter_state(model: nn.Module, create: bool = False) -> AdapterState:
    """The :class:`AdapterState` of ``model`` (created on demand when ``create``)."""
    state = model.__dict__.get(_STATE_ATTR)
    if state is None:
        if not create:
            raise ValueError(f"{type(model).__name__} has no adapters (use add_adapter first)")
        state = AdapterState()
        model.__dict__[_STATE_ATTR] = state
    return state


def list_adapters(model: nn.Module) -> dict[str, AdapterConfig]:
    """Adapter names and configs, in the order they were added."""
    state = model.__dict__.get(_STATE_ATTR)
    return dict(state.configs) if state else {}
