"""Resume equals uninterrupted: a run stopped by SIGINT mid-epoch (or by a crash), then resumed,
ends bit-identical to a run that was never stopped."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from adapterlab.core import adapter_state_dict
from adapterlab.core.engine import TrainConfig, Trainer, TrainingInterrupted, list_checkpoints
from adapterlab.core.engine.toy import ToyClusters, build_toy_model, toy_eval_step, toy_loss


class NoisyClusters(ToyClusters):
    """Random augmentation drawn from the global torch RNG (exercises per-sample worker seeds)."""

    def __getitem__(self, index):
        item = super().__getitem__(index)
        return {"x": item["x"] + 0.1 * torch.randn_like(item["x"]), "y": item["y"]}


def _config(out, **kw) -> TrainConfig:
    base = dict(
        output_dir=str(out),
        epochs=3,
        batch_size=8,
        grad_accum=2,
        lr=3e-2,
        scheduler="cosine",
        warmup_steps=2,
        max_grad_norm=1.0,
        eval_every_epochs=1,
        log_every=2,
        seed=7,
        progress=False,
        plots=False,
    )
    base.update(kw)
    return TrainConfig(**base)


def _trainer(out, loss_fn=toy_loss, **kw) -> Trainer:
    model = build_toy_model(seed=3, dropout=0.2)
    return Trainer(
        model,
        _config(out, **kw),
        train_data=NoisyClusters(60, seed=1),
        eval_data=ToyClusters(24, seed=1, split_seed=1),
        loss_fn=loss_fn,
        eval_step=toy_eval_step,
    )


def _eval_records(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if '"eval"' in x]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("num_workers", [0, 1])
def test_sigint_mid_epoch_then_resume_is_bit_identical(tmp_path, num_workers):
    ref = _trainer(tmp_path / "ref", num_workers=num_workers)
    ref_result = ref.fit()
    ref_weights = adapter_state_dict(ref.unwrapped_model)

    calls = {"n": 0}

    def interrupting_loss(model, batch):
        calls["n"] += 1
        if calls["n"] == 11:  # epoch 1, micro-batch 3: inside an accumulation cycle
            os.kill(os.getpid(), signal.SIGINT)
        return toy_loss(model, batch)

    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted) as info:
        _trainer(run, interrupting_loss, num_workers=num_workers).fit()
    assert info.value.signum == signal.SIGINT and info.value.exit_code == 130
    # the checkpoint is written at the next optimiser-step boundary: step 6
    assert [p.name for p in list_checkpoints(run)][-1] == "step_00000006"
    assert json.loads((run / "metrics.json").read_text())["status"] == "interrupted"

    torch.manual_seed(12345)  # a different global RNG state: resume must restore its own
    torch.rand(100)
    resumed = _trainer(run, resume=True, num_workers=num_workers)
    result = resumed.fit()
    weights = adapter_state_dict(resumed.unwrapped_model)

    assert weights.keys() == ref_weights.keys()
    for key in ref_weights:
        assert torch.equal(weights[key], ref_weights[key]), key
    assert result.best_step == ref_result.best_step and result.best_metric == ref_result.best_metric
    assert result.global_step == ref_result.global_step == 12
    # the logs of the resumed run are the uninterrupted run's (records after step 6 replaced)
    assert _eval_records(run) == _eval_records(tmp_path / "ref")


@pytest.mark.timeout(120)
def test_crash_then_resume_from_last_checkpoint_is_bit_identical(tmp_path):
    kw = dict(
        optimizer="sgd",
        lr=0.2,
        scheduler="cosine_restarts",
        restart_period=2,
        schedule_per="epoch",
        shuffle=True,
    )
    ref = _trainer(tmp_path / "ref", **kw)
    ref.fit()
    calls = {"n": 0}

    def crashing_loss(model, batch):
        calls["n"] += 1
        if calls["n"] == 20:  # epoch 2 (checkpoint of epoch 1 exists at step 8)
            raise RuntimeError("simulated crash")
        return toy_loss(model, batch)

    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        _trainer(run, crashing_loss, **kw).fit()
    assert list_checkpoints(run)[-1].name == "step_00000008"
    resumed = _trainer(run, resume=True, **kw)
    resumed.fit()
    a, b = adapter_state_dict(resumed.unwrapped_model), adapter_state_dict(ref.unwrapped_model)
    assert all(torch.equal(a[k], b[k]) for k in b)
