"""Checkpoint state files (JSON + safetensors, no pickle) and checkpoint rotation."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from adapterlab.core.engine import TrainConfig, Trainer, list_checkpoints
from adapterlab.core.engine.seeding import capture_rng, restore_rng
from adapterlab.core.engine.statefile import load_state, save_state
from adapterlab.core.engine.toy import ToyClusters, build_toy_model, toy_loss


def test_state_round_trip_is_exact(tmp_path):
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.randn(3, 2))], lr=0.1, betas=(0.8, 0.95))
    opt.param_groups[0]["params"][0].grad = torch.randn(3, 2)
    opt.step()
    state = {"optimizer": opt.state_dict(), "rng": capture_rng(), "nested": {1: (2.5, None, "x")}}
    save_state(state, tmp_path / "s")
    back = load_state(tmp_path / "s")
    assert back["nested"] == {1: (2.5, None, "x")}
    assert back["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    for key, value in state["optimizer"]["state"][0].items():
        assert torch.equal(back["optimizer"]["state"][0][key], value)
    expected = (random.random(), np.random.rand(), torch.rand(3))
    restore_rng(back["rng"])
    got = (random.random(), np.random.rand(), torch.rand(3))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


def test_unreadable_state_names_the_file(tmp_path):
    save_state({"a": torch.ones(2)}, tmp_path / "s")
    (tmp_path / "s.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="s.safetensors"):
        load_state(tmp_path / "s")


@pytest.mark.timeout(60)
def test_keeps_last_k_and_leaves_no_temporaries(tmp_path):
    cfg = TrainConfig(
        output_dir=str(tmp_path / "run"), epochs=1, batch_size=4, save_every_steps=1, keep_last=3,
        progress=False, plots=False,
    )  # fmt: skip
    Trainer(build_toy_model(), cfg, train_data=ToyClusters(24), loss_fn=toy_loss).fit()
    names = [p.name for p in list_checkpoints(tmp_path / "run")]
    assert names == ["step_00000004", "step_00000005", "step_00000006"]
    hidden = [p.name for p in (tmp_path / "run").rglob(".*")]
    assert hidden == []
