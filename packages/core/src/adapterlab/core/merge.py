"""Fold mergeable adapters (LoRA through PEFT, BitFit, Poly, ...) into plain base modules."""

from __future__ import annotations

from torch import nn

from .model import _forget, _refresh_trainable, adapter_state, set_active
from .tuners.registry import get_method

__all__ = ["merge_adapter"]


def _check(model: nn.Module, names: list[str]) -> None:
    """Everything that could make a merge fail, checked before anything changes."""
    state = adapter_state(model)
    for n in names:
        if n not in state.configs:
            raise ValueError(f"no adapter named {n!r}; adapters: {list(state.configs)}")
        config = state.configs[n]
        method = get_method(config)
        if method.merge is None:
            raise ValueError(
                f"adapter {n!r} ({config.method}) cannot be merged into the base "
                "weights; mergeable methods: lora, bitfit, poly, mosa, lowbit"
            )
        if method.check_merge is not None:
            method.check_merge(model, config, n)


def _merge_extras(model: nn.Module, name: str) -> None:
    """The adapter's ``modules_to_save`` values become the modules' own values."""
    state = adapter_state(model)
    for clean in state.extras[name]:
        slot = state.saved[clean]
        slot.merge(name)
        if not slot.adapters():
            del state.saved[clean]


def merge_adapter(model: nn.Module, name: str | None = None) -> nn.Module:
    """Merge adapter ``name`` (all adapters when None) into the base weights and remove it.

    The merged model's outputs equal the unmerged model's (up to float rounding); LoRA layers
    are replaced by their plain base modules and the adapter's ``modules_to_save`` values become
    the modules' own. Everything is checked first: a ``ValueError`` (a method that cannot be
    merged, a layer shared with another adapter, ...) leaves the model unchanged.
    """
    state = adapter_state(model)
    names = list(state.configs) if name is None else [name]
    _check(model, names)
    for n in names:
        config = state.configs[n]
        get_method(config).merge(model, config, n)
        if state.configs[n] is not config:
            continue  # the method swapped in a plain adapter under the same name (MoSA, low-bit)
        _merge_extras(model, n)
        _forget(model, n)
    if state.configs:
        set_active(model, state.active or list(state.configs)[-1:], state.composition)
    _refresh_trainable(model)
    return model
