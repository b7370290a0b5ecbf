"""UrbanSound8K (Salamon et al., 2014): ``metadata/UrbanSound8K.csv`` + ``audio/fold<k>/*.wav``, 10 folds.

Deviation from PETL-AST: the original used the *test* fold for model selection too (there is no validation
split), which leaks test data into checkpoint selection. Here the fold before the test fold (cyclically) is
the validation fold and the remaining 8 folds train.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from .common import AudioItem, AudioSplits, check_root

US8K_DEFAULTS = {
    "target_frames": 400,
    "spec_augment": True,
    "kernel_size": 8,
    "epochs": 30,
    "batch_size": 32,
    "task": "sound",
}


def load_urbansound8k(root: str | os.PathLike, test_fold: int = 10) -> AudioSplits:
    """Splits of UrbanSound8K with ``test_fold`` held out and the previous fold for validation."""
    p = Path(root).expanduser()
    if not (p / "metadata" / "UrbanSound8K.csv").is_file() and (p / "UrbanSound8K").is_dir():
        p = p / "UrbanSound8K"
    root = check_root(
        p,
        "metadata/UrbanSound8K.csv",
        "UrbanSound8K",
        "Expected <root>/metadata/UrbanSound8K.csv and <root>/audio/fold1..fold10/.",
    )
    if not 1 <= test_fold <= 10:
        raise ValueError(f"test_fold must be in 1..10, got {test_fold}")
    val_fold = (test_fold - 2) % 10 + 1
    csv_path = root / "metadata" / "UrbanSound8K.csv"
    names: dict[int, str] = {}
    split: dict[str, list[AudioItem]] = {"train": [], "val": [], "test": []}
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"slice_file_name", "fold", "classID", "class"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{csv_path}: missing columns {sorted(missing)}")
        for line, r in enumerate(reader, start=2):
            try:
                fold, cid = int(r["fold"]), int(r["classID"])
            except (TypeError, ValueError) as err:
                raise ValueError(f"{csv_path}:{line}: bad row {r} ({err})") from err
            names.setdefault(cid, r["class"])
            key = "test" if fold == test_fold else "val" if fold == val_fold else "train"
            split[key].append(AudioItem(root / "audio" / f"fold{fold}" / r["slice_file_name"], cid))
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{csv_path}: classIDs must be 0..{len(names) - 1}, got {sorted(names)}")
    return AudioSplits(
        "urbansound8k",
        [names[i] for i in range(len(names))],
        split["train"],
        split["val"],
        split["test"],
        dict(US8K_DEFAULTS, folds={"val": val_fold, "test": test_fold}),
    )
