"""Kaldi-compatible log-mel filterbank features for AST, batched on CPU or GPU.

This is the feature pipeline of the Audio Spectrogram Transformer (Gong et al., 2021, `ast:src/dataloader.py`)
as used by PETL-AST (Cappellazzo et al., 2024) through ``transformers.ASTFeatureExtractor``:
``torchaudio.compliance.kaldi.fbank`` with 128 mel bins, 25 ms Hanning windows every 10 ms, no dither,
pre-emphasis 0.97, per-frame DC removal, a 512-point FFT and a natural log with a float-epsilon floor; then
zero-padding or cropping to a fixed number of frames and the AudioSet normalisation ``(x - mean) / (2 * std)``.

``torchaudio``'s fbank works on one waveform at a time. :func:`fbank` does exactly the same arithmetic for a
whole batch of (possibly different length) waveforms in a few tensor operations, which is where the speed-up
in ``bench/bench_audio.py`` comes from. ``htk_compat`` only changes where the energy column goes, and the
energy column is not used (``use_energy=False``), so it does not appear here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torchaudio.compliance import kaldi

AUDIOSET_MEAN = -4.2677393
AUDIOSET_STD = 4.5689974
_EPS = torch.finfo(torch.float32).eps  # Kaldi's std::numeric_limits<float>::epsilon()


@dataclass(frozen=True)
class FbankConfig:
    """Settings of the AST front end (defaults: the AST / PETL-AST AudioSet recipe)."""

    sample_rate: int = 16000
    num_mel_bins: int = 128
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    target_frames: int = 1024
    preemphasis: float = 0.97
    low_freq: float = 20.0
    mean: float = AUDIOSET_MEAN
    std: float = AUDIOSET_STD
    normalize: bool = True

    @property
    def window_size(self) -> int:
        return int(self.sample_rate * self.frame_length_ms / 1000.0)

    @property
    def window_shift(self) -> int:
        return int(self.sample_rate * self.frame_shift_ms / 1000.0)

    @property
    def fft_size(self) -> int:
        return 1 << (self.window_size - 1).bit_length()

    def to_dict(self) -> dict:
        return asdict(self)

    def num_frames(self, num_samples: int) -> int:
        """Frames Kaldi produces for ``num_samples`` samples (``snip_edges=True``)."""
        if num_samples < self.window_size:
            return 0
        return 1 + (num_samples - self.window_size) // self.window_shift


_BANK_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def _constants(
    cfg: FbankConfig, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hanning window, its spectrum (as real pairs), the mel filterbank (bins x mel) and its transpose in
    CSR form (only ~2 non-zeros per FFT bin), cached per device/dtype."""
    key = (cfg.sample_rate, cfg.num_mel_bins, cfg.window_size, cfg.low_freq, str(device), dtype)
    if key not in _BANK_CACHE:
        window = torch.hann_window(cfg.window_size, periodic=False, dtype=torch.float64)
        padded = torch.nn.functional.pad(window, (0, cfg.fft_size - cfg.window_size))
        window_spec = torch.view_as_real(torch.fft.rfft(padded))
        banks, _ = kaldi.get_mel_banks(
            cfg.num_mel_bins,
            cfg.fft_size,
            float(cfg.sample_rate),
            cfg.low_freq,
            0.0,
            100.0,
            -500.0,
            1.0,
        )
        # Kaldi pads the banks with a zero column for the Nyquist bin, so that bin never contributes.
        banks_t = banks.to(device=device, dtype=dtype).T.contiguous()  # [bins, mel]
        sparse = None
        if device.type == "cpu":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
                sparse = banks_t.T.contiguous().to_sparse_csr()
        _BANK_CACHE[key] = (
            window.to(device=device, dtype=dtype),
            window_spec.to(device=device, dtype=dtype),
            banks_t,
            sparse,
        )
    return _BANK_CACHE[key]


def _as_batch(
    waveforms: torch.Tensor | Sequence[torch.Tensor], lengths: Sequence[int] | torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(waveforms, torch.Tensor):
        if waveforms.dim() == 1:
            waveforms = waveforms.unsqueeze(0)
        if waveforms.dim() != 2:
            raise ValueError(
                f"waveforms must be [batch, samples], got shape {tuple(waveforms.shape)}"
            )
        batch = waveforms
        if lengths is None:
            lens = torch.full((batch.shape[0],), batch.shape[1], dtype=torch.long)
        else:
            lens = torch.as_tensor(lengths, dtype=torch.long)
    else:
        items = [torch.as_tensor(w).reshape(-1) for w in waveforms]
        if not items:
            raise ValueError("fbank() got an empty list of waveforms")
        lens = torch.tensor([w.numel() for w in items], dtype=torch.long)
        batch = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)
    if lens.numel() != batch.shape[0]:
        raise ValueError(f"{lens.numel()} lengths for a batch of {batch.shape[0]} waveforms")
    return batch, lens


