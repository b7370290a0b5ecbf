"""Failure behaviour: bad data items (stop naming index and source, or skip and count), NaN/inf
loss (stop with a clear message, last good checkpoint intact and loadable), SIGTERM."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from adapterlab.core import adapter_state_dict, load_adapter
from adapterlab.core.engine import (
    BadSampleError,
    NonFiniteLossError,
    TrainConfig,
    Trainer,
    TrainingInterrupted,
    list_checkpoints,
)
from adapterlab.core.engine.toy import ToyClusters, ToyNet, build_toy_model, toy_eval_step, toy_loss


def _config(out, **kw) -> TrainConfig:
    base = dict(
        output_dir=str(out),
        epochs=2,
        batch_size=8,
        lr=1e-2,
        progress=False,
        plots=False,
        log_every=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def _trainer(out, train, eval_data=None, loss_fn=toy_loss, **kw) -> Trainer:
    return Trainer(
        build_toy_model(seed=0),
        _config(out, **kw),
        train_data=train,
        eval_data=eval_data,
        loss_fn=loss_fn,
        eval_step=toy_eval_step,
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("num_workers", [0, 1])
def test_bad_item_stops_with_index_and_source(tmp_path, num_workers):
    train = ToyClusters(32, bad=(13,), name="clips")
    with pytest.raises(BadSampleError) as info:
        _trainer(tmp_path / "run", train, num_workers=num_workers).fit()
    message = str(info.value)
    assert "train sample 13" in message
    assert "clips/record_00013.pt" in message  # the dataset's describe(13)
    assert "corrupt record 13" in message  # the original error
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["status"] == "failed"


@pytest.mark.timeout(60)
def test_skip_bad_samples_skips_and_counts(tmp_path):
    train = ToyClusters(32, bad=(3, 17))
    val = ToyClusters(16, split_seed=1, bad=(5,))
    result = _trainer(tmp_path / "run", train, val, skip_bad_samples=True).fit()
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert result.skipped_samples == 3 == summary["skipped_samples"]
    assert summary["skipped_samples_by_split"] == {"train": 2, "eval": 1, "test": 0}
    assert summary["skipped_indices"] == {"train": [3, 17], "eval": [5]}
    assert summary["skipped_sample_visits"]["train"] == 4  # 2 items x 2 epochs
    assert summary["final"]["num_samples"] == 15  # the bad eval item is left out of the metrics
    assert result.global_step == 8


@pytest.mark.timeout(60)
def test_whole_batch_of_bad_items_is_skipped(tmp_path):
    train = ToyClusters(16, bad=tuple(range(8)))  # with shuffle off, batch 0 is all bad
    result = _trainer(tmp_path / "run", train, skip_bad_samples=True, shuffle=False, epochs=1).fit()
    assert result.skipped_samples == 8 and result.global_step == 2


@pytest.mark.timeout(60)
@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path, bad_value):
    calls = {"n": 0}

    def loss_fn(model, batch):
        calls["n"] += 1
        out = toy_loss(model, batch)
        if calls["n"] == 7:  # epoch 1 (the epoch-0 checkpoint is step 4)
            out["loss"] = out["loss"] * bad_value
        return out

    run = tmp_path / "run"
    trainer = _trainer(run, ToyClusters(32), loss_fn=loss_fn)
    with pytest.raises(NonFiniteLossError) as info:
        trainer.fit()
    message = str(info.value)
    assert f"training loss is {bad_value}" in message and "step 7" in message
    assert "step_00000004" in message  # points at the last good checkpoint
    # nothing after the last good checkpoint was written, and it loads into a fresh model
    assert [p.name for p in list_checkpoints(run)] == ["step_00000004"]
    fresh = ToyNet()
    load_adapter(fresh, run / "checkpoints" / "step_00000004" / "adapter")
    weights = adapter_state_dict(fresh)
    assert all(torch.isfinite(w).all() for w in weights.values())
    # the bad update was never applied: the live weights are finite too
    assert all(
        torch.isfinite(w).all() for w in adapter_state_dict(trainer.unwrapped_model).values()
    )
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["status"] == "failed: non-finite loss" and summary["global_step"] == 6


@pytest.mark.timeout(60)
def test_sigterm_writes_checkpoint_then_stops(tmp_path):
    calls = {"n": 0}

    def loss_fn(model, batch):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return toy_loss(model, batch)

    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted) as info:
        _trainer(run, ToyClusters(64), loss_fn=loss_fn).fit()
    assert info.value.signum == signal.SIGTERM and info.value.exit_code == 143
    assert [p.name for p in list_checkpoints(run)] == ["step_00000003"]
    state = json.loads((run / "checkpoints" / "step_00000003" / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and state["batch_in_epoch"] == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


@pytest.mark.timeout(60)
def test_existing_run_needs_resume_or_overwrite(tmp_path):
    run = tmp_path / "run"
    _trainer(run, ToyClusters(16), epochs=1).fit()
    with pytest.raises(FileExistsError, match="resume=True"):
        _trainer(run, ToyClusters(16), epochs=1).fit()
    result = _trainer(run, ToyClusters(16), epochs=1, overwrite=True).fit()
    assert result.global_step == 2


def test_trainable_params_outside_the_adapter_are_refused(tmp_path):
    model = build_toy_model()
    model.head.weight.requires_grad_(True)
    with pytest.raises(ValueError, match="head.weight"):
        Trainer(model, _config(tmp_path), train_data=ToyClusters(16), loss_fn=toy_loss)
    with pytest.raises(ValueError, match="no adapter named 'other'"):
        Trainer(
            build_toy_model(),
            _config(tmp_path),
            train_data=ToyClusters(16),
            loss_fn=toy_loss,
            adapter_name="other",
        )
