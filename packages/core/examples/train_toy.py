"""End-to-end example of the adapterlab training engine on the embedded toy task.

A frozen random MLP gets a Pfeiffer bottleneck adapter (the only trainable part, head included
in the frozen part) and learns to classify Gaussian clusters. The run leaves a complete run
directory: config.yaml, metrics.jsonl, metrics.json, TensorBoard events, curves.png,
checkpoints/ and best/.

    uv run --all-packages python packages/core/examples/train_toy.py --help
    uv run --all-packages python packages/core/examples/train_toy.py train.output_dir=runs/toy
    uv run --all-packages python packages/core/examples/train_toy.py --config runs/toy/config.yaml \\
        train.resume=true train.epochs=12          # continue the run
    python -m torch.distributed.run --standalone --nproc_per_node 2 \\
        packages/core/examples/train_toy.py train.output_dir=runs/toy2   # two processes
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from dataclasses import dataclass, field

from accelerate import PartialState
from adapterlab.core import add_adapter, get_config, trainable_summary
from adapterlab.core.engine import (
    CheckpointError,
    DiskFullError,
    TrainConfig,
    Trainer,
    TrainingInterrupted,
    parse_config,
    seed_everything,
)
from adapterlab.core.engine.toy import ToyClusters, ToyNet, toy_eval_step, toy_loss


def _default_train() -> TrainConfig:
    return TrainConfig(
        output_dir="runs/toy",
        epochs=8,
        batch_size=16,
        lr=2e-2,
        scheduler="cosine",
        warmup_steps=4,
        log_every=4,
    )


@dataclass
class ToyRun:
    """Train a bottleneck adapter on the embedded toy cluster task."""

    train_samples: int = 512
    """Number of training points."""
    eval_samples: int = 256
    """Number of validation (and test) points."""
    bottleneck_dim: int = 8
    """Width of the adapter bottleneck."""
    model_seed: int = 0
    """Seed of the frozen random backbone."""
    train: TrainConfig = field(default_factory=_default_train)
    """Engine settings (adapterlab.core.engine.TrainConfig)."""


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = parse_config(ToyRun, argv, prog="train_toy.py")
    seed_everything(cfg.model_seed)
    model = ToyNet()
    add_adapter(
        model,
        get_config("pfeiffer", target_modules=ToyNet.targets, bottleneck_dim=cfg.bottleneck_dim),
    )
    print(trainable_summary(model))
    trainer = Trainer(
        model,
        cfg.train,
        train_data=ToyClusters(cfg.train_samples),
        eval_data=ToyClusters(cfg.eval_samples, split_seed=1),
        test_data=ToyClusters(cfg.eval_samples, split_seed=2),
        loss_fn=toy_loss,
        eval_step=toy_eval_step,
        run_config=dataclasses.asdict(cfg),
    )
    try:
        result = trainer.fit()
    except TrainingInterrupted as stop:
        print(stop)
        return stop.exit_code
    except (FileExistsError, CheckpointError, DiskFullError) as err:
        print(f"train_toy.py: error: {err}", file=sys.stderr)
        return 1
    if trainer.accelerator.is_main_process:
        print(f"best eval accuracy {result.best_metric:.3f} at step {result.best_step}")
        print(f"test accuracy (best checkpoint) {result.test_metrics['accuracy']:.3f}")
        print(f"run directory: {result.run_dir}")
    return 0


if __name__ == "__main__":
    try:
        code = main()
    finally:
        PartialState().destroy_process_group()  # clean gloo/NCCL teardown under torchrun
    sys.exit(code)
