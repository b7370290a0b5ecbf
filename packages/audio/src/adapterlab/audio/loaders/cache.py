"""Precompute AST features for a clip list once (in RAM, like PETL-AST), optionally cached on disk as Arrow.

Decoding + fbank is the expensive part of a data pass; PETL-AST computed features once and kept them in RAM.
:func:`compute_features` does the same in batches (our batched fbank). :func:`cached_features` stores them with
🤗 ``datasets`` (Arrow, memory-mapped) keyed by a fingerprint of the files and the front-end settings, so later
runs and epochs reuse them. Bad files raise :class:`~adapterlab.audio.audio_io.AudioFileError`, or with
``skip_bad=True`` are left out and reported in ``FeatureSet.bad``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from adapterlab.core.engine import progress_enabled
from tqdm.auto import tqdm

from ..audio_io import AudioFileError, load_audio
from ..features import FbankConfig, fbank
from .common import AudioItem


class ArrowFeatures:
    """Index-able view of the ``input_values`` column of a memory-mapped Arrow dataset."""

    def __init__(self, dataset):
        self.ds = dataset.with_format("torch", columns=["input_values"])

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.ds[int(index)]["input_values"]


@dataclass
class FeatureSet:
    """Features of the clips that could be read; ``bad`` lists ``(path, problem)`` of those that could not."""

    items: list[AudioItem]
    features: torch.Tensor | ArrowFeatures | FeatureRows
    bad: list[tuple[str, str]] = field(default_factory=list)


class FeatureRows:
    """Rows of other feature tables, by reference (no copy): ``refs[i] = (table, row)``."""

    def __init__(self, refs: Sequence[tuple[torch.Tensor | ArrowFeatures, int]]):
        self.refs = list(refs)

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index: int) -> torch.Tensor:
        table, row = self.refs[index]
        return table[row]


def reuse_features(
    items: Sequence[AudioItem],
    known: Iterable[FeatureSet],
    compute: Callable[[list[AudioItem]], FeatureSet],
) -> tuple[FeatureSet, int]:
    """Features of ``items``: rows of the ``known`` feature sets where they hold the clip, ``compute`` for
    the rest. Returns the set and the number of clips computed. Clips known to be unreadable stay out.

    A sweep over folds and shot counts thus decodes and featurises every clip once (PETL-AST and the
    earlier code recomputed all splits per fold and shot count: ~11 GB peak on full Speech Commands).
    """
    index: dict[AudioItem, tuple[torch.Tensor | ArrowFeatures, int]] = {}
    bad_known: dict[str, str] = {}
    for fs in known:
        for row, it in enumerate(fs.items):
            table = fs.features
            index[it] = table.refs[row] if isinstance(table, FeatureRows) else (table, row)
        bad_known.update(fs.bad)
    if not items:
        return FeatureSet([], torch.empty(0)), 0
    todo = [it for it in items if it not in index and str(it.path) not in bad_known]
    if len(todo) == len(items):
        return compute(todo), len(todo)
    bad = [(str(it.path), bad_known[str(it.path)]) for it in items if str(it.path) in bad_known]
    if todo:
        new = compute(todo)
        index.update({it: (new.features, row) for row, it in enumerate(new.items)})
        bad += new.bad
    kept = [it for it in items if it in index]
    if not kept:
        raise ValueError(f"none of the {len(items)} clips could be read; first problem: {bad[:1]}")
    return FeatureSet(kept, FeatureRows([index[it] for it in kept]), bad), len(todo)


def needed_seconds(cfg: FbankConfig) -> float:
    """Seconds of audio that ``cfg.target_frames`` frames use (the rest of a file is cropped anyway)."""
    return ((cfg.target_frames - 1) * cfg.window_shift + cfg.window_size) / cfg.sample_rate + 0.05


def _load_many(
    items: Sequence[AudioItem], cfg: FbankConfig, skip_bad: bool
) -> tuple[list[int], list[torch.Tensor], list[tuple[str, str]]]:
    ok, waves, bad = [], [], []
    seconds = needed_seconds(cfg)
    for i, it in enumerate(items):
        try:
            waves.append(load_audio(it.path, cfg.sample_rate, max_seconds=seconds))
            ok.append(i)
        except AudioFileError as err:
            if not skip_bad:
                raise
            bad.append((err.path, err.problem))
    return ok, waves, bad


def _batches(
    items: Sequence[AudioItem],
    cfg: FbankConfig,
    batch_size: int,
    skip_bad: bool,
    device: torch.device | str | None,
    desc: str,
    progress: bool | None,
):
    bar = tqdm(total=len(items), desc=desc, disable=not progress_enabled(progress), leave=False)
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        ok, waves, bad = _load_many(chunk, cfg, skip_bad)
        feats = fbank(waves, cfg, device=device).cpu() if waves else None
        bar.update(len(chunk))
        yield [start + i for i in ok], feats, bad
    bar.close()


def compute_features(
    items: Sequence[AudioItem],
    cfg: FbankConfig,
    *,
    batch_size: int = 32,
    skip_bad: bool = False,
    device: torch.device | str | None = None,
    progress: bool | None = None,
) -> FeatureSet:
    """Features ``[N, T, F]`` of all readable clips, computed in batches, kept in RAM."""
    kept, feats, bad = [], [], []
    for idx, f, b in _batches(items, cfg, batch_size, skip_bad, device, "fbank", progress):
        kept += idx
        bad += b
        if f is not None:
            feats.append(f)
    if not feats:
        raise ValueError(f"none of the {len(items)} clips could be read; first problem: {bad[:1]}")
    return FeatureSet([items[i] for i in kept], torch.cat(feats), bad)


def fingerprint(items: Sequence[AudioItem], cfg: FbankConfig) -> str:
    """Hash of the front-end settings and each file's path, size, mtime and label."""
    h = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode())
    for it in items:
        p = Path(it.path)
        st = p.stat() if p.exists() else None
        h.update(
            f"{p.resolve()}|{st.st_size if st else -1}|{st.st_mtime_ns if st else -1}|{it.label}\n".encode()
        )
    return h.hexdigest()[:20]