def fbank(
    waveforms: torch.Tensor | Sequence[torch.Tensor],
    cfg: FbankConfig | None = None,
    *,
    lengths: Sequence[int] | torch.Tensor | None = None,
    device: torch.device | str | None = None,
    chunk_frames: int | None = None,
) -> torch.Tensor:
    """AST input features for a batch of mono 16 kHz waveforms (float, range [-1, 1]).

    Args:
        waveforms: ``[B, N]`` tensor (``lengths`` gives each clip's valid samples) or a list of 1-D tensors.
        cfg: front-end settings; ``cfg.target_frames`` is the output length.
        device: where to compute (default: the waveforms' device).
        chunk_frames: frames processed per step (default: 1024 on CPU, to stay in cache; all on GPU).

    Returns:
        ``[B, cfg.target_frames, cfg.num_mel_bins]`` float32 features, zero-padded (before normalisation)
        or cropped exactly like ``ASTFeatureExtractor``.

    Kaldi works frame by frame: remove the frame mean ``m``, pre-emphasise ``y[j] = x[j] - a x[j-1]`` (with
    ``x[-1] = x[0]``), window, FFT. Because the Hanning window is zero at ``j = 0``, this equals windowing
    ``z[j] - (1 - a) m`` where ``z`` is the pre-emphasised *whole* waveform. So pre-emphasis runs once per clip,
    frames are strided views of ``z``, and the mean removal becomes ``FFT(w z) - (1 - a) m FFT(w)`` (FFT(w) is
    precomputed). The mel filterbank has about two non-zeros per FFT bin and is applied as a sparse matrix
    on CPU. Frames are processed in cache-sized chunks.
    """
    cfg = cfg or FbankConfig()
    batch, lens = _as_batch(waveforms, lengths)
    dev = torch.device(device) if device is not None else batch.device
    batch = batch.to(device=dev, dtype=torch.float32)
    window, window_spec, banks, banks_csr = _constants(cfg, dev, torch.float32)
    win, hop, a = cfg.window_size, cfg.window_shift, float(cfg.preemphasis)
    if float(window[0]) != 0.0:  # pragma: no cover - guards the identity used below
        raise RuntimeError("fbank() relies on a window that is zero at its first sample (Hanning)")
    if chunk_frames is None:
        chunk_frames = 1024 if dev.type == "cpu" else 1 << 30

    n_frames = torch.tensor([cfg.num_frames(int(n)) for n in lens], dtype=torch.long)
    max_frames = min(int(n_frames.max()), cfg.target_frames) if len(n_frames) else 0
    pad_value = (0.0 - cfg.mean) / (2.0 * cfg.std) if cfg.normalize else 0.0
    out = torch.empty((batch.shape[0], cfg.target_frames, cfg.num_mel_bins), device=dev)
    out[:, max_frames:] = pad_value
    if max_frames == 0:
        return out
    needed = (max_frames - 1) * hop + win
    if batch.shape[1] < needed:
        batch = torch.nn.functional.pad(batch, (0, needed - batch.shape[1]))
    x = batch[:, :needed]
    n_bins = banks.shape[0]
    group = max(1, chunk_frames // max_frames)
    buf = torch.zeros(min(group, x.shape[0]), max_frames, cfg.fft_size, device=dev)
    z_buf = torch.empty(min(group, x.shape[0]), needed, device=dev)
    for g0 in range(0, x.shape[0], group):
        g1 = min(x.shape[0], g0 + group)
        n = g1 - g0
        z = z_buf[:n]  # pre-emphasis of whole waveforms; z[:, 0] only meets window[0] == 0
        torch.sub(x[g0:g1, 1:], x[g0:g1, :-1], alpha=a, out=z[:, 1:])
        z[:, 0] = 0.0
        dc = x[g0:g1].unfold(1, win, hop).mean(dim=-1).mul_(1.0 - a)  # (1 - a) * frame means [n, F]
        frames = buf[:n]
        torch.mul(z.unfold(1, win, hop), window, out=frames[..., :win])  # strided views, no copy
        spec = torch.view_as_real(torch.fft.rfft(frames.view(-1, cfg.fft_size)))  # [n*F, bins+1, 2]
        spec.addcmul_(dc.reshape(-1, 1, 1), window_spec, value=-1.0)  # DC removal, in the spectrum
        spec.square_()
        if banks_csr is not None:  # CPU: sparse filterbank applied to the transposed power spectrum
            power_t = torch.empty(n_bins, n * max_frames, device=dev)
            torch.add(spec[:, :n_bins, 0], spec[:, :n_bins, 1], out=power_t.T)
            mel_t = torch.sparse.mm(banks_csr, power_t)  # [mel, n*F], contiguous
        else:
            mel_t = torch.matmul(spec[:, :n_bins, 0] + spec[:, :n_bins, 1], banks).T
        mel_t = mel_t.clamp_min_(_EPS).log_()
        if cfg.normalize:
            mel_t = mel_t.sub_(cfg.mean).mul_(0.5 / cfg.std)
        mel = mel_t.T.reshape(n, max_frames, -1)
        short = n_frames[g0:g1] < max_frames
        if bool(short.any()):  # frames past a clip's end are padding, as in ASTFeatureExtractor
            valid = torch.arange(max_frames)[None, :] < n_frames[g0:g1, None]
            mel = torch.where(valid.to(dev)[..., None], mel, pad_value)
        out[g0:g1, :max_frames] = mel
    return out


def normalize(
    features: torch.Tensor, mean: float = AUDIOSET_MEAN, std: float = AUDIOSET_STD
) -> torch.Tensor:
    """AST normalisation ``(x - mean) / (2 * std)``."""
    return (features - mean) / (std * 2.0)


def pad_or_crop(features: torch.Tensor, target_frames: int, pad_value: float = 0.0) -> torch.Tensor:
    """Pad (at the end) or crop a ``[..., T, F]`` feature tensor to ``target_frames`` frames."""
    t = features.shape[-2]
    if t >= target_frames:
        return features[..., :target_frames, :]
    pad = torch.full(
        (*features.shape[:-2], target_frames - t, features.shape[-1]),
        pad_value,
        dtype=features.dtype,
        device=features.device,
    )
    return torch.cat([features, pad], dim=-2)


def frames_for_seconds(seconds: float, cfg: FbankConfig | None = None) -> int:
    """Number of Kaldi frames for a clip of ``seconds`` seconds."""
    cfg = cfg or FbankConfig()
    return cfg.num_frames(int(math.floor(seconds * cfg.sample_rate)))
