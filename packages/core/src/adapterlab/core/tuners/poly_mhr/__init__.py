"""Poly and Multi-Head Routing (MHR, MHR-z, MHR-mu) through PEFT's Poly tuner.

Ponti et al. 2023, "Combining Parameter-efficient Modules for Task-level Generalisation" (Poly);
Caccia et al. 2023, "Multi-Head Adapter Routing for Cross-Task Generalization" (MHR). Each target
``nn.Linear`` gets an inventory of ``n_skills`` LoRA skills; a per-task routing matrix mixes them
(per split of the hidden dimension when ``n_splits > 1``: MHR). Few-shot adaptation modes
(mttl ``projects/mhr/pl_finetune.py``): MHR-z trains only the routing logits of the new task
(``train_only_router``); MHR-mu replaces the router by the uniform average of the skills
(``routing="average"``) and fine-tunes the skills. See :func:`prepare_finetune`.

``peft.inject_adapter_in_model`` puts PEFT's Poly layers into the model; ``layer.py`` only extends
them (MHR-mu, temperature, task ids from the model, inputs of any rank).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ...architectures import match_targets
from ...config import register_preset
from ...targeting import clean_name, resolve_module
from ..registry import AdapterMethod, register_method
from ..state import adapter_state
from .config import ROUTINGS, PolyConfig

if TYPE_CHECKING:
    from peft.tuners.poly.layer import PolyLayer

    from .layer import MHRRouter

# Subclasses of PEFT's Poly classes: imported on first use, so ``import adapterlab.core`` does
# not import PEFT.
_LAZY = ("MHRLinear", "MHRRouter", "attach", "routing_weights", "set_task_ids", "use_task_ids")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import layer

        return getattr(layer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MHRLinear",
    "MHRRouter",
    "PolyConfig",
    "ROUTINGS",
    "poly_layers",
    "prepare_finetune",
    "routing_weights",
    "set_task_ids",
    "use_task_ids",
]


class _ParamHolder(nn.Module):
    """Exposes a shared ``nn.Parameter`` as ``weight`` so it saves under a stable key."""

    def __init__(self, param: nn.Parameter) -> None:
        super().__init__()
        self.weight = param


def poly_layers(model: nn.Module, name: str) -> list[tuple[str, PolyLayer]]:
    """``(real path, layer)`` for every Poly layer carrying adapter ``name``."""
    if "peft" not in sys.modules:  # no PEFT layer exists before PEFT is imported
        return []
    from peft.tuners.poly.layer import PolyLayer

    return [
        (path, m)
        for path, m in model.named_modules()
        if isinstance(m, PolyLayer) and name in m.poly_lora_A
    ]


def _check_target(clean: str, module: nn.Module, config: PolyConfig) -> None:
    from peft.tuners.tuners_utils import BaseTunerLayer

    base = module.get_base_layer() if isinstance(module, BaseTunerLayer) else module
    if not isinstance(base, nn.Linear):
        raise ValueError(
            f"poly: target {clean!r} is a {type(base).__name__}; PEFT's Poly supports nn.Linear "
            "only. Pass target_modules naming Linear layers."
        )
    for what, dim in (("in_features", base.in_features), ("out_features", base.out_features)):
        if dim % config.n_splits:
            raise ValueError(
                f"poly: {clean!r} has {what}={dim}, not divisible by n_splits={config.n_splits}"
            )


def _inject(model: nn.Module, config: PolyConfig, name: str) -> dict[str, nn.Module]:
    import peft

    from .layer import attach

    matches = match_targets(model, config.target_modules, ("qv",), "poly")
    for clean, module in matches:
        _check_target(clean, module, config)
    real = [resolve_module(model, clean)[0] for clean, _ in matches]
    peft.inject_adapter_in_model(config.to_peft(real), model, adapter_name=name)
    handles: dict[str, nn.Module] = {}
    for path, layer in poly_layers(model, name):
        attach(layer, model, name, config.routing, config.temperature)
        layer.train(layer.get_base_layer().training)  # a new router must not sample at eval
        holder = nn.ModuleDict(
            {
                "poly_lora_A": _ParamHolder(layer.poly_lora_A[name]),
                "poly_lora_B": _ParamHolder(layer.poly_lora_B[name]),
                "poly_router": layer.poly_router[name],
            }
        )
        handles[f"{clean_name(path)}.poly"] = holder
    return handles


def _frozen(model: nn.Module, config: PolyConfig, name: str) -> list[nn.Parameter]:
    """Adapter tensors that do not train: the skills for MHR-z, the unused router for MHR-mu."""
    out: list[nn.Parameter] = []
    for _, layer in poly_layers(model, name):
        if config.train_only_router:
            out += [layer.poly_lora_A[name], layer.poly_lora_B[name]]
        if config.routing == "average":
            out.append(layer.poly_router[name].module_logits)
    return out


@torch.no_grad()
def prepare_finetune(
    model: nn.Module, name: str, mode: str, n_tasks: int = 1, reset_router: bool = True
) -> PolyConfig:
    """Switch a (multi-task pre-trained) Poly/MHR adapter to a few-shot fine-tuning mode.

    Args:
        mode: ``"poly"``/``"mhr"`` (router and skills train), ``"z"`` (MHR-z: only the router
            trains) or ``"mu"`` (MHR-mu: uniform average of the skills, the skills train).
        n_tasks: rows of the new routing matrix (1: one new task).
        reset_router: start the new task's routing logits at PEFT's init, U(-1e-3, 1e-3).

    Returns the adapter's new config (also stored on the model, so ``save_adapter`` writes it).
    """
    state = adapter_state(model)
    config = state.configs.get(name)
    if not isinstance(config, PolyConfig):
        raise ValueError(f"{name!r} is not a Poly/MHR adapter; adapters: {list(state.configs)}")
    if mode in ("poly", "mhr"):
        new = config.replace(routing="learned", train_only_router=False, n_tasks=n_tasks)
    elif mode == "z":
        new = config.replace(routing="learned", train_only_router=True, n_tasks=n_tasks)
    elif mode == "mu":
        new = config.replace(routing="average", train_only_router=False, n_tasks=n_tasks)
    else:
        raise ValueError(f"mode must be 'poly', 'mhr', 'z' or 'mu', got {mode!r}")
    new.validate()
    for _, layer in poly_layers(model, name):
        router: MHRRouter = layer.poly_router[name]
        if reset_router or n_tasks != router.n_tasks:
            logits = router.module_logits
            logits.data = logits.new_empty(n_tasks, router.n_splits * router.n_skills)
            nn.init.uniform_(logits, -1e-3, 1e-3)
        router.n_tasks = n_tasks
        layer.n_tasks[name] = n_tasks
        router.routing = new.routing
    state.configs[name] = new
    frozen = {id(p) for p in _frozen(model, new, name)}
    for holder in state.handles[name].values():
        for p in holder.parameters():
            p.requires_grad_(id(p) not in frozen)
    return new


def _check_merge(model: nn.Module, config: PolyConfig, name: str) -> None:
    if config.n_tasks != 1 and config.routing == "learned":
        raise ValueError(
            f"cannot merge Poly adapter {name!r}: it routes over {config.n_tasks} tasks"
        )
    for path, layer in poly_layers(model, name):
        others = [n for n in layer.poly_lora_A if n != name]
        if others:
            raise ValueError(
                f"cannot merge {name!r} into {clean_name(path)}: also carries {others}"
            )


def _merge(model: nn.Module, config: PolyConfig, name: str) -> None:
    """Fold a single-task (or MHR-mu) Poly adapter into the base weights (eval-mode routing)."""
    from ..base import replace_submodule

    _check_merge(model, config, name)
    for path, layer in poly_layers(model, name):
        router = layer.poly_router[name]
        was = router.training
        router.eval()
        w = router(torch.zeros(1, dtype=torch.long), None)[0]  # [splits, skills]
        router.train(was)
        a = torch.einsum("qs,qsdr->qdr", w, layer.poly_lora_A[name]).reshape(-1, config.r)
        b = torch.einsum("qs,qsrd->rqd", w, layer.poly_lora_B[name]).reshape(config.r, -1)
        base = layer.get_base_layer()
        with torch.no_grad():
            base.weight += ((a @ b) / config.r).T.to(base.weight.dtype)
        replace_submodule(model, path, base)


register_method(
    PolyConfig,
    AdapterMethod(inject=_inject, merge=_merge, frozen=_frozen, check_merge=_check_merge),
)
register_preset("poly", "poly")
register_preset("mhr", "poly", n_splits=8)
register_preset("mhr_z", "poly", n_splits=8, train_only_router=True)
register_preset("mhr_mu", "poly", n_splits=8, routing="average")
