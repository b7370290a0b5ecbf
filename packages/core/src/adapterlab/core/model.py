"""Adding adapters to any ``nn.Module`` and switching them: the model-level API."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .config import AdapterConfig
from .init_rng import adapter_init_rng
from .targeting import clean_name, match_modules
from .tuners.base import AdapterControl
from .tuners.extras import SavedModule
from .tuners.registry import get_method
from .tuners.removal import peft_tuner_layer_class, remove_adapter_layers
from .tuners.state import AdapterState, adapter_state, extra_modules, list_adapters

__all__ = [
    "AdapterState",
    "TrainableSummary",
    "add_adapter",
    "adapter_state",
    "delete_adapter",
    "disable_adapters",
    "get_adapter_parameters",
    "list_adapters",
    "set_active",
    "trainable_summary",
]


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
    modules = list(state.handles[name].values()) + list(extra_modules(model, name).values())
    params = _unique_params(modules)
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


def _inside(path: str, roots: list[str]) -> str | None:
    for root in roots:
        if path == root or path.startswith(root + "."):
            return root
    return None


def _claim_extras(model: nn.Module, saved: list[tuple[str, nn.Module]], name: str) -> list[str]:
    """Give adapter ``name`` its own values of every ``modules_to_save`` module."""
    state = adapter_state(model, create=True)
    for clean, module in saved:
        slot = state.saved.get(clean)
        if slot is None:
            slot = state.saved[clean] = SavedModule.of(module)
        slot.add(name)
    return [clean for clean, _ in saved]


def _check_no_overlap(model: nn.Module, handles: dict[str, nn.Module], extras: list[str]) -> None:
    """Adapter layers inside a ``modules_to_save`` module would be saved twice, under keys that
    carry the adapter name; refuse such configs (PEFT refuses them too)."""
    if not extras:
        return
    inner = {id(m) for h in handles.values() if h is not model for m in h.modules()}
    for path, module in model.named_modules():
        if id(module) in inner:
            root = _inside(clean_name(path), extras)
            if root is not None:
                raise ValueError(
                    f"target_modules and modules_to_save overlap at {root!r}: a module is either "
                    "adapted or trained in full (copied per adapter), not both; remove it from "
                    "one of the two lists"
                )


def add_adapter(
    model: nn.Module, config: AdapterConfig, name: str = "default", *, seed: int | None = None
) -> nn.Module:
    """Inject adapter ``name`` described by ``config`` into ``model`` (in place) and return it.

    Initial weights are drawn from generators seeded by ``(seed, name)`` (``seed=None``:
    ``torch.initial_seed()``, i.e. the last ``torch.manual_seed``), and the global random
    streams are left exactly where they were: the same adapter gets the same initial weights
    whatever was added before it, and adding it shifts no later draw.

    Afterwards only adapter parameters and the adapter's own copies of ``config.modules_to_save``
    require grad, the new modules follow the model's train/eval mode, and the new adapter is the
    active one (use :func:`set_active` to run several). On any error the model is left unchanged.

    Raises:
        ValueError: unknown method, duplicate name, wrongly typed fields, or targets that match
            nothing or only partly (the message lists candidate module names).
    """
    if not isinstance(config, AdapterConfig):
        raise ValueError(f"config must be an AdapterConfig, got {type(config).__name__}")
    _check_name(model, name)
    config.check_types()
    config.validate()
    method = get_method(config)
    if config.modules_to_save:
        match_modules(model, config.modules_to_save)  # fail before changing the model
    before = {id(m) for m in model.modules()}
    try:
        with _preserve_requires_grad(model), adapter_init_rng(seed, name):
            handles = method.inject(model, config, name)
            saved = match_modules(model, config.modules_to_save) if config.modules_to_save else []
            _check_no_overlap(model, handles, [c for c, _ in saved])
    except BaseException:
        remove_adapter_layers(model, name)
        raise
    device = _model_device(model)
    for module in model.modules():
        if id(module) not in before:
            module.training = model.training  # new modules follow the model's train/eval mode
    for module in handles.values():
        if module is not model and device is not None:
            module.to(device)  # new tensors live on the model's device (dtype as the method set)
    state = adapter_state(model, create=True)
    state.configs[name] = config
    state.handles[name] = handles
    state.extras[name] = _claim_extras(model, saved, name)
    set_active(model, name)
    _refresh_trainable(model)
    return model


def delete_adapter(model: nn.Module, name: str) -> nn.Module:
    """Remove adapter ``name`` (its layers, its ``modules_to_save`` copies) and return the model.

    Wrappers left without adapters are replaced by the modules they wrap, so deleting every
    adapter gives back the base model's structure. The remaining active adapters stay active.
    """
    state = adapter_state(model)
    if name not in state.configs:
        raise ValueError(f"no adapter named {name!r}; adapters: {list(state.configs)}")
    for clean in state.extras[name]:
        state.saved[clean].remove(name)  # the live module gets its original values back
        if not state.saved[clean].adapters():
            del state.saved[clean]
    _forget(model, name)
    with _preserve_requires_grad(model):
        remove_adapter_layers(model, name)
    if state.configs:
        set_active(model, state.active or list(state.configs)[-1:], state.composition)
        _refresh_trainable(model)
    else:
        for p in model.parameters():
            p.requires_grad_(True)  # no adapter left: the plain model trains as a whole again
    return model


def _forget(model: nn.Module, name: str) -> None:
    state = adapter_state(model)
    del state.configs[name], state.handles[name], state.extras[name]
    state.active = [a for a in state.active if a != name]


def _switchable(model: nn.Module) -> Iterator[nn.Module]:
    tuner = peft_tuner_layer_class()
    kinds = (AdapterControl,) if tuner is None else (AdapterControl, tuner)
    for module in model.modules():
        if isinstance(module, kinds):
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
    owners = {}
    for clean, slot in state.saved.items():
        mine = [n for n in names if n in slot.adapters()]
        if len(mine) > 1:
            raise ValueError(
                f"adapters {mine} each have their own values of modules_to_save module "
                f"{clean!r}; only one of them can be active at a time"
            )
        owners[clean] = mine[0] if mine else None
    for clean, owner in owners.items():
        state.saved[clean].show(owner)
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

    (``modules_to_save`` modules hold their original values, as PEFT's ``disable_adapter``.)
    """
    modules = list(_switchable(model))
    saved = list(adapter_state(model).saved.values()) if list_adapters(model) else []
    owners = [slot.owner for slot in saved]
    for slot in saved:
        slot.show(None)
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
        for slot, owner in zip(saved, owners, strict=True):
            slot.show(owner)


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
