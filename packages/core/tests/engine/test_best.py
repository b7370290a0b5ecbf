"""The best checkpoint is kept by the metric and the test split is scored with it (not with the
last weights, the PETL-AST bug); early stopping counts evaluations without improvement."""

from __future__ import annotations

import json

import pytest
import torch
from adapterlab.core import get_adapter_parameters, load_adapter
from adapterlab.core.engine import TrainConfig, Trainer
from adapterlab.core.engine.toy import ToyClusters, ToyNet, build_toy_model, toy_loss

SCORES = [0.2, 0.9, 0.5, 0.4, 0.3, 0.1, 0.1, 0.1]


def _weight_sum(model) -> torch.Tensor:
    return sum(p.detach().double().sum() for p in get_adapter_parameters(model))


def _eval_step(model, batch):
    return {"wsum": _weight_sum(model).expand(len(batch["y"])).clone()}


class ScriptedMetric:
    """Evaluation scores follow SCORES; ``wsum`` reports the weights that were evaluated."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, outputs):
        score = SCORES[min(self.calls, len(SCORES) - 1)]
        self.calls += 1
        return {"score": score, "wsum": outputs["wsum"][0].item()}


def _fit(tmp_path, **kw):
    cfg = TrainConfig(
        output_dir=str(tmp_path / "run"), epochs=6, batch_size=8, lr=5e-2, metric="score",
        eval_every_steps=2, progress=False, plots=False, **kw,
    )  # fmt: skip
    trainer = Trainer(
        build_toy_model(seed=2),
        cfg,
        train_data=ToyClusters(16),
        eval_data=ToyClusters(8, split_seed=1),
        test_data=ToyClusters(8, split_seed=2),
        loss_fn=toy_loss,
        eval_step=_eval_step,
        metric_fn=ScriptedMetric(),
    )
    return trainer, trainer.fit()


@pytest.mark.timeout(60)
def test_test_metrics_come_from_the_best_checkpoint(tmp_path):
    trainer, result = _fit(tmp_path)
    assert result.best_step == 4 and result.best_metric == 0.9  # second evaluation
    assert result.global_step == 12
    best = ToyNet()
    load_adapter(best, tmp_path / "run" / "best")
    last = ToyNet()
    load_adapter(last, tmp_path / "run" / "checkpoints" / "step_00000012" / "adapter")
    assert result.test_metrics["wsum"] == pytest.approx(
        _weight_sum(best).item(), rel=1e-6
    )  # fp32 outputs
    assert abs(_weight_sum(last) - _weight_sum(best)) > 1e-3  # the last weights differ
    assert json.loads((tmp_path / "run" / "best" / "best.json").read_text())["step"] == 4
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["test_from"] == "best" and summary["best_step"] == 4


@pytest.mark.timeout(60)
def test_early_stopping_after_patience_evaluations(tmp_path):
    _, result = _fit(tmp_path, early_stopping_patience=3)
    # evaluations at steps 2,4,6,8,10: best at 4, three worse ones (6, 8, 10) -> stop at 10
    assert result.stopped_early and result.global_step == 10 and result.best_step == 4
