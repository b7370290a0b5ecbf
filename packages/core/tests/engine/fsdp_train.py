"""Tiny FSDP runs used by test_distributed.py (torchrun, 2 processes, gloo on CPU).

Usage: python -m torch.distributed.run --standalone --nproc_per_node 2 fsdp_train.py OUT
Writes OUT/full (8 steps in one go), OUT/at4 (stopped after 4 steps) and OUT/resumed (a copy of
at4 resumed to 8 steps), each sharded with FSDP2 over the two processes.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from accelerate import PartialState
from adapterlab.core.engine import TrainConfig, Trainer, TrainResult
from adapterlab.core.engine.toy import ToyClusters, build_toy_model, toy_eval_step, toy_loss


def run(out: str | Path, max_steps: int, *, fsdp: bool, resume: bool = False) -> TrainResult:
    model = build_toy_model(seed=5, dropout=0.0)
    config = TrainConfig(
        output_dir=str(out),
        max_steps=max_steps,
        batch_size=8,  # global: 4 per process on 2 processes
        grad_accum=2,
        lr=3e-2,
        max_grad_norm=0.5,
        eval_every_steps=3,
        seed=11,
        fsdp=fsdp,
        resume=resume,
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
    if fsdp and not trainer._fsdp:
        raise SystemExit("FSDP was not switched on")
    result = trainer.fit()
    if fsdp:  # frozen weights were sharded, trainable ones stayed plain tensors
        from torch.distributed.fsdp import FSDPModule
        from torch.distributed.tensor import DTensor

        model.reshard()  # the root keeps its weights gathered after a forward pass
        assert isinstance(model, FSDPModule)
        kinds = {(p.requires_grad, isinstance(p, DTensor)) for p in model.parameters()}
        if kinds != {(False, True), (True, False)}:
            raise SystemExit(f"unexpected FSDP parameters (requires_grad, DTensor): {kinds}")
    return result


def main(out: str) -> None:
    root = Path(out)
    run(root / "full", 8, fsdp=True)
    run(root / "at4", 4, fsdp=True)
    if PartialState().is_main_process:
        shutil.copytree(root / "at4", root / "resumed")
    torch.distributed.barrier()
    run(root / "resumed", 8, fsdp=True, resume=True)


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    finally:
        PartialState().destroy_process_group()  # see ddp_train.py
