"""Learning: a tiny frozen network whose only trainable part is a bottleneck adapter learns the
embedded cluster task, and the run directory is complete."""

from __future__ import annotations

import json

import pytest
import yaml
from adapterlab.core.engine import TrainConfig, Trainer
from adapterlab.core.engine.toy import ToyClusters, build_toy_model, toy_eval_step, toy_loss


@pytest.mark.timeout(120)
def test_bottleneck_adapter_learns_toy_task(tmp_path):
    run = tmp_path / "run"
    model = build_toy_model(seed=0)
    cfg = TrainConfig(
        output_dir=str(run), epochs=4, batch_size=16, lr=2e-2, scheduler="cosine", log_every=2,
        progress=False, seed=1,
    )  # fmt: skip
    trainer = Trainer(
        model,
        cfg,
        train_data=ToyClusters(256),
        eval_data=ToyClusters(128, split_seed=1),
        test_data=ToyClusters(128, split_seed=2),
        loss_fn=toy_loss,
        eval_step=toy_eval_step,
        run_config={"task": "toy-clusters", "classes": 4},
    )
    before = trainer.evaluate(ToyClusters(128, split_seed=2))
    result = trainer.fit()

    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["split"] == "train"]
    assert losses[-1] < 0.5 * losses[0]  # training loss falls by at least 2x
    assert result.test_metrics["loss"] < 0.5 * before["loss"]
    assert result.test_metrics["accuracy"] >= 0.85 > before["accuracy"] + 0.3  # chance: 0.25

    # a complete run directory
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "metrics.json",
        "curves.png",
        "best/adapter.safetensors",
    ):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert len(list((run / "checkpoints").glob("step_*"))) == cfg.keep_last
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["task"] == "toy-clusters" and config["train"]["lr"] == 2e-2
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["test"]["accuracy"] == result.test_metrics["accuracy"]
    assert summary["skipped_samples"] == 0 and summary["test_from"] == "best"
