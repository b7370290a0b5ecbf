"""Learning-rate schedules as pure functions of the schedule step, wrapped in ``LambdaLR``.

For a parameter group with peak rate ``base`` at schedule step ``t`` (``t`` counts optimiser
steps, or epochs when ``schedule_per="epoch"``), warmup ``W``, total length ``T`` and ``m = min_lr``:

* warmup (``t < W``): ``base * (t + 1) / W``
* ``none``: ``base``
* ``cosine``: ``m + (base - m) * (1 + cos(pi * p)) / 2`` with ``p = min(1, (t - W) / (T - W))``
* ``linear_warmup``: ``m + (base - m) * max(0, (T - t) / (T - W))``
* ``cosine_restarts`` (SGDR, Loshchilov & Hutter 2017, as ``CosineAnnealingWarmRestarts``):
  ``m + (base - m) * (1 + cos(pi * T_cur / T_i)) / 2`` where ``s = t - W`` runs through periods
  ``T_0 = restart_period, T_i = T_0 * restart_mult**i`` and ``T_cur`` is the position inside one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from .config import TrainConfig

__all__ = ["build_scheduler", "lr_at", "schedule_length"]


def _restart_position(s: int, period: int, mult: int) -> tuple[int, int]:
    """``(T_cur, T_i)`` of SGDR at step ``s``."""
    if mult == 1:
        return s % period, period
    # index of the current period: sum_{j<i} period * mult**j <= s
    i = int(math.floor(math.log(s / period * (mult - 1) + 1, mult)))
    start = period * (mult**i - 1) // (mult - 1)
    while start > s:  # guard against float rounding
        i -= 1
        start = period * (mult**i - 1) // (mult - 1)
    while start + period * mult**i <= s:
        start += period * mult**i
        i += 1
    return s - start, period * mult**i


def lr_at(
    t: int,
    base: float,
    *,
    kind: str,
    total: int,
    warmup: int = 0,
    min_lr: float = 0.0,
    restart_period: int = 1,
    restart_mult: int = 1,
) -> float:
    """Learning rate at schedule step ``t`` (see the module docstring for the formulas)."""
    if t < warmup:
        return base * (t + 1) / warmup
    if kind == "none":
        return base
    if kind == "cosine":
        p = min(1.0, (t - warmup) / max(1, total - warmup))
        return min_lr + (base - min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))
    if kind == "linear_warmup":
        return min_lr + (base - min_lr) * max(0.0, (total - t) / max(1, total - warmup))
    if kind == "cosine_restarts":
        t_cur, t_i = _restart_position(t - warmup, restart_period, restart_mult)
        return min_lr + (base - min_lr) * 0.5 * (1.0 + math.cos(math.pi * t_cur / t_i))
    raise ValueError(f"unknown scheduler {kind!r}")


def schedule_length(config: TrainConfig, steps_per_epoch: int) -> int:
    """Total number of schedule steps ``T`` of a run."""
    if config.schedule_per == "batch":
        return config.max_steps if config.max_steps is not None else config.epochs * steps_per_epoch
    if config.max_steps is not None:
        return math.ceil(config.max_steps / steps_per_epoch)
    return config.epochs


def build_scheduler(optimizer: Optimizer, config: TrainConfig, steps_per_epoch: int) -> LambdaLR:
    """A ``LambdaLR`` following :func:`lr_at` for every parameter group (its own peak rate)."""
    total = schedule_length(config, steps_per_epoch)
    period = config.restart_period
    if period is None:
        period = steps_per_epoch if config.schedule_per == "batch" else 1

    def factor_fn(base: float) -> Callable[[int], float]:
        def factor(t: int) -> float:
            if base == 0:
                return 0.0
            lr = lr_at(
                t,
                base,
                kind=config.scheduler,
                total=total,
                warmup=config.warmup_steps,
                min_lr=config.min_lr,
                restart_period=period,
                restart_mult=config.restart_mult,
            )
            return lr / base

        return factor

    bases = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
    return LambdaLR(optimizer, [factor_fn(b) for b in bases])
