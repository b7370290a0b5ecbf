"""The embedded speech demo: Debian fetch errors, the Speech Commands writer, the pre-training stage."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from adapterlab.audio.loaders import load_speech_commands
from adapterlab.audio.loaders.debian import DebianFetchError, fetch_debian_package
from adapterlab.audio.loaders.spoken_words import (
    DIGITS,
    augment,
    embedded_speech,
    find_recordings,
    pitch_shift,
    trim_silence,
)
from adapterlab.audio.model import load_ast
from adapterlab.audio.pretrain import PretrainSettings, pretrain_backbone

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def test_fetch_without_apt_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get, no dpkg-deb
    with pytest.raises(DebianFetchError, match=r"`apt-get` is not installed.*--data"):
        fetch_debian_package("asterisk-core-sounds-en-wav", tmp_path / "cache")
    assert not (tmp_path / "cache" / "asterisk-core-sounds-en-wav").exists()


def test_augment_trims_shifts_and_keeps_length():
    rng = np.random.default_rng(0)
    word = torch.sin(torch.arange(8000) / 5.0)
    padded = torch.cat([torch.zeros(3000), word, torch.zeros(3000)])
    assert trim_silence(padded).numel() == pytest.approx(8000, abs=10)
    clips = [augment(word, rng, [word[:2000]]) for _ in range(3)]
    assert all(c.shape == (16000,) and c.abs().max() <= 0.9 for c in clips)
    assert not torch.allclose(clips[0], clips[1])
    # pitch shift by an octave doubles the dominant frequency and keeps the duration
    tone = torch.sin(2 * torch.pi * 400 * torch.arange(16000) / 16000)
    up = pitch_shift(tone, 2.0)
    assert abs(up.numel() - 16000) < 400
    peak = torch.fft.rfft(up[2000:14000]).abs().argmax().item() * 16000 / 12000
    assert peak == pytest.approx(800, rel=0.05)


def test_embedded_speech_writes_two_speech_commands_folders(tmp_path, monkeypatch, voice_dir):
    import adapterlab.audio.loaders.spoken_words as sw

    monkeypatch.setattr(sw, "PRETRAIN_COUNTS", (3, 1, 1))
    monkeypatch.setattr(sw, "TRANSFER_COUNTS", (2, 1, 1))
    voice = voice_dir
    words, digits = find_recordings(voice)
    assert sorted(words) == ["letters_a", "letters_b", "phonetic_alpha_p"]  # 9_p says a digit
    emb = embedded_speech(tmp_path / "out", voice_dir=voice, progress_bar=False)
    pre, tr = load_speech_commands(emb.pretrain), load_speech_commands(emb.transfer)
    assert pre.classes == sorted(words) and (len(pre.train), len(pre.val), len(pre.test)) == (
        9,
        3,
        3,
    )
    assert tr.classes == sorted(DIGITS) and (len(tr.train), len(tr.val), len(tr.test)) == (
        20,
        10,
        10,
    )
    info = sf.info(tr.test[0].path)
    assert info.samplerate == 16000 and info.frames == 16000
    mtime = tr.test[0].path.stat().st_mtime_ns
    embedded_speech(tmp_path / "out", voice_dir=voice, progress_bar=False)  # reused, not rewritten
    assert tr.test[0].path.stat().st_mtime_ns == mtime


def test_pretraining_trains_the_whole_backbone_and_is_reused(tmp_path, monkeypatch, voice_dir):
    import adapterlab.audio.loaders.spoken_words as sw

    monkeypatch.setattr(sw, "PRETRAIN_COUNTS", (6, 2, 2))
    monkeypatch.setattr(sw, "TRANSFER_COUNTS", (1, 1, 1))
    emb = embedded_speech(tmp_path / "out", voice_dir=voice_dir, progress_bar=False)
    settings = PretrainSettings(frames=32, epochs=4, batch_size=6, lr=3e-3)
    ckpt = pretrain_backbone(emb.pretrain, tmp_path / "pre", settings, progress=False)
    trained = load_ast(ckpt)
    init = load_ast(tmp_path / "pre-init", max_length=32)
    changed = [
        n
        for (n, p), q in zip(trained.named_parameters(), init.parameters(), strict=True)
        if not torch.equal(p, q)
    ]
    assert len(changed) == len(list(init.parameters()))  # full training: every tensor moved
    report = (ckpt / "pretrain.json").read_text()
    assert "val_accuracy" in report
    mtime = (ckpt / "model.safetensors").stat().st_mtime_ns
    assert pretrain_backbone(emb.pretrain, tmp_path / "pre", settings, progress=False) == ckpt
    assert (ckpt / "model.safetensors").stat().st_mtime_ns == mtime
