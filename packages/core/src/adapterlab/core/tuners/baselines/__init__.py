"""Baselines in the adapter API: BitFit, linear probing and full fine-tuning.

BitFit (Ben Zaken et al. 2022, "BitFit: Simple Parameter-efficient Fine-tuning for
Transformer-based Masked Language-models") trains only the bias terms. Deliberate deviation: the
biases are reparametrised as ``b + delta`` with ``delta`` zero-initialised (via
``torch.nn.utils.parametrize``), so the base tensors stay bit-identical, ``disable_adapters`` gives
the base model back, and ``merge_adapter`` folds ``delta`` into ``b``. Gradients and optimiser
updates are the same as training ``b`` directly; weight decay acts on ``delta`` instead of ``b``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from ...config import AdapterConfig, register_preset
from ...targeting import match_modules, resolve_module
from ..base import AdapterControl
from ..registry import AdapterMethod, register_method

__all__ = ["BitFitConfig", "LinearProbeConfig", "FullFinetuneConfig", "BiasDelta"]


@dataclass
class BitFitConfig(AdapterConfig):
    """BitFit: every bias of the targeted modules (all modules when ``target_modules`` is None)."""

    method = "bitfit"
    mergeable = True


@dataclass
class LinearProbeConfig(AdapterConfig):
    """Linear probing: only ``modules_to_save`` (e.g. the new head) train; nothing is injected."""

    method = "linear_probe"

    def validate(self) -> None:
        if not self.modules_to_save:
            raise ValueError("linear_probe needs modules_to_save (the head to train)")


@dataclass
class FullFinetuneConfig(AdapterConfig):
    """Full fine-tuning: every parameter trains and the whole state dict is saved."""

    method = "full"


class BiasDelta(nn.Module, AdapterControl):
    """Parametrisation ``bias -> bias + sum(delta[name] for running adapters)``."""

    def __init__(self) -> None:
        super().__init__()
        self.deltas = nn.ParameterDict()
        self._init_control()

    def adapter_names(self) -> list[str]:
        return list(self.deltas.keys())

    def forward(self, bias: torch.Tensor) -> torch.Tensor:
        for name in self.running():
            bias = bias + self.deltas[name]
        return bias


class _DeltaHandle(nn.Module):
    def __init__(self, delta: nn.Parameter) -> None:
        super().__init__()
        self.delta = delta


def _bias_names(module: nn.Module) -> list[str]:
    return [
        n for n, p in module.named_parameters(recurse=False) if "bias" in n and p is not None
    ] + [n for n in getattr(module, "parametrizations", {}) if "bias" in n]


def _bias_delta(module: nn.Module, pname: str) -> BiasDelta:
    if parametrize.is_parametrized(module, pname):
        for p in module.parametrizations[pname]:
            if isinstance(p, BiasDelta):
                return p
    delta = BiasDelta()
    parametrize.register_parametrization(module, pname, delta, unsafe=True)
    return delta


def _inject_bitfit(model: nn.Module, config: BitFitConfig, name: str) -> dict[str, nn.Module]:
    if config.target_modules is None:
        matches = [(n, m) for n, m in _all_visible(model)]
    else:
        matches = match_modules(model, config.target_modules)
    plan = []
    for clean, _ in matches:
        _, module = resolve_module(model, clean)
        for pname in dict.fromkeys(_bias_names(module)):
            plan.append((clean, module, pname))
    if not plan:
        raise ValueError("bitfit: the targeted modules have no bias parameters")
    handles: dict[str, nn.Module] = {}
    for clean, module, pname in plan:
        bias = getattr(module, pname)
        delta = _bias_delta(module, pname)
        delta.deltas[name] = nn.Parameter(torch.zeros_like(bias))
        handles[f"{clean}.{pname}.bitfit"] = _DeltaHandle(delta.deltas[name])
    return handles


def _all_visible(model: nn.Module) -> list[tuple[str, nn.Module]]:
    from ...targeting import _visible_modules

    return _visible_modules(model)


def _merge_bitfit(model: nn.Module, config: BitFitConfig, name: str) -> None:
    for module in list(model.modules()):
        if not parametrize.is_parametrized(module):
            continue
        for pname in list(module.parametrizations.keys()):
            deltas = [p for p in module.parametrizations[pname] if isinstance(p, BiasDelta)]
            for delta in deltas:
                if name not in delta.deltas:
                    continue
                others = [n for n in delta.deltas if n != name]
                if others:
                    raise ValueError(
                        f"cannot merge BitFit {name!r}: biases also carry adapters {others}"
                    )
                with torch.no_grad():
                    merged = module.parametrizations[pname].original + delta.deltas[name]
                parametrize.remove_parametrizations(module, pname, leave_parametrized=False)
                with torch.no_grad():
                    getattr(module, pname).copy_(merged)


def _inject_nothing(model: nn.Module, config: AdapterConfig, name: str) -> dict[str, nn.Module]:
    return {}


def _inject_full(model: nn.Module, config: AdapterConfig, name: str) -> dict[str, nn.Module]:
    return {"model": model}


register_method(BitFitConfig, AdapterMethod(inject=_inject_bitfit, merge=_merge_bitfit))
register_method(LinearProbeConfig, AdapterMethod(inject=_inject_nothing))
register_method(FullFinetuneConfig, AdapterMethod(inject=_inject_full))
register_preset("bitfit", "bitfit")
register_preset("linear_probe", "linear_probe")
register_preset("full", "full")
