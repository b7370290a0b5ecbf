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
A failed write (a full disk names the file: :class:`DiskFullError`) removes its temporary folder;
a killed process leaves one behind, and :func:`clean_run_leftovers` removes it at the next start.
:func:`verify_checkpoint` reads every file of a checkpoint without touching the model, so a
resume can skip a corrupt newest checkpoint for the newest intact one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from .. import load_adapter, save_adapter
from .atomic import clean_temp_leftovers, explain_disk_full
from .statefile import load_state, save_state

__all__ = [
    "clean_run_leftovers",
    "list_checkpoints",
    "load_checkpoint",
    "replace_dir",
    "restore_best",
    "save_best",
    "save_checkpoint",
    "set_aside",
    "step_dirs",
    "verify_checkpoint",
]

_STEP_DIR = re.compile(r"^step_(\d+)$")


def step_dirs(run_dir: Path) -> list[Path]:
    """Every ``checkpoints/step_*`` folder of a run, complete or not, oldest first."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run (those with a trainer state), oldest first."""
    return [p for p in step_dirs(run_dir) if (p / "trainer_state.json").is_file()]


def replace_dir(src: Path, dst: Path) -> None:
    """Move directory ``src`` to ``dst``, replacing ``dst`` (old copy renamed away first; a kill
    between the two renames leaves it as ``.<dst>.old-<pid>``, which :func:`clean_run_leftovers`
    puts back)."""
    old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
    if dst.exists():
        os.replace(dst, old)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)


def clean_run_leftovers(run_dir: Path) -> list[Path]:
    """Remove what interrupted writes left in a run directory (``.best.tmp*``,
    ``checkpoints/.tmp_step_*``, ``.*.old-*``, ``.metrics.jsonl.tmp*``, ...); returns them."""
    removed = clean_temp_leftovers(run_dir)
    root = run_dir / "checkpoints"
    removed += clean_temp_leftovers(root)
    if root.is_dir():
        for tmp in sorted(root.glob(".tmp_step_*")):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


def set_aside(checkpoint: Path) -> Path:
    """Rename an unusable checkpoint to ``step_XXXXXXXX.corrupt`` (kept for inspection, never
    resumed from nor rotated away); returns the new path."""
    target = checkpoint.with_name(checkpoint.name + ".corrupt")
    n = 1
    while target.exists():
        n += 1
        target = checkpoint.with_name(f"{checkpoint.name}.corrupt{n}")
    os.replace(checkpoint, target)
    return target


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} is missing") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from err


def _check_safetensors(path: Path) -> None:
    if not path.is_file():
        raise ValueError(f"{path} is missing")
    try:
        load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path} is truncated or corrupt ({err})") from err


def _check_trainer_state(path: Path, checkpoint: Path) -> dict[str, Any]:
    state = _read_json(path)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a trainer state")
    for key in ("global_step", "epoch", "batch_in_epoch"):
        value = state.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{path}: {key!r} is {value!r}, not a step count")
    m = _STEP_DIR.match(checkpoint.name)
    if m and int(m.group(1)) != state["global_step"]:
        raise ValueError(f"{path} is for step {state['global_step']}, not {checkpoint.name}")
    return state


def _check_adapter_dir(adapter: Path) -> None:
    if not adapter.is_dir():
        raise ValueError(f"{adapter} is missing")
    for config in sorted(adapter.glob("*.json")):
        _read_json(config)
    weights = sorted(adapter.glob("*.safetensors"))
    if not weights:
        raise ValueError(f"{adapter} holds no .safetensors weights")
    for path in weights:
        _check_safetensors(path)


def verify_checkpoint(checkpoint: Path, num_processes: int = 1) -> str | None:
    """None when every file of ``checkpoint`` reads back (trainer state, adapter, its copy of
    ``best/``, optimiser state and the per-process states a resume on ``num_processes`` needs),
    else the first problem."""
    try:
        state = _check_trainer_state(checkpoint / "trainer_state.json", checkpoint)
        _check_adapter_dir(checkpoint / "adapter")
        if (checkpoint / "best").exists():  # the copy of <run>/best a resume restores
            _check_adapter_dir(checkpoint / "best")
        saved_world = int(state.get("world_size", 1))
        ranks = {min(r, saved_world - 1) for r in range(num_processes)}
        for stem in ["optim", *(f"rank{r}" for r in sorted(ranks))]:
            _read_json(checkpoint / f"{stem}.json")
            _check_safetensors(checkpoint / f"{stem}.safetensors")
    except ValueError as err:
        return str(err)
    return None


def save_best(model: nn.Module, run_dir: Path, adapter_name: str, info: dict[str, Any]) -> Path:
    """Write the current adapter as ``<run>/best`` with ``best.json`` (step, metric)."""
    tmp = run_dir / f".best.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with explain_disk_full(tmp):
            save_adapter(model, tmp, adapter_name)
            (tmp / "best.json").write_text(json.dumps(info, indent=2) + "\n")
        replace_dir(tmp, run_dir / "best")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return run_dir / "best"


def restore_best(checkpoint: Path, run_dir: Path) -> None:
    """Make ``<run>/best`` equal to the copy stored in ``checkpoint`` (or remove it)."""
    stored = checkpoint / "best"
    best = run_dir / "best"
    if stored.is_dir():
        tmp = run_dir / f".best.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            with explain_disk_full(best):
                shutil.copytree(stored, tmp)
            replace_dir(tmp, best)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
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
    try:
        save_state(rank_state, tmp / f"rank{accelerator.process_index}")
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            with explain_disk_full(tmp / "adapter"):
                save_adapter(model, tmp / "adapter", adapter_name)
            save_state(optim_state, tmp / "optim")
            if (run_dir / "best").is_dir():
                with explain_disk_full(tmp / "best"):
                    shutil.copytree(run_dir / "best", tmp / "best")
            with explain_disk_full(tmp / "trainer_state.json"):
                (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=2) + "\n")
            replace_dir(tmp, final)
            for old in list_checkpoints(run_dir)[:-keep_last]:
                shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed write leaves nothing half-written
        raise
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
