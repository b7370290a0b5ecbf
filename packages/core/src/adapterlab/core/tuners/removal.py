"""Remove one adapter's layers from a model (``delete_adapter``, and rollback of failed loads).

Works for every wrapper kind the tuners use: ``adapters`` dicts of :class:`AdapterControl`
wrappers, PEFT tuner layers (LoRA, Poly) and BitFit's bias parametrisations. A wrapper left without adapters is replaced by the module it wraps.
"""

from __future__ import annotations

import sys

from torch import nn
from torch.nn.utils import parametrize

from .base import AdapterControl, replace_submodule

__all__ = ["peft_tuner_layer_class", "remove_adapter_layers"]


def peft_tuner_layer_class() -> type | None:
    module = sys.modules.get("peft.tuners.tuners_utils")  # no PEFT layers before PEFT is imported
    return getattr(module, "BaseTunerLayer", None)


def _drop_hooks_to(model: nn.Module, target: nn.Module) -> None:
    """Remove forward (pre-)hooks that are bound methods of ``target`` (e.g. input capture)."""
    for module in model.modules():
        for hooks in (module._forward_pre_hooks, module._forward_hooks):
            for key, hook in list(hooks.items()):
                if getattr(hook, "__self__", None) is target:
                    del hooks[key]


def _carries(layer: nn.Module, name: str) -> bool:
    for attr in getattr(layer, "adapter_layer_names", ()):
        container = getattr(layer, attr, None)
        if container is not None and name in container:
            return True
    return False


def _is_empty_tuner(layer: nn.Module) -> bool:
    for attr in getattr(layer, "adapter_layer_names", ()):
        container = getattr(layer, attr, None)
        if container is not None and len(container) > 0:
            return False
    return True


def remove_adapter_layers(model: nn.Module, name: str) -> None:
    """Remove every layer of adapter ``name`` from ``model`` (also a partly injected one)."""
    tuner_cls = peft_tuner_layer_class()
    unwrap: list[tuple[str, nn.Module]] = []
    for path, module in list(model.named_modules()):
        if tuner_cls is not None and isinstance(module, tuner_cls):
            if _carries(module, name):
                module.delete_adapter(name)
                if _is_empty_tuner(module):
                    unwrap.append((path, module))
            continue
        if not isinstance(module, AdapterControl):
            continue
        if name not in module.adapter_names():
            if not module.adapter_names() and path:  # left empty by a failed injection
                unwrap.append((path, module))
            continue
        for attr in ("adapters", "deltas", "roles"):
            # the module's own containers only (wrappers forward unknown attributes)
            container = module._modules.get(attr, module.__dict__.get(attr))
            if container is not None and name in container:
                del container[name]
        module.active_adapters = [n for n in module.active_adapters if n != name]
        if not module.adapter_names():
            unwrap.append((path, module))
    for path, module in sorted(unwrap, key=lambda item: -item[0].count(".")):
        _unwrap(model, path, module, tuner_cls)
    _restore_split_attention(model, tuner_cls)


def _unwrap(model: nn.Module, path: str, module: nn.Module, tuner_cls: type | None) -> None:
    parts = path.split(".")
    if "parametrizations" in parts:  # BitFit: drop the bias parametrisation
        i = len(parts) - 1 - parts[::-1].index("parametrizations")
        owner = model.get_submodule(".".join(parts[:i])) if i else model
        pname = parts[i + 1]
        if parametrize.is_parametrized(owner, pname):
            parametrize.remove_parametrizations(owner, pname, leave_parametrized=False)
        return
    if tuner_cls is not None and isinstance(module, tuner_cls):
        base = module.get_base_layer()
    else:
        base = getattr(module, "base_layer", None)
    if base is None or not path:
        return
    _drop_hooks_to(model, module)
    replace_submodule(model, path, base)


def _restore_split_attention(model: nn.Module, tuner_cls: type | None) -> None:
    split_mha = sys.modules.get(f"{__package__}.lora.split_mha")
    if split_mha is None:  # never imported: no split attention in any model
        return
    for path, module in list(model.named_modules()):
        if not isinstance(module, split_mha.SplitMultiheadAttention):
            continue
        projections = (module.q_proj, module.k_proj, module.v_proj)
        if tuner_cls is None or not any(isinstance(p, tuner_cls) for p in projections):
            module.sync_merged()
            replace_submodule(model, path, module.base_layer)
