"""Embedded real speech: Debian's ``asterisk-core-sounds-en-wav`` written as Speech Commands v2 folders.

The package holds 568 real recordings of one (human) voice at 8 kHz: digits, letters, the NATO alphabet and
telephone prompts. :func:`embedded_speech` fetches it (``apt-get download`` + ``dpkg-deb -x``, see
:mod:`.debian`) and writes two datasets in the real Speech Commands v2 layout (``<word>/*.wav`` at 16 kHz,
``validation_list.txt``, ``testing_list.txt``):

- ``pretrain-words``: every short recording that is *not* a digit, one class per recording (letters, NATO
  words, short prompts): the task a tiny AST is pre-trained on, so that it knows something about speech;
- ``digits``: the ten digits ``zero`` ... ``nine``: the transfer task every PETL method is compared on.

One recording per word is far too little, so every clip is an augmented copy (our design): speed change
(0.85-1.15, which moves pitch and tempo together), a separate pitch shift (+-1.5 semitones), a random onset
in the 1 s window, gain, white noise at 10-35 dB SNR and, 30 % of the time, a quieter interfering word
(-24 to -12 dB) from the *other* dataset's recordings. Train, validation and test copies are drawn
independently, so the test set measures robustness to new augmentations of known words, not new speakers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF
from adapterlab.core.engine import atomic_directory, progress

from ..audio_io import SAMPLE_RATE, load_audio, write_audio
from .debian import fetch_debian_package

PACKAGE = "asterisk-core-sounds-en-wav"
VOICE = Path("usr/share/asterisk/sounds/en_US_f_Allison")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: recordings that say a digit under another name (kept out of the pre-training words)
DIGIT_LIKE = {"phonetic/9_p", "letters/o"}
#: augmented copies per class (train, validation, test)
PRETRAIN_COUNTS = (12, 2, 2)
TRANSFER_COUNTS = (24, 8, 16)
CLIP_SECONDS = 1.0
MAX_WORD_SECONDS = 1.0
_SETTINGS_VERSION = 2


@dataclass(frozen=True)
class EmbeddedSpeech:
    """The two embedded Speech Commands v2-layout folders."""

    pretrain: Path
    transfer: Path


def trim_silence(wave: torch.Tensor, threshold: float = 0.03) -> torch.Tensor:
    """``wave`` without its leading and trailing samples below ``threshold`` x its peak."""
    loud = (wave.abs() >= threshold * wave.abs().max().clamp_min(1e-9)).nonzero()
    if loud.numel() == 0:
        return wave
    return wave[int(loud[0]) : int(loud[-1]) + 1]


def augment(
    word: torch.Tensor,
    rng: np.random.Generator,
    distractors: Sequence[torch.Tensor] = (),
    seconds: float = CLIP_SECONDS,
    sample_rate: int = SAMPLE_RATE,
) -> torch.Tensor:
    """One augmented ``seconds``-long clip of the (trimmed, ``sample_rate``) recording ``word``."""
    speed = rng.uniform(0.85, 1.15)
    new_rate = int(round(sample_rate / speed / 100.0)) * 100
    w = AF.resample(word, sample_rate, new_rate) if new_rate != sample_rate else word
    steps = int(rng.integers(-3, 4))  # quarter-tone steps: +-1.5 semitones
    if steps:
        w = pitch_shift(w, 2 ** (steps / 24), sample_rate)
    total = int(seconds * sample_rate)
    clip = torch.zeros(total)
    _place(clip, w / w.abs().max().clamp_min(1e-9), rng)
    if distractors and rng.random() < 0.3:
        other = distractors[int(rng.integers(len(distractors)))]
        other = other / other.abs().max().clamp_min(1e-9)
        _place(clip, other * 10 ** (rng.uniform(-24, -12) / 20), rng, add=True)
    rms = clip.pow(2).mean().sqrt().clamp_min(1e-6)
    snr_db = rng.uniform(10, 35)
    clip = clip + torch.from_numpy(rng.standard_normal(total)).float() * rms / 10 ** (snr_db / 20)
    return clip / clip.abs().max().clamp_min(1e-9) * rng.uniform(0.1, 0.9)


def pitch_shift(wave: torch.Tensor, factor: float, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Multiply the pitch of ``wave`` by ``factor`` at (about) the same duration.

    Phase-vocoder time stretch by ``factor`` followed by resampling from ``sample_rate * factor`` (rounded to
    100 Hz) to ``sample_rate``. ``torchaudio.functional.pitch_shift`` does the same but resamples between
    co-prime rates, which takes seconds per clip.
    """
    n_fft, hop = 512, 128
    window = torch.hann_window(n_fft)
    spec = torch.stft(wave, n_fft, hop, window=window, return_complex=True)
    phase_advance = torch.linspace(0, torch.pi * hop, n_fft // 2 + 1)[..., None]
    stretched = AF.phase_vocoder(spec, 1.0 / factor, phase_advance)
    longer = torch.istft(stretched, n_fft, hop, window=window)
    rate = int(round(sample_rate * factor / 100.0)) * 100
    return AF.resample(longer, rate, sample_rate) if rate != sample_rate else longer


def _place(
    clip: torch.Tensor, wave: torch.Tensor, rng: np.random.Generator, add: bool = False
) -> None:
    """Put ``wave`` at a random onset in ``clip`` (a random crop of it when longer)."""
    total, n = clip.numel(), wave.numel()
    if n >= total:
        start = int(rng.integers(0, n - total + 1))
        piece, offset = wave[start : start + total], 0
    else:
        piece, offset = wave, int(rng.integers(0, total - n + 1))
    if add:
        clip[offset : offset + piece.numel()] += piece
    else:
        clip[offset : offset + piece.numel()] = piece


def find_recordings(voice_dir: str | os.PathLike) -> tuple[dict[str, Path], dict[str, Path]]:
    """``(pretrain_words, digits)``: word name -> recording, from the unpacked asterisk voice folder."""
    voice = Path(voice_dir)
    digit_dir = voice / "digits"
    digits = {name: digit_dir / f"{i}.wav" for i, name in enumerate(DIGITS)}
    missing = [str(p) for p in digits.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{voice}: not the asterisk voice folder (missing {missing[:2]})")
    words: dict[str, Path] = {}
    for wav in sorted(voice.rglob("*.wav")):
        rel = wav.relative_to(voice).with_suffix("").as_posix()
        if rel.startswith("digits/") or rel in DIGIT_LIKE:
            continue
        words[rel.replace("/", "_").replace(" ", "_")] = wav
    return words, digits


def write_speech_commands(
    words: dict[str, torch.Tensor],
    out: str | os.PathLike,
    counts: tuple[int, int, int],
    *,
    distractors: Sequence[torch.Tensor] = (),
    seed: int = 0,
    progress_bar: bool | None = None,
) -> Path:
    """Write augmented copies of each word's recording as a Speech Commands v2 folder (atomically).

    ``words`` maps a word (folder name) to its trimmed 16 kHz recording; ``counts`` is (train, val, test)
    copies per word. Files are ``<word>/<word>_nohash_<i>.wav`` as in Speech Commands.
    """
    out = Path(out)
    rng = np.random.default_rng(seed)

    def write(tmp: Path) -> None:
        val_list, test_list = [], []
        jobs = [(w, i) for w in words for i in range(sum(counts))]
        for word, i in progress(jobs, desc=f"writing {out.name}", enabled=progress_bar):
            rel = f"{word}/{word}_nohash_{i}.wav"
            write_audio(tmp / rel, augment(words[word], rng, distractors), SAMPLE_RATE)
            if counts[0] <= i < counts[0] + counts[1]:
                val_list.append(rel)
            elif i >= counts[0] + counts[1]:
                test_list.append(rel)
        (tmp / "validation_list.txt").write_text("\n".join(val_list) + "\n")
        (tmp / "testing_list.txt").write_text("\n".join(test_list) + "\n")

    atomic_directory(out, write)
    return out


def _load_words(paths: dict[str, Path]) -> dict[str, torch.Tensor]:
    loaded = {}
    for name, path in paths.items():
        wave = trim_silence(load_audio(path))
        if 0.2 * SAMPLE_RATE <= wave.numel() <= MAX_WORD_SECONDS * SAMPLE_RATE:
            loaded[name] = wave
    return loaded


def embedded_speech(
    out: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    voice_dir: str | os.PathLike | None = None,
    seed: int = 0,
    progress_bar: bool | None = None,
) -> EmbeddedSpeech:
    """Fetch the asterisk recordings (unless ``voice_dir`` is given) and write both datasets under ``out``.

    Reuses earlier output when it was written with the same settings. ``cache_dir`` (default
    ``~/.cache/adapterlab/debian``) keeps the unpacked Debian package between runs.
    """
    out = Path(out)
    stamp = {
        "version": _SETTINGS_VERSION,
        "seed": seed,
        "pretrain": PRETRAIN_COUNTS,
        "transfer": TRANSFER_COUNTS,
    }
    result = EmbeddedSpeech(out / "pretrain-words", out / "digits")
    stamp_file = out / "embedded.json"
    written = json.loads(stamp_file.read_text()) if stamp_file.is_file() else None
    if written == json.loads(json.dumps(stamp)) and result.transfer.is_dir():
        return result
    if voice_dir is None:
        cache = Path(cache_dir or Path.home() / ".cache" / "adapterlab" / "debian")
        voice_dir = fetch_debian_package(PACKAGE, cache) / VOICE
    word_paths, digit_paths = find_recordings(voice_dir)
    words, digits = _load_words(word_paths), _load_words(digit_paths)
    if len(digits) != len(DIGITS):
        raise ValueError(f"{voice_dir}: some digit recordings are unusable ({sorted(digits)})")
    write_speech_commands(
        words,
        result.pretrain,
        PRETRAIN_COUNTS,
        distractors=list(digits.values()),
        seed=seed,
        progress_bar=progress_bar,
    )
    write_speech_commands(
        digits,
        result.transfer,
        TRANSFER_COUNTS,
        distractors=list(words.values()),
        seed=seed + 1,
        progress_bar=progress_bar,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "embedded.json").write_text(json.dumps(stamp) + "\n")
    return result
