"""One seed for Python, NumPy and torch; per-sample seeds for data-loader workers; RNG snapshots."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["capture_rng", "derive_seed", "restore_rng", "seed_everything", "seed_sample"]


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part (NumPy ``SeedSequence``; no hash collisions of sums)."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_sample(seed: int, epoch: int, index: int) -> None:
    """Seed a data-loader worker for one sample, so its augmentation depends only on
    ``(seed, epoch, index)``: independent of worker count, process count and resume point."""
    seed_everything(derive_seed(seed, epoch, index, 0x5EED))


def capture_rng() -> dict[str, Any]:
    """The state of every global generator (Python, NumPy, torch CPU and CUDA)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(state["numpy"]))
    torch.set_rng_state(state["torch"].to("cpu", torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.to("cpu", torch.uint8) for s in state["cuda"]])
