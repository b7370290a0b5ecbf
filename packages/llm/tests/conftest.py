"""Tiny random Llamas and small data for the llm tests."""

from __future__ import annotations

import pytest
import torch
from adapterlab.llm.models.llm import load_llm


@pytest.fixture
def tiny():
    """A fresh tiny Llama (4 layers, hidden 32) and its character tokenizer."""
    torch.manual_seed(0)
    return load_llm("tiny-llama")


@pytest.fixture
def tiny_b():
    """A second, different tiny Llama (3 layers, hidden 48): Trans-LoRA's target."""
    return load_llm("tiny-llama-b")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny models run fastest on one thread (and do not fight other jobs for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
