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


@pytest.fixture(scope="session")
def voice_dir(tmp_path_factory):
    """A stand-in for the unpacked asterisk voice folder: 8 kHz 'words' (tones at distinct pitches)."""
    import numpy as np
    import soundfile as sf

    root = tmp_path_factory.mktemp("asterisk") / "voice"
    t = np.arange(int(0.5 * 8000)) / 8000
    words = ("letters/a", "letters/b", "phonetic/alpha_p")
    names = [f"digits/{i}" for i in range(10)] + list(words) + ["phonetic/9_p"]
    for k, name in enumerate(names):
        path = root / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        wave = np.concatenate(
            [np.zeros(800), 0.5 * np.sin(2 * np.pi * (200 + 60 * k) * t), np.zeros(800)]
        )
        sf.write(path, wave.astype(np.float32), 8000)
    return root
