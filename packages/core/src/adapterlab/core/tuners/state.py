"""What adapterlab knows about a model: its adapters' configs, tensors, extra modules and switches.

Lives below ``tuners/`` so that methods can read it without importing the model-level API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..config import AdapterConfig
from .extras import SavedModule

__all__ = ["AdapterState", "adapter_state", "extra_modules", "list_adapters"]

_STATE_ATTR = "_adapterlab_state"


@dataclass
class AdapterState:
    """Configs and tensors per adapter; ``extras[name]`` lists the ``modules_to_save`` modules
    (clean names) whose values adapter ``name`` owns, ``saved`` holds those values."""

    configs: dict[str, AdapterConfig] = field(default_factory=dict)
    handles: dict[str, dict[str, nn.Module]] = field(default_factory=dict)
    extras: dict[str, list[str]] = field(default_factory=dict)
    saved: dict[str, SavedModule] = field(default_factory=dict)
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


def extra_modules(model: nn.Module, name: str) -> dict[str, nn.Module]:
    """``{"extra.<module>": module holding adapter name's values}`` for its modules_to_save."""
    state = adapter_state(model)
    return {f"extra.{clean}": state.saved[clean].module_for(name) for clean in state.extras[name]}
