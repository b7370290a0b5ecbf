"""Adapter arithmetic: weighted averages of same-shape adapters.

``average_adapters(model, ["a", "b"], [0.7, 0.3], "ab")`` adds adapter ``ab`` whose every float
tensor is ``sum_i w_i * theta_i / sum_i w_i`` (``normalize=False``: ``sum_i w_i * theta_i``, e.g.
negative weights for task-vector style subtraction). This is AdapterHub's ``average_adapter``
with ``combine_strategy="linear"``; for LoRA it averages ``A`` and ``B`` separately, which is not
the average of the ``B @ A`` updates (exact only when the adapters share one factor).
Stacking and parallel-sum composition of live adapters is :func:`adapterlab.core.set_active`.
:func:`combine_domain_adapters` joins MixDA domain adapters under one new gate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from .io import adapter_state_dict
from .model import add_adapter, list_adapters
from .tuners.mixda import MixDAConfig, mixda_modules

__all__ = ["average_adapters", "combine_domain_adapters"]


def _check_compatible(model: nn.Module, names: Sequence[str]) -> dict[str, dict[str, torch.Tensor]]:
    configs = list_adapters(model)
    missing = [n for n in names if n not in configs]
    if missing:
        raise ValueError(f"no adapter(s) {missing}; adapters: {list(configs)}")
    first = configs[names[0]]
    for n in names[1:]:
        if configs[n] != first:
            raise ValueError(
                f"adapters {names[0]!r} and {n!r} have different configs and cannot be "
                f"averaged:\n  {first}\n  {configs[n]}"
            )
    states = {n: adapter_state_dict(model, n) for n in names}
    ref = states[names[0]]
    for n in names[1:]:
        sd = states[n]
        if set(sd) != set(ref):
            diff = sorted(set(sd) ^ set(ref))
            raise ValueError(f"adapters {names[0]!r} and {n!r} hold different tensors: {diff[:10]}")
        for key, value in sd.items():
            if value.shape != ref[key].shape:
                raise ValueError(
                    f"{key}: shape {tuple(value.shape)} in {n!r} vs {tuple(ref[key].shape)} "
                    f"in {names[0]!r}"
                )
            if not value.is_floating_point() and not torch.equal(value, ref[key]):
                raise ValueError(
                    f"{key} is a non-float tensor (e.g. a MoSA expert partition) that differs "
                    f"between {names[0]!r} and {n!r}; such adapters cannot be averaged "
                    "(merge MoSA adapters first, or give them the same seed)"
                )
    return states


@torch.no_grad()
def average_adapters(
    model: nn.Module,
    names: Sequence[str],
    weights: Sequence[float] | None = None,
    new_name: str = "average",
    normalize: bool = True,
) -> nn.Module:
    """Add adapter ``new_name``: the weighted average of adapters ``names`` (same config).

    Args:
        names: adapters to combine (at least one); they must have equal configs and tensors of
            equal shapes; non-float tensors must be identical and are copied.
        weights: one weight per adapter (default: uniform).
        new_name: the new adapter's name; it becomes the active adapter.
        normalize: divide by ``sum(weights)`` (a proper weighted mean); ``False`` keeps the raw
            weighted sum.

    Returns:
        ``model``, changed in place.
    """
    names = list(names)
    if not names:
        raise ValueError("average_adapters needs at least one adapter name")
    if len(set(names)) != len(names):
        raise ValueError(f"adapter names repeat: {names}")
    w = [1.0] * len(names) if weights is None else [float(x) for x in weights]
    if len(w) != len(names):
        raise ValueError(f"{len(w)} weights for {len(names)} adapters")
    total = sum(w)
    if normalize:
        if total == 0:
            raise ValueError("weights sum to 0; use normalize=False for a raw weighted sum")
        w = [x / total for x in w]
    states = _check_compatible(model, names)
    config = dataclasses.replace(list_adapters(model)[names[0]])
    add_adapter(model, config, new_name)
    target = adapter_state_dict(model, new_name)  # detached views of the live tensors
    for key, dst in target.items():
        if key not in states[names[0]]:
            raise ValueError(f"the new adapter has a tensor {key} the sources lack")
        if dst.is_floating_point():
            acc = torch.zeros_like(dst, dtype=torch.float64)
            for wi, n in zip(w, names, strict=True):
                acc += wi * states[n][key].to(device=dst.device, dtype=torch.float64)
            dst.copy_(acc.to(dst.dtype))
        else:
            dst.copy_(states[names[0]][key])
    return model


@torch.no_grad()
def combine_domain_adapters(
    model: nn.Module, sources: Sequence[str], new_name: str, **overrides: object
) -> nn.Module:
    """Add MixDA adapter ``new_name`` holding the domain adapters of ``sources`` (in order) and a
    fresh gate over all of them, as the authors' stage two loads several stage-one adapters.

    The sources must be MixDA adapters on the same modules with equal bottleneck sizes; they stay
    in the model (inactive). ``overrides`` change gate fields of the new config.
    """
    configs = list_adapters(model)
    if not sources:
        raise ValueError("combine_domain_adapters needs at least one source adapter")
    for s in sources:
        if not isinstance(configs.get(s), MixDAConfig):
            raise ValueError(f"{s!r} is not a MixDA adapter of this model")
    src_modules = [mixda_modules(model, s) for s in sources]
    keys = set(src_modules[0])
    for s, mods in zip(sources, src_modules, strict=True):
        if set(mods) != keys:
            raise ValueError(f"MixDA adapter {s!r} sits on other modules than {sources[0]!r}")
    total = sum(next(iter(m.values())).num_domains for m in src_modules)
    base = configs[sources[0]]
    config = dataclasses.replace(base, num_domains=total, **overrides)
    add_adapter(model, config, new_name)
    targets = mixda_modules(model, new_name)
    for key, target in targets.items():
        j = 0
        for mods in src_modules:
            for adapter in mods[key].domain_adapters:
                dst = target.domain_adapters[j]
                if any(a.shape != b.shape for a, b in zip(adapter.parameters(), dst.parameters())):
                    raise ValueError(f"domain adapter shapes differ at {key}")
                dst.load_state_dict(adapter.state_dict())
                j += 1
    return model
