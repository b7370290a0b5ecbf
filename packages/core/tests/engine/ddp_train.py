"""Tiny training run used by test_distributed.py: in-process (1 process) and under torchrun (2).

Usage: python -m torch.distributed.run --standalone --nproc_per_node 2 ddp_train.py OUT 2
"""

from __future__ import annotations

import sys

from accelerate import PartialState
from adapterlab.core.engine import TrainConfig, Trainer, TrainResult
from adapterlab.core.engine.toy import ToyClusters, build_toy_model, toy_eval_step, toy_loss


def main(out: str, expected_world: int) -> TrainResult:
    model = build_toy_model(seed=5, dropout=0.0)
    config = TrainConfig(
        output_dir=out,
        epochs=2,
        batch_size=8,  # global: 4 per process on 2 processes
        grad_accum=2,
        lr=3e-2,
        scheduler="cosine",
        max_grad_norm=0.5,
        eval_every_steps=3,
        seed=11,
        progress=False,
        plots=False,
    )
    trainer = Trainer(
        model,
        config,
        train_data=ToyClusters(64, seed=2),
        eval_data=ToyClusters(30, seed=2, split_seed=1),
        test_data=ToyClusters(27, seed=2, split_seed=2),
        loss_fn=toy_loss,
        eval_step=toy_eval_step,
    )
    if trainer.accelerator.num_processes != expected_world:
        raise SystemExit(
            f"expected {expected_world} processes, got {trainer.accelerator.num_processes}"
        )
    return trainer.fit()


if __name__ == "__main__":
    try:
        main(sys.argv[1], int(sys.argv[2]))
    finally:
        # Tear gloo down before interpreter exit: leaving the process group to static destructors
        # occasionally aborts a rank with "terminate called without an active exception".
        PartialState().destroy_process_group()
