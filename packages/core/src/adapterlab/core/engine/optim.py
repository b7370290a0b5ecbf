"""Optimiser construction: AdamW or SGD over parameter groups with their own learning rates."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from .config import TrainConfig

__all__ = ["ParamGroups", "build_optimizer", "resolve_param_groups"]

ParamGroups = list[dict[str, Any]] | Callable[[nn.Module], list[dict[str, Any]]] | None


def resolve_param_groups(model: nn.Module, param_groups: ParamGroups) -> list[dict[str, Any]]:
    """Normalise ``param_groups`` (None, list of dicts, or callable) into validated groups.

    ``None`` puts every trainable parameter in one group at ``config.lr``. Frozen parameters
    listed in a group are an error, as is a parameter listed twice or no trainable parameter.
    """
    if param_groups is None:
        groups: Iterable[dict[str, Any]] = [
            {"params": [p for p in model.parameters() if p.requires_grad]}
        ]
    elif callable(param_groups):
        groups = param_groups(model)
    else:
        groups = param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    seen: set[int] = set()
    out: list[dict[str, Any]] = []
    for i, group in enumerate(groups):
        if not isinstance(group, dict) or "params" not in group:
            raise ValueError(
                f"param_groups[{i}] must be a dict with a 'params' entry, got {group!r}"
            )
        params = list(group["params"])
        for p in params:
            if not isinstance(p, torch.Tensor):
                raise ValueError(f"param_groups[{i}] holds a {type(p).__name__}, not a parameter")
            if not p.requires_grad:
                raise ValueError(
                    f"param_groups[{i}] holds frozen parameter {names.get(id(p), '<unnamed>')}"
                )
            if id(p) in seen:
                raise ValueError(
                    f"parameter {names.get(id(p), '<unnamed>')} appears in more than one group"
                )
            seen.add(id(p))
        out.append({**group, "params": params})
    if not seen:
        raise ValueError("no trainable parameters: add an adapter (add_adapter) before training")
    return out


def build_optimizer(groups: list[dict[str, Any]], config: TrainConfig) -> torch.optim.Optimizer:
    """``torch.optim.AdamW`` or ``SGD`` over ``groups``; groups without ``lr`` use ``config.lr``."""
    if config.optimizer == "adamw":
        return torch.optim.AdamW(
            groups,
            lr=config.lr,
            betas=config.betas,
            eps=config.eps,
            weight_decay=config.weight_decay,
        )
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    raise ValueError(f"unknown optimizer {config.optimizer!r}; choose 'adamw' or 'sgd'")
