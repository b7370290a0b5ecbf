"""UrbanSound8K (Salamon et al., 2014): ``metadata/UrbanSound8K.csv`` + ``audio/fold<k>/*.wav``, 10 folds.

Two protocols. ``"ours"`` (the default): the fold before the test fold (cyclically) validates and the other
8 folds train, so checkpoint selection never sees the test fold. ``"original"`` (PETL-AST, for reproducing
its numbers): the other 9 folds train and the *test* fold also selects the best checkpoint, which leaks test
data into model selection.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from .common import AudioItem, AudioSplits, check_nonempty, check_root, open_csv

US8K_DEFAULTS = {
    "target_frames": 400,
    "spec_augment": True,
    "kernel_size": 8,
    "epochs": 30,
    "batch_size": 32,
    "task": "sound",
}


def load_urbansound8k(
    root: str | os.PathLike, test_fold: int = 10, protocol: str = "ours"
) -> AudioSplits:
    """Splits of UrbanSound8K with ``test_fold`` held out (``protocol``: see the module docstring)."""
    if protocol not in ("ours", "original"):
        raise ValueError(f"UrbanSound8K protocol must be 'ours' or 'original', got {protocol!r}")
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
    val_fold = (test_fold - 2) % 10 + 1 if protocol == "ours" else None
    csv_path = root / "metadata" / "UrbanSound8K.csv"
    names: dict[int, str] = {}
    split: dict[str, list[AudioItem]] = {"train": [], "val": [], "test": []}
    with open_csv(csv_path) as f:
        reader = csv.DictReader(f)
        missing = {"slice_file_name", "fold", "classID", "class"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{csv_path}: missing columns {sorted(missing)}")
        for line, r in enumerate(reader, start=2):
            try:
                fold, cid = int(r["fold"]), int(r["classID"])
            except (TypeError, ValueError) as err:
                raise ValueError(f"{csv_path}:{line}: bad row {r} ({err})") from err
            if not 1 <= fold <= 10:
                raise ValueError(f"{csv_path}:{line}: fold {fold} outside 1..10")
            if names.setdefault(cid, r["class"]) != r["class"]:
                raise ValueError(
                    f"{csv_path}:{line}: classID {cid} has two class names "
                    f"({names[cid]!r}, {r['class']!r})"
                )
            item = AudioItem(root / "audio" / f"fold{fold}" / r["slice_file_name"], cid)
            if fold == test_fold:
                split["test"].append(item)
                if protocol == "original":
                    split["val"].append(item)
            else:
                split["val" if fold == val_fold else "train"].append(item)
    check_nonempty(split, csv_path, f"test fold {test_fold}")
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{csv_path}: classIDs must be 0..{len(names) - 1}, got {sorted(names)}")
    return AudioSplits(
        "urbansound8k",
        [names[i] for i in range(len(names))],
        split["train"],
        split["val"],
        split["test"],
        dict(
            US8K_DEFAULTS,
            folds={"val": val_fold or test_fold, "test": test_fold},
            protocol=protocol,
        ),
    )
