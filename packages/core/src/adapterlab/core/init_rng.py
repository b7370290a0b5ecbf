"""Adapter initialisation that neither reads nor moves the global random streams.

``add_adapter`` builds every adapter inside :func:`adapter_init_rng`: the global generators
(torch CPU, torch CUDA where initialised, NumPy, Python ``random``) are saved, seeded from
``(seed, adapter name)``, used by the method's own init code (PEFT's LoRA init included) and
restored. So an adapter's initial weights are the same whether or not other adapters were added
before it, and adding an adapter does not shift any later random draw (head init, data order,
dropout masks).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["adapter_init_rng", "adapter_init_seed"]


def adapter_init_seed(seed: int, *parts: str) -> int:
    """A 63-bit seed from ``seed`` and names (SHA-256; stable across processes and runs, unlike
    Python's salted ``hash``)."""
    text = "\x00".join([str(int(seed)), *parts]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1


@contextlib.contextmanager
def adapter_init_rng(seed: int | None, name: str) -> Iterator[int]:
    """Run the block with every global generator seeded from ``(seed, name)`` and restore them
    all afterwards. ``seed=None`` uses ``torch.initial_seed()`` (the last ``torch.manual_seed``;
    reading it draws nothing). Yields the derived seed."""
    base = torch.initial_seed() if seed is None else int(seed)
    derived = adapter_init_seed(base, name)
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    devices = list(range(torch.cuda.device_count())) if cuda else []
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=devices):
            torch.default_generator.manual_seed(derived)
            if cuda:  # only when initialised: a lazy seed would change CUDA's stream later
                torch.cuda.manual_seed_all(derived)
            random.seed(derived)
            np.random.seed(derived % 2**32)
            yield derived
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
