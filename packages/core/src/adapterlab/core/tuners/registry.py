"""Registry of adapter methods: how each config kind is injected into a model.

A method is a config class (registered with :func:`adapterlab.core.config.register_config`) plus an
:class:`AdapterMethod` with an ``inject`` function. ``inject(model, config, name)`` changes the model
in place and returns the adapter's tensors as ``{key: module}``: each module's ``state_dict()`` is
saved under ``key.`` and keys never contain the adapter name. Optional hooks: ``merge`` (fold into
the base weights) and ``pack_state``/``unpack_state`` (custom on-disk encoding, e.g. low-bit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..config import AdapterConfig

__all__ = ["AdapterMethod", "register_method", "get_method"]

InjectFn = Callable[[nn.Module, AdapterConfig, str], dict[str, nn.Module]]
MergeFn = Callable[[nn.Module, AdapterConfig, str], None]
PackFn = Callable[[dict[str, torch.Tensor], AdapterConfig], dict[str, torch.Tensor]]


@dataclass
class AdapterMethod:
    """How one method is injected, merged and (optionally) encoded on disk."""

    inject: InjectFn
    merge: MergeFn | None = None
    pack_state: PackFn | None = None
    unpack_state: PackFn | None = None
    # Adapter tensors that are saved but do not train (e.g. MHR-z freezes the skills and trains
    # only the router); ``get_adapter_parameters`` and trainability leave them out.
    frozen: Callable[[nn.Module, AdapterConfig, str], list[nn.Parameter]] | None = None
    # Called by ``load_adapter`` after the tensors are copied in (e.g. low-bit layers switch to
    # their stored codes, MoSA experts rebuild index tables from the loaded partition).
    after_load: MergeFn | None = None


_METHODS: dict[str, AdapterMethod] = {}


def register_method(config_cls: type[AdapterConfig], method: AdapterMethod) -> None:
    """Register ``method`` for configs of type ``config_cls`` (by its ``method`` name)."""
    name = config_cls.method
    if name in _METHODS and _METHODS[name] is not method:
        raise ValueError(f"adapter method {name!r} already has an injector")
    _METHODS[name] = method


def get_method(config: AdapterConfig) -> AdapterMethod:
    """The registered :class:`AdapterMethod` for ``config``."""
    try:
        return _METHODS[config.method]
    except KeyError:
        raise ValueError(
            f"unknown adapter method {config.method!r}; registered: {sorted(_METHODS)}"
        ) from None
