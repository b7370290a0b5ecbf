"""Shared helpers for the engine tests (tiny CPU runs on the embedded toy task)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


def adapter_tensors(directory: Path) -> dict[str, torch.Tensor]:
    """The tensors save_adapter wrote into ``directory``."""
    return load_file(str(Path(directory) / "adapter.safetensors"))


@pytest.fixture
def read_adapter():
    return adapter_tensors
