"""ESC-50 (Piczak, 2015): ``meta/esc50.csv`` + ``audio/*.wav``, 50 classes, 5 folds.

PETL-AST rotates the folds: test fold ``k``, validation fold ``k-1`` (cyclically), train on the other three
(e.g. test 5 / val 4 / train 1,2,3). Clips are 5 s at 44.1 kHz; the study uses 500 frames, 50 epochs, batch 32,
SpecAugment and conformer kernel 8.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from adapterlab.core.engine import DataFileError

from .common import AudioItem, AudioSplits, check_nonempty, check_root, open_csv

ESC50_DEFAULTS = {
    "target_frames": 500,
    "spec_augment": True,
    "kernel_size": 8,
    "epochs": 50,
    "batch_size": 32,
    "task": "sound",
}


def esc50_folds(test_fold: int, num_folds: int = 5) -> tuple[list[int], int, int]:
    """``(train_folds, val_fold, test_fold)`` of PETL-AST's rotation."""
    if not 1 <= test_fold <= num_folds:
        raise ValueError(f"test_fold must be in 1..{num_folds}, got {test_fold}")
    val = (test_fold - 2) % num_folds + 1
    train = [f for f in range(1, num_folds + 1) if f not in (test_fold, val)]
    return train, val, test_fold


def resolve_esc50_root(root: str | os.PathLike) -> Path:
    """Accept the ESC-50 folder itself or a parent holding ``ESC-50`` / ``ESC-50-master``."""
    p = Path(root).expanduser()
    for cand in (p, p / "ESC-50", p / "ESC-50-master"):
        if (cand / "meta" / "esc50.csv").is_file():
            return cand
    return check_root(
        p, "meta/esc50.csv", "ESC-50", "Expected <root>/meta/esc50.csv and <root>/audio/*.wav."
    )


def load_esc50(root: str | os.PathLike, test_fold: int = 5, num_folds: int = 5) -> AudioSplits:
    """Splits of ESC-50 (or an ESC-50-format folder) for one rotation of the folds."""
    root = resolve_esc50_root(root)
    csv_path = root / "meta" / "esc50.csv"
    train_f, val_f, test_f = esc50_folds(test_fold, num_folds)
    rows = []
    with open_csv(csv_path) as f:
        reader = csv.DictReader(f)
        missing = {"filename", "fold", "target", "category"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{csv_path}: missing columns {sorted(missing)}")
        for line, r in enumerate(reader, start=2):
            try:
                rows.append((r["filename"], int(r["fold"]), int(r["target"]), r["category"], line))
            except (TypeError, ValueError) as err:
                raise ValueError(f"{csv_path}:{line}: bad row {r} ({err})") from err
    if not rows:
        raise ValueError(f"{csv_path}: no clips listed")
    names: dict[int, str] = {}
    first: dict[str, tuple[int, int]] = {}
    for fname, fold, target, cat, line in rows:
        first_fold, first_line = first.setdefault(fname, (fold, line))
        if first_fold != fold:
            raise DataFileError(
                csv_path,
                f"clip {fname} is listed in folds {first_fold} and {fold} "
                "(test data would leak into training)",
                line=line,
            )
        if first_line != line:
            raise DataFileError(
                csv_path,
                f"clip {fname} is listed twice in fold {fold} (first on line {first_line}); "
                "it would count twice in training or testing",
                line=line,
            )
        if not 1 <= fold <= num_folds:
            raise ValueError(f"{csv_path}: fold {fold} outside 1..{num_folds}")
        if names.setdefault(target, cat) != cat:
            raise ValueError(
                f"{csv_path}: target {target} has two categories ({names[target]!r}, {cat!r})"
            )
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{csv_path}: targets must be 0..{len(names) - 1}, got {sorted(names)}")
    split: dict[str, list[AudioItem]] = {"train": [], "val": [], "test": []}
    for fname, fold, target, _, _ in rows:
        key = "test" if fold == test_f else "val" if fold == val_f else "train"
        if key == "train" and fold not in train_f:  # pragma: no cover - all other folds train
            continue
        split[key].append(AudioItem(root / "audio" / fname, target))
    check_nonempty(split, csv_path, f"test fold {test_f}, val fold {val_f}, train folds {train_f}")
    return AudioSplits(
        "esc50",
        [names[i] for i in range(len(names))],
        split["train"],
        split["val"],
        split["test"],
        dict(ESC50_DEFAULTS, folds={"train": train_f, "val": val_f, "test": test_f}),
    )
