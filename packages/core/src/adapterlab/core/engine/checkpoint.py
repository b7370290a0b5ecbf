"""Checkpoints: adapter-only weights (``adapterlab.core.save_adapter``) plus optimiser,
scheduler, grad-scaler, trainer progress and per-process RNG state, written atomically.

Layout of ``<run>/checkpoints/step_00000120/``::

    adapter/              adapter_config.json + adapter.safetensors (save_adapter)
    trainer_state.json    step, epoch, batch position, best metric, ... and the TrainConfig
    optim.json/.safetensors   optimiser + scheduler (+ grad scaler) state (no pickle)
    rank0.json/.safetensors   RNG state and skipped-sample bookkeeping of process 0 (one per rank)
    best/                 copy of <run>/best at the time (so resume restores it exactly)

The directory is assembled as ``.tmp_step_...`` and renamed into place; only the newest
``keep_last`` are kept. ``<run>/best/`` (the best adapter + ``best.json``) is swapped in by rename.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from torch import nn

from .. import load_adapter, save_adapter
from .statefile import load_state, save_state

__all__ = [
    "list_checkpoints",
    "load_checkpoint",
    "replace_dir",
    "restore_best",
    "save_best",
    "save_checkpoint",
]

_STEP_DIR = re.compile(r"^step_(\d+)$")


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in root.iterdir()
        if (m := _STEP_DIR.match(p.name)) and (p / "trainer_state.json").is_file()
    ]
    return [p for _, p in sorted(found)]


def replace_dir(src: Path, dst: Path) -> None:
    """Move directory ``src`` to ``dst``, replacing ``dst`` (old copy renamed away first)."""
    old = dst.with_name(f".{dst.name}.old{os.getpid()}")
    if dst.exists():
        os.replace(dst, old)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)


def save_best(model: nn.Module, run_dir: Path, adapter_name: str, info: dict[str, Any]) -> Path:
    """Write the current adapter as ``<run>/best`` with ``best.json`` (step, metric)."""
    tmp = run_dir / f".best.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    save_adapter(model, tmp, adapter_name)
    (tmp / "best.json").write_text(json.dumps(info, indent=2) + "\n")
    replace_dir(tmp, run_dir / "best")
    return run_dir / "best"


def restore_best(checkpoint: Path, run_dir: Path) -> None:
    """Make ``<run>/best`` equal to the copy stored in ``checkpoint`` (or remove it)."""
    stored = checkpoint / "best"
    best = run_dir / "best"
    if stored.is_dir():
        tmp = run_dir / f".best.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(stored, tmp)
        replace_dir(tmp, best)
    elif best.exists():
        shutil.rmtree(best)


def save_checkpoint(
    accelerator: Accelerator,
    run_dir: Path,
    step: int,
    *,
    model: nn.Module,
    adapter_name: str,
    optim_state: dict[str, Any],
    trainer_state: dict[str, Any],
    rank_state: dict[str, Any],
    keep_last: int,
) -> Path:
    """Write checkpoint ``step`` (collective: every process calls it) and prune old ones."""
    root = run_dir / "checkpoints"
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp_step_{step:08d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    save_state(rank_state, tmp / f"rank{accelerator.process_index}")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_adapter(model, tmp / "adapter", adapter_name)
        save_state(optim_state, tmp / "optim")
        if (run_dir / "best").is_dir():
            shutil.copytree(run_dir / "best", tmp / "best")
        (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=2) + "\n")
        replace_dir(tmp, final)
        for old in list_checkpoints(run_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(
    accelerator: Accelerator, checkpoint: Path, *, model: nn.Module, adapter_name: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Load the adapter weights into ``model`` (in place) and return
    ``(trainer_state, optim_state, rank_state)``; ``ValueError`` names an unreadable file."""
    state_path = checkpoint / "trainer_state.json"
    try:
        trainer_state = json.loads(state_path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {state_path}: {err}") from err
    load_adapter(model, checkpoint / "adapter", adapter_name, strict=True)
    optim_state = load_state(checkpoint / "optim")
    saved_world = int(trainer_state.get("world_size", 1))
    rank = accelerator.process_index
    if saved_world != accelerator.num_processes:
        rank = min(rank, saved_world - 1)
    rank_state = load_state(checkpoint / f"rank{rank}")
    return trainer_state, optim_state, rank_state
