"""Fold mergeable adapters (LoRA through PEFT, BitFit) into plain base modules."""

from __future__ import annotations

from torch import nn

from .model import _refresh_trainable, adapter_state, set_active
from .tuners.registry import get_method

__all__ = ["merge_adapter"]


def merge_adapter(model: nn.Module, name: str | None = None) -> nn.Module:
    """Merge adapter ``name`` (all adapters when None) into the base weights and remove it.

    The merged model's outputs equal the unmerged model's (up to float rounding); LoRA layers
    are replaced by their plain base modules. Raises ``ValueError`` for a method that cannot be
    merged (bottleneck, conformer, prompt, prefix, ...).
    """
    state = adapter_state(model)
    names = list(state.configs) if name is None else [name]
    for n in names:
        if n not in state.configs:
            raise ValueError(f"no adapter named {n!r}; adapters: {list(state.configs)}")
        method = get_method(state.configs[n])
        if method.merge is None:
            raise ValueError(
                f"adapter {n!r} ({state.configs[n].method}) cannot be merged into the base "
                "weights; mergeable methods: lora, bitfit"
            )
    for n in names:
        config = state.configs[n]
        get_method(config).merge(model, config, n)
        if state.configs[n] is not config:
            continue  # the method swapped in a plain adapter under the same name (MoSA, low-bit)
        del state.configs[n], state.handles[n], state.extras[n]
    state.active = [a for a in state.active if a in state.configs]
    if state.configs:
        set_active(model, state.active or list(state.configs)[-1:], state.composition)
    _refresh_trainable(model)
    return model
