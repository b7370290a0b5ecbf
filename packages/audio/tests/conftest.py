"""Shared fixtures for adapterlab.audio tests: one thread, a tiny checkpoint, a small synthetic ESC-50."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread_offline(monkeypatch):
    """Each audio test: one torch thread (tiny tensors) and no hub access (fast offline errors)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    """A tiny random AST saved with save_pretrained (1024-frame grid, non-zero position embeddings)."""
    from adapterlab.audio.model import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-ast", seed=0)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A small synthetic ESC-50-format folder: 14 classes x 5 clips (one per fold)."""
    from adapterlab.audio.loaders import synthesize_esc50

    return synthesize_esc50(
        tmp_path_factory.mktemp("synth") / "esc", clips_per_class=5, seed=1, progress=False
    )
