"""Embedded default data: a synthetic sound-event dataset written in the real ESC-50 layout.

``synthesize_esc50(root)`` writes ``root/audio/<fold>-<id>-A-<class>.wav`` (real 16-bit PCM wav files at
44.1 kHz like ESC-50, so loading exercises decoding and resampling) and ``root/meta/esc50.csv`` with ESC-50's
columns (``filename,fold,target,category,esc10,src_file,take``) and 5 balanced folds.

The classes are clearly different to a listener, and several pairs differ only in their *temporal order*
(up- vs down-chirp, swelling vs fading noise, tone-then-noise vs noise-then-tone): a pooled "bag of patches"
cannot separate them, a model that attends over time can. Every clip gets a random pitch, duration, onset,
gain and background-noise level.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from adapterlab.core.engine import progress_enabled
from tqdm.auto import tqdm

from ..audio_io import write_audio

Rng = np.random.Generator
_SR = 44100


def _t(n: int) -> np.ndarray:
    return np.arange(n) / _SR


def _env(n: int, attack: float = 0.01, release: float = 0.03) -> np.ndarray:
    """Short linear fade in/out so onsets do not click."""
    e = np.ones(n)
    a, r = max(1, int(attack * _SR)), max(1, int(release * _SR))
    e[:a] = np.linspace(0, 1, a)
    e[-r:] = np.minimum(e[-r:], np.linspace(1, 0, r))
    return e


def _noise(n: int, rng: Rng, lo: float = 200.0, hi: float = 6000.0) -> np.ndarray:
    """Band-limited Gaussian noise (FFT brick-wall band-pass), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / _SR)
    spec[(f < lo) | (f > hi)] = 0
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-9)


def _chirp(n: int, f0: float, f1: float) -> np.ndarray:
    """Exponential sweep from f0 to f1 Hz."""
    t = _t(n)
    dur = n / _SR
    k = np.log(f1 / f0) / dur
    return np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)


def _tone(n: int, rng: Rng) -> np.ndarray:
    return np.sin(2 * np.pi * rng.uniform(400, 3000) * _t(n) + rng.uniform(0, 6.3))


def _up_chirp(n: int, rng: Rng) -> np.ndarray:
    f0 = rng.uniform(250, 600)
    return _chirp(n, f0, f0 * rng.uniform(5, 9))


def _down_chirp(n: int, rng: Rng) -> np.ndarray:
    f0 = rng.uniform(250, 600)
    return _chirp(n, f0 * rng.uniform(5, 9), f0)


def _noise_burst(n: int, rng: Rng) -> np.ndarray:
    x = np.zeros(n)
    for _ in range(rng.integers(2, 4)):
        m = int(rng.uniform(0.05, 0.12) * _SR)
        s = rng.integers(0, max(1, n - m))
        x[s : s + m] += _noise(m, rng, 1000, 8000) * _env(m, 0.002, 0.02)
    return x


def _clicks(n: int, rng: Rng) -> np.ndarray:
    x = np.zeros(n)
    period = int(_SR / rng.uniform(6, 14))
    click = np.exp(-np.arange(int(0.004 * _SR)) / (0.0008 * _SR)) * rng.choice([-1, 1])
    for s in range(rng.integers(0, period), n - len(click), period):
        x[s : s + len(click)] += click
    return x


def _am_tone(n: int, rng: Rng) -> np.ndarray:
    t = _t(n)
    return np.sin(2 * np.pi * rng.uniform(500, 2500) * t) * (
        0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(5, 10) * t)
    )


def _fm_tone(n: int, rng: Rng) -> np.ndarray:
    t = _t(n)
    fc, fm, dev = rng.uniform(800, 2500), rng.uniform(4, 8), rng.uniform(150, 400)
    return np.sin(2 * np.pi * fc * t + dev / fm * np.sin(2 * np.pi * fm * t))


def _harmonic(n: int, rng: Rng) -> np.ndarray:
    t = _t(n)
    f0 = rng.uniform(110, 300)
    return sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 9))


def _pluck(n: int, rng: Rng) -> np.ndarray:
    t = _t(n)
    f0 = rng.uniform(150, 500)
    x = sum(np.sin(2 * np.pi * f0 * k * t) * np.exp(-t * 6 * k) / k for k in range(1, 6))
    return x


