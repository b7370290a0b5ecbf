"""The one registry of adapter methods: config class + how it is injected, merged and stored.

``register_method(ConfigCls, AdapterMethod(inject=...))`` makes a method known everywhere: its
config loads from ``adapter_config.json`` by its ``method`` name, :func:`get_config` builds it,
and ``add_adapter`` injects it. ``inject(model, config, name)`` changes the model in place and
returns the adapter's tensors as ``{key: module}``: each module's ``state_dict()`` is saved under
``key.`` and keys never contain the adapter name. Optional hooks: ``merge`` (fold into the base
weights), ``pack_state``/``unpack_state`` (custom on-disk encoding, e.g. low-bit), ``frozen`` and
``after_load``.

Outside the registry: sparse fine-tuning (``lt_sft``/``apply_sft``, :mod:`.sft`) changes base
weights in place and is saved as a sparse diff, so it is not an injected adapter and has its own
save/load functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..config import AdapterConfig

__all__ = [
    "AdapterMethod",
    "available_methods",
    "config_class",
    "get_method",
    "register_method",
]

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
    # Called by ``merge_adapter`` before anything is merged: raise ``ValueError`` if ``merge``
    # would fail, so that a failed merge changes nothing.
    check_merge: MergeFn | None = None


_METHODS: dict[str, tuple[type[AdapterConfig], AdapterMethod]] = {}


def register_method(config_cls: type[AdapterConfig], method: AdapterMethod) -> None:
    """Register adapter method ``config_cls.method``: its config class and its :class:`AdapterMethod`.

    Raises ``ValueError`` if the name is taken by another class or method.
    """
    if not (isinstance(config_cls, type) and issubclass(config_cls, AdapterConfig)):
        raise ValueError(f"register_method needs an AdapterConfig subclass, got {config_cls!r}")
    if not isinstance(method, AdapterMethod):
        raise ValueError(f"register_method needs an AdapterMethod, got {type(method).__name__}")
    name = config_cls.method
    if not isinstance(name, str) or not name or name == AdapterConfig.method:
        raise ValueError(f"{config_cls.__name__} must set a unique class attribute 'method'")
    known = _METHODS.get(name)
    if known is not None and (known[0] is not config_cls or known[1] is not method):
        raise ValueError(f"adapter method {name!r} is already registered by {known[0].__name__}")
    _METHODS[name] = (config_cls, method)


def available_methods() -> list[str]:
    """Names of all registered adapter methods."""
    return sorted(_METHODS)


def config_class(method: str) -> type[AdapterConfig]:
    """The config class registered for ``method``."""
    try:
        return _METHODS[method][0]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown adapter method {method!r}; known methods: {available_methods()}"
        ) from None


def get_method(config: AdapterConfig) -> AdapterMethod:
    """The registered :class:`AdapterMethod` for ``config``."""
    try:
        return _METHODS[config.method][1]
    except KeyError:
        raise ValueError(
            f"unknown adapter method {config.method!r}; known methods: {available_methods()}"
        ) from None
