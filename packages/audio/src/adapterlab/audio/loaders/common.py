"""Shared data structures: labelled clip lists, train/val/test splits, few-shot sampling, the torch Dataset."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from adapterlab.core.engine import DataFileError
from torch.utils.data import Dataset

from ..audio_io import load_audio
from ..features import FbankConfig, fbank
from ..specaug import SpecAugment


@dataclass(frozen=True)
class AudioItem:
    """One labelled clip on disk."""

    path: Path
    label: int


@dataclass
class AudioSplits:
    """Train/validation/test clip lists of one dataset (one fold of a cross-validated one)."""

    name: str
    classes: list[str]
    train: list[AudioItem]
    val: list[AudioItem]
    test: list[AudioItem]
    #: dataset-specific defaults of the study (frames, SpecAugment, conformer kernel, epochs, batch size)
    defaults: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def summary(self) -> str:
        return (
            f"{self.name}: {self.num_classes} classes, train {len(self.train)}, "
            f"val {len(self.val)}, test {len(self.test)}"
        )


def few_shot(items: Sequence[AudioItem], k: int, seed: int = 0) -> list[AudioItem]:
    """Keep at most ``k`` clips per class, drawn at random with ``seed`` (original order preserved).

    PETL-AST's cap never applied when the shot count came from the command line (a string compared with an
    int); here ``k`` must be a positive int and the cap always holds.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"few-shot k must be an int, got {type(k).__name__} {k!r}")
    if k < 1:
        raise ValueError(f"few-shot k must be >= 1, got {k}")
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_class[it.label].append(i)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for label in sorted(by_class):
        idx = by_class[label]
        keep.extend(rng.permutation(idx)[:k].tolist() if len(idx) > k else idx)
    return [items[i] for i in sorted(keep)]


def class_counts(items: Sequence[AudioItem]) -> dict[int, int]:
    """Number of clips per label."""
    counts: dict[int, int] = defaultdict(int)
    for it in items:
        counts[it.label] += 1
    return dict(counts)


def check_root(root: str | os.PathLike, required: str, dataset: str, hint: str) -> Path:
    """``root`` as a Path, or a FileNotFoundError that says what ``dataset`` layout was expected."""
    p = Path(root).expanduser()
    if not (p / required).exists():
        raise FileNotFoundError(f"{p}: not a {dataset} folder (missing {required}). {hint}")
    return p


def open_csv(path: Path):
    """Open a metadata csv as UTF-8 text, or raise the core's ``DataFileError`` (a ValueError) naming the
    file, the line and the problem."""
    if not path.is_file():
        raise DataFileError(path, "no such file")
    data = path.read_bytes()
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataFileError(
            path,
            f"not UTF-8 text (byte {data[err.start]:#04x} at offset {err.start}); save the csv as UTF-8",
            line=line,
        ) from None
    return path.open(newline="", encoding="utf-8-sig")


def check_nonempty(split: dict[str, list], source: Path, what: str) -> None:
    """A ValueError naming ``source`` when a train / val / test split came out empty."""
    empty = [k for k in ("train", "val", "test") if not split[k]]
    if empty:
        raise ValueError(f"{source}: the {' and '.join(empty)} split is empty ({what})")


class AudioClipDataset(Dataset):
    """Clips -> ``{"input_values": [T, F] AST features, "labels": int}``.

    Features come from ``features`` (precomputed, see :mod:`adapterlab.audio.loaders.cache`) when given, else each
    clip is decoded and featurised on access. ``augment`` (SpecAugment) is applied on every access.
    ``describe(i)`` names the file, for the engine's bad-sample messages.
    """

    def __init__(
        self,
        items: Sequence[AudioItem],
        fbank_config: FbankConfig,
        *,
        features: torch.Tensor | Sequence[torch.Tensor] | None = None,
        augment: SpecAugment | None = None,
    ):
        self.items = list(items)
        self.cfg = fbank_config
        self.augment = augment
        if features is not None and len(features) != len(self.items):
            raise ValueError(f"{len(features)} feature rows for {len(self.items)} clips")
        self.features = features

    def __len__(self) -> int:
        return len(self.items)

    def describe(self, index: int) -> str:
        return str(self.items[index].path)

    def labels(self) -> list[int]:
        return [it.label for it in self.items]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self.items[index]
        if self.features is not None:
            x = torch.as_tensor(self.features[index], dtype=torch.float32)
        else:
            wave = load_audio(item.path, self.cfg.sample_rate)
            x = fbank(wave, self.cfg)[0]
        if self.augment is not None:
            x = self.augment(x)
        return {"input_values": x, "labels": torch.tensor(item.label, dtype=torch.long)}