def cached_features(
    items: Sequence[AudioItem],
    cfg: FbankConfig,
    cache_dir: str | os.PathLike,
    *,
    batch_size: int = 32,
    skip_bad: bool = False,
    device: torch.device | str | None = None,
    progress: bool | None = None,
) -> FeatureSet:
    """Like :func:`compute_features`, but stored in / reused from an Arrow dataset under ``cache_dir``."""
    import datasets

    target = Path(cache_dir) / f"fbank-{fingerprint(items, cfg)}"
    if not (target / "adapterlab_meta.json").is_file():
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".fbank-", dir=cache_dir))
        bad: list[tuple[str, str]] = []
        feature_spec = datasets.Features(
            {
                "index": datasets.Value("int64"),
                "input_values": datasets.Array2D((cfg.target_frames, cfg.num_mel_bins), "float32"),
            }
        )

        def gen():
            for idx, f, b in _batches(
                items, cfg, batch_size, skip_bad, device, "fbank→arrow", progress
            ):
                bad.extend(b)
                for j, i in enumerate(idx):
                    yield {"index": i, "input_values": f[j].numpy()}

        bars = datasets.is_progress_bar_enabled()
        if not progress_enabled(progress):
            datasets.disable_progress_bars()
        try:
            ds = datasets.Dataset.from_generator(
                gen, features=feature_spec, cache_dir=str(tmp / "build"), keep_in_memory=False
            )
            ds.save_to_disk(str(tmp / "data"))
            del ds
            shutil.rmtree(tmp / "build", ignore_errors=True)
            (tmp / "data" / "adapterlab_meta.json").write_text(
                json.dumps({"fbank": cfg.to_dict(), "num_items": len(items), "bad": bad})
            )
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp / "data", target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if bars:
                datasets.enable_progress_bars()
    meta = json.loads((target / "adapterlab_meta.json").read_text())
    ds = datasets.load_from_disk(str(target))
    kept = [items[i] for i in ds["index"]]
    return FeatureSet(kept, ArrowFeatures(ds), [tuple(b) for b in meta["bad"]])
