"""Audio file I/O with ``soundfile``: decode wav/flac, mix down to mono, resample to 16 kHz.

``torchaudio.load``/``save`` need torchcodec and FFmpeg, so decoding goes through libsndfile (``soundfile``)
and resampling through ``torchaudio.functional.resample`` (the original PETL-AST used librosa). Every failure
raises :class:`AudioFileError`, whose message names the file and the problem, so long jobs can skip and count
bad clips (``TrainConfig.skip_bad_samples``).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from adapterlab.core.engine.errors import DataFileError

SAMPLE_RATE = 16000
#: sample rates accepted from a file header; anything else is a corrupt header (a "1 Hz" wav would be
#: resampled into hundreds of millions of samples)
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768000
#: shortest usable clip: one 25 ms analysis window of the AST front end
MIN_SECONDS = 0.025


class AudioFileError(DataFileError):
    """An audio file that cannot be used: missing, empty, truncated, not audio, or non-finite.

    The core's :class:`~adapterlab.core.engine.errors.DataFileError`: ``"<path>: <problem>"``.
    """


def _wav_truncation(path: Path) -> str | None:
    """For RIFF/WAVE files: a message if the 'data' chunk is shorter than its header says.

    libsndfile silently clamps a truncated WAV to the bytes present, so the check is done here.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                available = size - (pos + 8)
                if csize not in (0, 0xFFFFFFFF) and csize > available:
                    return f"truncated WAV file: header declares {csize} data bytes, only {available} present"
                return None
            pos += 8 + csize + (csize & 1)
    return None


def read_audio(path: str | os.PathLike, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode ``path`` to a float32 array ``[frames, channels]`` and its sample rate.

    ``max_seconds`` reads only the first that many seconds (soundfile seeks; a long file is not loaded
    whole). Raises:
        AudioFileError: missing, empty, truncated, undecodable, non-finite or too short audio, or an
            absurd sample rate in the header (message names the file).
    """
    p = Path(path)
    if not p.is_file():
        raise AudioFileError(p, "no such audio file")
    if p.stat().st_size == 0:
        raise AudioFileError(p, "empty file (0 bytes)")
    problem = _wav_truncation(p)
    if problem:
        raise AudioFileError(p, problem)
    try:
        info = sf.info(str(p))
        sr = int(info.samplerate)
        if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
            raise AudioFileError(
                p,
                f"header claims a sample rate of {sr} Hz (accepted: {MIN_SAMPLE_RATE}-"
                f"{MAX_SAMPLE_RATE} Hz); the file is corrupt or not audio",
            )
        frames = -1 if max_seconds is None else int(np.ceil(max_seconds * sr))
        data, sr = sf.read(str(p), frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioFileError(p, f"cannot decode as audio ({err})") from err
    except AudioFileError:
        raise
    except ValueError as err:
        raise AudioFileError(p, f"cannot decode as audio ({err})") from err
    if data.shape[0] == 0:
        raise AudioFileError(p, "file holds no audio samples")
    if data.shape[0] < MIN_SECONDS * sr:
        raise AudioFileError(
            p,
            f"only {data.shape[0]} samples ({1000 * data.shape[0] / sr:.1f} ms): shorter than one "
            f"{1000 * MIN_SECONDS:.0f} ms analysis window, the features would be all padding",
        )
    if not np.isfinite(data).all():
        raise AudioFileError(p, "audio contains NaN or Inf samples")
    return data, int(sr)


def to_mono(data: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Average channels of a ``[frames, channels]`` (or 1-D) signal into a 1-D float32 tensor.

    Deviation: PETL-AST keeps channel 0 of multi-channel files; averaging keeps a source that is louder
    on the other channel (ESC-50 and Speech Commands are mono, so the study's numbers are unaffected).
    """
    t = torch.as_tensor(data, dtype=torch.float32)
    if t.dim() == 2:
        t = t.mean(dim=1)
    return t.contiguous()


def resample(wave: torch.Tensor, orig_sr: int, target_sr: int = SAMPLE_RATE) -> torch.Tensor:
    """Band-limited resampling (``torchaudio.functional.resample``); a no-op when the rates match."""
    if orig_sr == target_sr:
        return wave
    return AF.resample(wave, orig_sr, target_sr)


def load_audio(
    path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None
) -> torch.Tensor:
    """Load a wav/flac file as a mono float32 tensor at ``sample_rate`` Hz (values in [-1, 1]).

    ``max_seconds``: read only the beginning of the file (what a fixed number of frames uses).
    """
    data, sr = read_audio(path, max_seconds)
    return resample(to_mono(data), sr, sample_rate)


def write_audio(path: str | os.PathLike, wave: torch.Tensor | np.ndarray, sample_rate: int) -> None:
    """Write a mono float signal as 16-bit PCM (format from the suffix: .wav or .flac), atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(torch.as_tensor(wave, dtype=torch.float32).cpu().numpy())
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    fmt = {".wav": "WAV", ".flac": "FLAC"}.get(p.suffix.lower())
    if fmt is None:
        raise ValueError(f"{p}: unsupported audio suffix (use .wav or .flac)")
    sf.write(str(tmp), np.clip(arr, -1.0, 1.0), sample_rate, subtype="PCM_16", format=fmt)
    os.replace(tmp, p)
