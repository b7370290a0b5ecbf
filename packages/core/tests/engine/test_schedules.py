"""Learning-rate schedules equal their formulas, per batch and per epoch, per parameter group."""

from __future__ import annotations

import json
import math

import pytest
import torch
from adapterlab.core import get_adapter_parameters
from adapterlab.core.engine import TrainConfig, Trainer, build_scheduler, lr_at
from adapterlab.core.engine.toy import ToyClusters, build_toy_model, toy_loss


def _run_schedule(
    config: TrainConfig, steps_per_epoch: int, steps: int, base: float = 1.0
) -> list[float]:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    sched = build_scheduler(opt, config, steps_per_epoch)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_cosine_with_warmup_formula():
    cfg = TrainConfig(scheduler="cosine", warmup_steps=3, min_lr=0.1, epochs=2, progress=False)
    lrs = _run_schedule(cfg, steps_per_epoch=6, steps=12, base=2.0)
    total, warm = 12, 3
    for t, lr in enumerate(lrs):
        if t < warm:
            expected = 2.0 * (t + 1) / warm
        else:
            expected = 0.1 + (2.0 - 0.1) * 0.5 * (
                1 + math.cos(math.pi * (t - warm) / (total - warm))
            )
        assert lr == pytest.approx(expected, rel=1e-12), t
    assert lrs[warm - 1] == pytest.approx(2.0) and lrs[-1] > 0.1


def test_linear_warmup_formula():
    cfg = TrainConfig(scheduler="linear_warmup", warmup_steps=4, epochs=1, progress=False)
    lrs = _run_schedule(cfg, steps_per_epoch=10, steps=10)
    expected = [(t + 1) / 4 if t < 4 else (10 - t) / 6 for t in range(10)]
    assert lrs == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("mult", [1, 2])
def test_cosine_restarts_matches_torch_sgdr(mult):
    cfg = TrainConfig(
        scheduler="cosine_restarts", restart_period=3, restart_mult=mult, min_lr=0.05, epochs=5
    )
    lrs = _run_schedule(cfg, steps_per_epoch=6, steps=30, base=0.5)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.5)
    ref = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=3, T_mult=mult, eta_min=0.05
    )
    expected = []
    for _ in range(30):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert lrs == pytest.approx(expected, rel=1e-9)


def test_lr_at_none_is_constant_after_warmup():
    assert [lr_at(t, 1.0, kind="none", total=5, warmup=2) for t in range(5)] == [
        0.5,
        1.0,
        1.0,
        1.0,
        1.0,
    ]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("per", ["batch", "epoch"])
def test_trainer_applies_schedule_per_batch_or_epoch_and_per_group(tmp_path, per):
    model = build_toy_model()
    params = get_adapter_parameters(model)
    downs = [p for p in params if p.dim() == 2 and p.shape[0] < p.shape[1]]  # down.weight [8, 16]
    rest = [p for p in params if all(p is not d for d in downs)]
    groups = [{"params": downs, "lr": 0.02}, {"params": rest, "lr": 0.005}]
    cfg = TrainConfig(
        output_dir=str(tmp_path / per), epochs=3, batch_size=8, grad_accum=2, scheduler="cosine",
        warmup_steps=1, schedule_per=per, log_every=1, progress=False, plots=False, shuffle=False,
    )  # fmt: skip
    Trainer(model, cfg, train_data=ToyClusters(32), loss_fn=toy_loss, param_groups=groups).fit()
    records = [json.loads(x) for x in (tmp_path / per / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 7))  # 2 optimiser steps per epoch
    for r in train:
        t = r["step"] - 1 if per == "batch" else r["epoch"]
        total = 6 if per == "batch" else 3
        for key, base in (("lr", 0.02), ("lr_1", 0.005)):
            assert r[key] == pytest.approx(
                lr_at(t, base, kind="cosine", total=total, warmup=1), rel=1e-12
            )
