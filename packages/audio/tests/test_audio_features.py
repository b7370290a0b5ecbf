"""Batched fbank = transformers.ASTFeatureExtractor / torchaudio Kaldi fbank, numerically."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from adapterlab.audio.features import AUDIOSET_MEAN, AUDIOSET_STD, FbankConfig, fbank, pad_or_crop
from torchaudio.compliance import kaldi
from transformers import ASTFeatureExtractor


def _signal(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    f = 300 + 2000 * torch.rand(1, generator=g)
    x = 0.4 * torch.sin(2 * math.pi * f * t) * torch.linspace(0.2, 1, n)
    return x + 0.05 * torch.randn(n, generator=g) + 0.01  # tone + noise + a DC offset


@pytest.mark.parametrize("target", [100, 300])
def test_matches_ast_feature_extractor(target):
    hf = ASTFeatureExtractor(max_length=target)
    waves = [_signal(n, i) for i, n in enumerate([16000, 24000, 5000, 40000])]  # pad and crop cases
    ours = fbank(waves, FbankConfig(target_frames=target))
    ref = np.stack(
        [hf(w.numpy(), sampling_rate=16000, return_tensors="np")["input_values"][0] for w in waves]
    )
    assert ours.shape == (4, target, 128)
    np.testing.assert_allclose(ours.numpy(), ref, atol=2e-4, rtol=0)


def test_matches_kaldi_fbank_unnormalised_and_padding_rule():
    w = _signal(12345, 7)
    cfg = FbankConfig(target_frames=120, normalize=False)
    ours = fbank(w, cfg)[0]
    ref = kaldi.fbank(
        w[None],
        htk_compat=True,
        sample_frequency=16000,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=128,
        dither=0.0,
        frame_shift=10,
    )
    n = ref.shape[0]
    assert n == cfg.num_frames(12345) == 1 + (12345 - 400) // 160
    torch.testing.assert_close(ours[:n], ref, atol=2e-3, rtol=1e-4)
    assert torch.all(ours[n:] == 0)  # zero padding before normalisation, like ASTFeatureExtractor


def test_normalisation_formula_and_batch_consistency():
    waves = [_signal(n, i) for i, n in enumerate([8000, 16000, 3000])]
    raw = fbank(waves, FbankConfig(target_frames=90, normalize=False))
    norm = fbank(waves, FbankConfig(target_frames=90))
    torch.testing.assert_close(norm, (raw - AUDIOSET_MEAN) / (2 * AUDIOSET_STD))
    # each clip alone gives the same features as inside a padded batch
    for i, w in enumerate(waves):
        torch.testing.assert_close(
            fbank(w, FbankConfig(target_frames=90))[0], norm[i], atol=1e-5, rtol=0
        )
    # a [B, N] tensor with explicit lengths equals the list form
    padded = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    torch.testing.assert_close(
        fbank(padded, FbankConfig(target_frames=90), lengths=[8000, 16000, 3000]), norm
    )


def test_too_short_clip_is_all_padding():
    out = fbank([torch.zeros(100)], FbankConfig(target_frames=10))
    assert torch.allclose(out, torch.full_like(out, -AUDIOSET_MEAN / (2 * AUDIOSET_STD)))


def test_pad_or_crop():
    x = torch.arange(12.0).reshape(4, 3)
    assert pad_or_crop(x, 2).tolist() == x[:2].tolist()
    y = pad_or_crop(x, 6, pad_value=-1.0)
    assert y.shape == (6, 3) and torch.all(y[4:] == -1) and torch.equal(y[:4], x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_matches_cpu():  # pragma: no cover - runs where a GPU exists
    waves = [_signal(16000, 3), _signal(9000, 4)]
    cpu = fbank(waves, FbankConfig(target_frames=100))
    gpu = fbank(waves, FbankConfig(target_frames=100), device="cuda").cpu()
    torch.testing.assert_close(cpu, gpu, atol=1e-3, rtol=0)
