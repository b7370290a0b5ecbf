"""Audio I/O: decoding, mono mixdown, resampling, and clear errors for bad files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from adapterlab.audio.audio_io import AudioFileError, load_audio, write_audio
from adapterlab.audio.features import FbankConfig
from adapterlab.audio.loaders import AudioClipDataset, AudioItem, compute_features


def _tone(sr: int, seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * math.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_roundtrip_resample_and_pitch(tmp_path, suffix):
    x = _tone(44100, 0.5, 1000.0)
    path = tmp_path / f"a{suffix}"
    write_audio(path, x, 44100)
    y = load_audio(path)  # -> 16 kHz mono
    assert y.dtype == torch.float32 and y.dim() == 1
    assert abs(len(y) - 8000) <= 1
    spec = torch.fft.rfft(y * torch.hann_window(len(y)))
    peak_hz = spec.abs().argmax().item() * 16000 / len(y)
    assert abs(peak_hz - 1000.0) < 5  # resampling keeps the pitch
    same = load_audio(path, sample_rate=44100)
    np.testing.assert_allclose(same.numpy(), x, atol=1e-4)  # 16-bit PCM round trip


def test_stereo_is_mixed_down(tmp_path):
    left, right = _tone(16000, 0.2, 440.0), _tone(16000, 0.2, 880.0) * 0.5
    sf.write(tmp_path / "st.wav", np.stack([left, right], 1), 16000, subtype="FLOAT")
    y = load_audio(tmp_path / "st.wav")
    np.testing.assert_allclose(y.numpy(), (left + right) / 2, atol=1e-6)


def _bad_files(tmp_path):
    good = tmp_path / "good.wav"
    write_audio(good, _tone(16000, 0.5, 300.0), 16000)
    raw = good.read_bytes()
    files = {
        "missing.wav": None,
        "empty.wav": b"",
        "truncated.wav": raw[: len(raw) // 2],
        "header_only.wav": raw[:30],
        "notes.wav": b"this is not audio at all",
    }
    for name, data in files.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
    sf.write(tmp_path / "silent0.wav", np.zeros(0, np.float32), 16000)
    return good, [tmp_path / n for n in [*files, "silent0.wav"]]


def test_bad_files_raise_clear_errors(tmp_path):
    _, bad = _bad_files(tmp_path)
    expected = [
        "no such audio file",
        "empty file",
        "truncated WAV",
        "cannot decode",
        "cannot decode",
        "no audio samples",
    ]
    for path, words in zip(bad, expected):
        with pytest.raises(AudioFileError) as info:
            load_audio(path)
        assert str(path) in str(info.value) and words in str(info.value), str(info.value)


def test_bad_files_are_skipped_and_counted(tmp_path):
    good, bad = _bad_files(tmp_path)
    items = [AudioItem(good, 0)] + [AudioItem(p, 1) for p in bad] + [AudioItem(good, 2)]
    cfg = FbankConfig(target_frames=32)
    with pytest.raises(AudioFileError, match="missing.wav"):
        compute_features(items, cfg, progress=False)
    fs = compute_features(items, cfg, skip_bad=True, progress=False)
    assert [it.label for it in fs.items] == [0, 2] and fs.features.shape == (2, 32, 128)
    assert sorted(p for p, _ in fs.bad) == sorted(str(p) for p in bad)
    # lazily loading datasets name the file in the error (the engine's skip_bad_samples catches it)
    ds = AudioClipDataset(items, cfg)
    assert ds.describe(2) == str(bad[1])
    with pytest.raises(AudioFileError, match="empty.wav"):
        ds[2]
    assert ds[0]["input_values"].shape == (32, 128)


def test_engine_skips_and_counts_bad_clips(tmp_path, tiny_ckpt):
    from adapterlab.audio.methods import apply_method
    from adapterlab.audio.model import ASTClassifier, load_ast
    from adapterlab.audio.train import eval_step, loss_fn
    from adapterlab.core.engine import BadSampleError, TrainConfig, Trainer

    good, bad = _bad_files(tmp_path)
    items = [AudioItem(good, i % 2) for i in range(4)] + [
        AudioItem(bad[1], 0),
        AudioItem(bad[2], 1),
    ]
    data = AudioClipDataset(items, FbankConfig(target_frames=32))  # decoded lazily, in the loop
    model = ASTClassifier(load_ast(tiny_ckpt, max_length=32), 2)
    apply_method(model, "linear")

    def run(skip: bool, out: str):
        cfg = TrainConfig(
            output_dir=str(tmp_path / out),
            epochs=1,
            batch_size=3,
            skip_bad_samples=skip,
            progress=False,
            plots=False,
        )
        return Trainer(
            model, cfg, train_data=data, eval_data=data, loss_fn=loss_fn, eval_step=eval_step
        ).fit()

    with pytest.raises(BadSampleError, match="empty.wav"):
        run(False, "strict")
    result = run(True, "skip")
    assert result.skipped_samples == 4  # the 2 bad clips, in the train and in the eval split
