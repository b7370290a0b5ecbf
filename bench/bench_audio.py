"""Audio benchmark: AST fbank throughput (clips/s of 10 s audio), side by side in one run.

- ours: ``adapterlab.audio.features.fbank`` on batches of clips (CPU, and GPU when there is one);
- reference: ``transformers.ASTFeatureExtractor`` called once per clip, as PETL-AST does.

Both produce the same [1024, 128] AudioSet-normalised features (max abs difference printed). Rounds alternate
between the two so machine load hits both alike; the median round is reported. Results also go to
``bench/results/audio.json``.

    uv run --all-packages python bench/bench_audio.py [--clips 64] [--batch 32] [--rounds 5] [--threads 1,auto]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from adapterlab.audio.audio_io import load_audio
from adapterlab.audio.features import FbankConfig, fbank
from adapterlab.audio.loaders.cache import needed_seconds
from adapterlab.core.engine import atomic_write_json
from transformers import ASTFeatureExtractor

SR = 16000
SECONDS = 10.0


def make_clips(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` 10 s clips: a gliding tone, a click train and noise (so every mel band has energy)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(SR * SECONDS)) / SR
    clips = []
    for _ in range(n):
        f0 = 200 + 1500 * torch.rand(1, generator=g)
        tone = 0.3 * torch.sin(2 * math.pi * (f0 * t + 40 * t**2))
        clicks = (torch.rand(t.shape, generator=g) > 0.999).float() * 0.5
        clips.append(tone + clicks + 0.02 * torch.randn(t.shape, generator=g))
    return torch.stack(clips)


def time_ours(clips: torch.Tensor, batch: int, device: str) -> float:
    cfg = FbankConfig(target_frames=1024)
    start = time.perf_counter()
    for i in range(0, len(clips), batch):
        fbank(clips[i : i + batch], cfg, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def time_hf(extractor: ASTFeatureExtractor, clips_np: list[np.ndarray]) -> float:
    start = time.perf_counter()
    for w in clips_np:
        extractor(w, sampling_rate=SR, return_tensors="pt")
    return time.perf_counter() - start


def measure(clips: torch.Tensor, extractor: ASTFeatureExtractor, batch: int, rounds: int) -> dict:
    """Median clips/s of both methods (rounds alternate so machine load hits both alike)."""
    clips_np = [c.numpy() for c in clips]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    time_ours(clips[:batch], batch, "cpu")  # warm-up (mel banks, allocator)
    time_hf(extractor, clips_np[:2])
    if "cuda" in devices:
        time_ours(clips[:batch], batch, "cuda")
    times: dict[str, list[float]] = {
        "hf_per_clip_cpu": [],
        **{f"ours_batched_{d}": [] for d in devices},
    }
    for _ in range(rounds):
        times["hf_per_clip_cpu"].append(time_hf(extractor, clips_np))
        for d in devices:
            times[f"ours_batched_{d}"].append(time_ours(clips, batch, d))
    rate = {k: len(clips) / statistics.median(v) for k, v in times.items()}
    return {
        "torch_threads": torch.get_num_threads(),
        "clips_per_s": rate,
        "speedup_cpu": rate["ours_batched_cpu"] / rate["hf_per_clip_cpu"],
        "round_seconds": times,
    }


def long_file_read(minutes: float = 10.0) -> dict:
    """Reading a long 44.1 kHz stereo file whole vs only the frames 1024 AST frames use (side by side)."""
    import tempfile

    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        n = int(minutes * 60 * 44100)
        with sf.SoundFile(path, "w", 44100, 2, "PCM_16") as f:
            block = (np.random.default_rng(0).uniform(-0.3, 0.3, (44100 * 10, 2))).astype(
                np.float32
            )
            for _ in range(0, n, len(block)):
                f.write(block)
        seconds = needed_seconds(FbankConfig(target_frames=1024))
        out = {}
        for name, limit in (("whole", None), ("needed_frames", seconds)):
            start = time.perf_counter()
            data, sr = sf.read(
                path,
                frames=-1 if limit is None else int(limit * 44100),
                dtype="float32",
                always_2d=True,
            )
            decoded = data.nbytes
            wave = load_audio(path, max_seconds=limit)
            out[name] = {
                "seconds": time.perf_counter() - start,
                "decoded_mb": decoded / 2**20,
                "output_samples": int(wave.numel()),
            }
        return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clips", type=int, default=64, help="10 s clips per round (default 64)")
    ap.add_argument(
        "--batch", type=int, default=32, help="clips per batched fbank call (default 32)"
    )
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per method (default 5)")
    ap.add_argument(
        "--threads",
        default="1,auto",
        help="comma-separated torch thread counts to measure ('auto' = torch's default); default 1,auto",
    )
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "audio.json"))
    args = ap.parse_args()

    default_threads = torch.get_num_threads()
    settings = []
    for t in args.threads.split(","):
        n = default_threads if t.strip() == "auto" else int(t)
        if n not in settings:
            settings.append(n)

    clips = make_clips(args.clips)
    extractor = ASTFeatureExtractor(max_length=1024)
    ref = np.stack(
        [
            extractor(c.numpy(), sampling_rate=SR, return_tensors="np")["input_values"][0]
            for c in clips[:4]
        ]
    )
    ours = fbank(clips[:4], FbankConfig(target_frames=1024)).numpy()
    max_diff = float(np.abs(ref - ours).max())

    print(
        f"AST fbank throughput, 10 s clips -> [1024, 128] features "
        f"({args.clips} clips x {args.rounds} rounds, median round, batch {args.batch})"
    )
    print(
        f"  {'threads':>7s} {'ASTFeatureExtractor/clip':>25s} {'adapterlab batched CPU':>23s} {'speed-up':>9s}"
    )
    runs = []
    for n in settings:
        torch.set_num_threads(n)
        r = measure(clips, extractor, args.batch, args.rounds)
        runs.append(r)
        rate = r["clips_per_s"]
        gpu = (
            f"   GPU: {rate['ours_batched_cuda']:.1f} clips/s"
            if "ours_batched_cuda" in rate
            else ""
        )
        print(
            f"  {n:7d} {rate['hf_per_clip_cpu']:19.1f} clips/s {rate['ours_batched_cpu']:15.1f} clips/s "
            f"{r['speedup_cpu']:8.2f}x{gpu}"
        )
    torch.set_num_threads(default_threads)
    print(f"  max |difference| to ASTFeatureExtractor: {max_diff:.2e}")

    reads = long_file_read()
    w, p = reads["whole"], reads["needed_frames"]
    print(
        f"10-minute 44.1 kHz stereo wav, 1024 frames needed: whole file {w['decoded_mb']:.0f} MB decoded "
        f"in {w['seconds']:.2f}s, needed frames only {p['decoded_mb']:.1f} MB in {p['seconds']:.3f}s "
        f"({w['decoded_mb'] / p['decoded_mb']:.0f}x less memory, {w['seconds'] / p['seconds']:.0f}x faster)"
    )
    result = {
        "benchmark": "AST fbank throughput, 10 s clips at 16 kHz -> 1024 x 128",
        "long_file_read": reads,
        "runs": runs,
        "max_abs_diff_vs_hf": max_diff,
        "clips": args.clips,
        "batch": args.batch,
        "rounds": args.rounds,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    out = Path(args.out)
    atomic_write_json(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
