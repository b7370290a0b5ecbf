"""Adding adapters to any ``nn.Module`` and switching them: the model-level API."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from .config import AdapterConfig
from .targeting import clean_name, match_modules
from .tuners.base import AdapterControl
from .tuners.registry import get_method

__all__ = [
    "AdapterState",
    "TrainableSummary",
    "add_adapter",
    "adapter_state",
    "disable_adapters",
    "get_adapter_parameters",
    "list_adapters",
    "set_active",
    "trainable_summary",
]

_STATE_ATTR = "_adapterlab_state"


@dataclass
class AdapterState:
    """What adapterlab knows about a model: configs, tensors and extra modules per adapter."""

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


def _unique_params(modules: list[nn.Module]) -> list[nn.Parameter]:
    seen: dict[int, nn.Parameter] = {}
    for module in modules:
        for p in module.parameters():
            seen.setdefault(id(p), p)
    return list(seen.values())


def get_adapter_parameters(model: nn.Module, name: str = "default") -> list[nn.Parameter]:
    """Trainable tensors of adapter ``name``, its extra modules included."""
    state = adapter_state(model)
    if name not in state.configs:
        raise ValueError(f"no adapter named {name!r}; adapters: {list(state.configs)}")
    params = _unique_params(list(state.handles[name].values()) + list(state.extras[name].values()))
    method = get_method(state.configs[name])
    if method.frozen is not None:
        skip = {id(p) for p in method.frozen(model, state.configs[name], name)}
        params = [p for p in params if id(p) not in skip]
    return params


def _refresh_trainable(model: nn.Module) -> None:
    state = adapter_state(model)
    keep: set[int] = set()
    for name in state.configs:
        keep.update(id(p) for p in get_adapter_parameters(model, name))
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)


@contextlib.contextmanager
def _preserve_requires_grad(model: nn.Module) -> Iterator[None]:
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _model_device(model: nn.Module) -> torch.device | None:
    for p in model.parameters():
        return p.device
    return None


def _check_name(model: nn.Module, name: str) -> None:
    if not isinstance(name, str) or not name or "." in name:
        raise ValueError(f"adapter name must be a non-empty string without dots, got {name!r}")
    if name in list_adapters(model):
        raise ValueError(f"an adapter named {name!r} already exists; pick another name")


def add_adapter(model: nn.Module, config: AdapterConfig, name: str = "default") -> nn.Module:
    """Inject adapter ``name`` described by ``config`` into ``model`` (in place) and return it.

    Afterwards only adapter parameters and ``config.modules_to_save`` require grad, and the new
    adapter is the active one (use :func:`set_active` to run several).

    Raises:
        ValueError: unknown method, duplicate name, or targets that match nothing or only partly
            (the message lists candidate module names).
    """
    if not isinstance(config, AdapterConfig):
        raise ValueError(f"config must be an AdapterConfig, got {type(config).__name__}")
    _check_name(model, name)
    config.validate()
    method = get_method(config)
    extras = match_modules(model, config.modules_to_save) if config.modules_to_save else []
    with _preserve_requires_grad(model):
        handles = method.inject(model, config, name)
    device = _model_device(model)
    for module in handles.values():
        if module is not model:
            module.train(model.training)  # new modules follow the model's train/eval mode
            if device is not None:
                module.to(device)  # ... and live on its device (dtype stays float32)
    state = adapter_state(model, create=True)
    state.configs[name] = config
    state.handles[name] = handles
    state.extras[name] = {f"extra.{clean_name(n)}": m for n, m in extras}
    _refresh_trainable(model)
    set_active(model, name)
    return model


def _switchable(model: nn.Module) -> Iterator[nn.Module]:
    for module in model.modules():
        if isinstance(module, AdapterControl | BaseTunerLayer):
            yield module


def set_active(model: nn.Module, names: str | list[str], composition: str = "stack") -> None:
    """Run exactly adapters ``names`` in forward passes.

    ``composition``: ``"stack"`` (each adapter at a sublayer sees the previous one's output) or
    ``"parallel"`` (their changes to the sublayer output are summed). PEFT LoRA adapters always
    add up. Trainability is not changed.
    """
    names = [names] if isinstance(names, str) else list(names)
    state = adapter_state(model)
    unknown = [n for n in names if n not in state.configs]
    if unknown:
        raise ValueError(f"no adapter(s) {unknown}; adapters: {list(state.configs)}")
    if composition not in ("stack", "parallel"):
        raise ValueError(f"composition must be 'stack' or 'parallel', got {composition!r}")
    with _preserve_requires_grad(model):
        for module in _switchable(model):
            if isinstance(module, AdapterControl):
                module.set_active(names, composition)
            else:
                module.set_adapter(names)
    state.active = names
    state.composition = composition


@contextlib.contextmanager
def disable_adapters(model: nn.Module) -> Iterator[nn.Module]:
    """Context manager: inside it the model computes exactly what the bare base model does.

    (Extra modules such as a new head are part of the model and keep their trained values.)
    """
    modules = list(_switchable(model))
    with _preserve_requires_grad(model):
        for module in modules:
            if isinstance(module, AdapterControl):
                module.set_disabled(True)
            else:
                module.enable_adapters(False)
    try:
        yield model
    finally:
        with _preserve_requires_grad(model):
            for module in modules:
                if isinstance(module, AdapterControl):
                    module.set_disabled(False)
                else:
                    module.enable_adapters(True)
                    module.set_adapter(adapter_state(model).active)


@dataclass(frozen=True)
class TrainableSummary:
    """Trainable and total parameter counts."""

    trainable: int
    total: int

    @property
    def percent(self) -> float:
        """Trainable share of all parameters, in percent."""
        return 100.0 * self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return (
            f"trainable params: {self.trainable:,} || all params: {self.total:,} || "
            f"trainable%: {self.percent:.4f}"
        )


def trainable_summary(model: nn.Module) -> TrainableSummary:
    """Count trainable and total parameters (shared tensors once)."""
    seen: dict[int, torch.Tensor] = {}
    for p in model.parameters():
        seen.setdefault(id(p), p)
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return TrainableSummary(trainable=trainable, total=total)