def _siren(n: int, rng: Rng) -> np.ndarray:
    f1 = rng.uniform(500, 900)
    f2 = f1 * rng.uniform(1.3, 1.6)
    rate = rng.uniform(3, 5)
    sq = np.sign(np.sin(2 * np.pi * rate * _t(n)))
    freq = np.where(sq > 0, f1, f2)
    return np.sin(2 * np.pi * np.cumsum(freq) / _SR)


def _swell(n: int, rng: Rng) -> np.ndarray:
    return _noise(n, rng) * np.linspace(0.02, 1.0, n) ** 2


def _fade(n: int, rng: Rng) -> np.ndarray:
    return _noise(n, rng) * np.linspace(1.0, 0.02, n) ** 2


def _tone_then_noise(n: int, rng: Rng) -> np.ndarray:
    h = n // 2
    return np.concatenate([_tone(h, rng) * 0.7, _noise(n - h, rng) * 0.5])


def _noise_then_tone(n: int, rng: Rng) -> np.ndarray:
    h = n // 2
    return np.concatenate([_noise(h, rng) * 0.5, _tone(n - h, rng) * 0.7])


#: class name -> generator(n_samples, rng); the order defines the ESC-50 ``target`` ids.
SYNTH_CLASSES: dict[str, Callable[[int, Rng], np.ndarray]] = {
    "pure_tone": _tone,
    "up_chirp": _up_chirp,
    "down_chirp": _down_chirp,
    "noise_bursts": _noise_burst,
    "click_train": _clicks,
    "am_tone": _am_tone,
    "fm_tone": _fm_tone,
    "harmonic_stack": _harmonic,
    "pluck": _pluck,
    "siren": _siren,
    "noise_swell": _swell,
    "noise_fade": _fade,
    "tone_then_noise": _tone_then_noise,
    "noise_then_tone": _noise_then_tone,
}


def synth_clip(name: str, rng: Rng, seconds: tuple[float, float] = (0.8, 1.25)) -> np.ndarray:
    """One clip of class ``name``: random duration/onset/gain, plus low-level background noise."""
    total = int(seconds[1] * _SR)
    n = int(rng.uniform(*seconds) * _SR)
    event = SYNTH_CLASSES[name](n, rng)
    event = event / (np.max(np.abs(event)) + 1e-9) * _env(n)
    clip = np.zeros(total)
    start = rng.integers(0, total - n + 1)
    clip[start : start + n] = event * 10 ** (rng.uniform(-12, 0) / 20)
    clip += 10 ** (rng.uniform(-45, -30) / 20) * _noise(total, rng, 50, 10000)
    return (clip / max(1.0, np.max(np.abs(clip)) / 0.99)).astype(np.float32)


def synthesize_esc50(
    root: str | os.PathLike,
    *,
    num_classes: int = len(SYNTH_CLASSES),
    clips_per_class: int = 20,
    num_folds: int = 5,
    seconds: tuple[float, float] = (0.8, 1.25),
    seed: int = 0,
    progress: bool | None = None,
) -> Path:
    """Write a synthetic ESC-50-format dataset to ``root`` (atomically) and return ``root``.

    If ``root/meta/esc50.csv`` already exists the folder is reused as is.
    """
    root = Path(root)
    if (root / "meta" / "esc50.csv").is_file():
        return root
    if not 1 <= num_classes <= len(SYNTH_CLASSES):
        raise ValueError(f"num_classes must be in [1, {len(SYNTH_CLASSES)}], got {num_classes}")
    if clips_per_class % num_folds:
        raise ValueError(
            f"clips_per_class ({clips_per_class}) must be a multiple of num_folds ({num_folds})"
        )
    names = list(SYNTH_CLASSES)[:num_classes]
    tmp = root.with_name(f".{root.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    rng = np.random.default_rng(seed)
    rows = []
    jobs = [(t, name, i) for t, name in enumerate(names) for i in range(clips_per_class)]
    for target, name, i in tqdm(
        jobs, desc="synthesising clips", disable=not progress_enabled(progress), leave=False
    ):
        fold = i % num_folds + 1
        fname = f"{fold}-{target:02d}{i:04d}-A-{target}.wav"
        write_audio(tmp / "audio" / fname, synth_clip(name, rng, seconds), _SR)
        rows.append([fname, fold, target, name, "False", f"synth{target:02d}{i:04d}", "A"])
    (tmp / "meta").mkdir(parents=True, exist_ok=True)
    with (tmp / "meta" / "esc50.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        w.writerows(rows)
    root.parent.mkdir(parents=True, exist_ok=True)
    if root.exists():
        shutil.rmtree(root)
    os.replace(tmp, root)
    return root
