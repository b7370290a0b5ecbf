"""Fluent Speech Commands (Lugosch et al., 2019): ``data/{train,valid,test}_data.csv`` + ``wavs/speakers/...``.

The intent (31 classes) is ``action + object + location`` of each row, as in PETL-AST. The study uses 400 frames,
75 epochs, batch 32, kernel 31.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from .common import AudioItem, AudioSplits, check_root, open_csv

FSC_DEFAULTS = {
    "target_frames": 400,
    "spec_augment": False,
    "kernel_size": 31,
    "epochs": 75,
    "batch_size": 32,
    "task": "speech",
}


def _read(csv_path: Path) -> list[tuple[str, str]]:
    """``(relative wav path, intent)`` rows of one split csv; bad encoding, columns or rows name the file."""
    out = []
    with open_csv(csv_path) as f:
        reader = csv.DictReader(f)
        missing = {"path", "action", "object", "location"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{csv_path}: missing columns {sorted(missing)}")
        for line, r in enumerate(reader, start=2):
            fields = [r.get(k) for k in ("path", "action", "object", "location")]
            if any(v is None or not v.strip() for v in fields[:2]) or None in fields:
                raise ValueError(f"{csv_path}:{line}: incomplete row {r}")
            out.append((r["path"], f"{r['action']}|{r['object']}|{r['location']}"))
    return out


def load_fluent_speech(root: str | os.PathLike) -> AudioSplits:
    """Official splits of FSC (``root`` is ``fluent_speech_commands_dataset`` or its parent)."""
    p = Path(root).expanduser()
    if not (p / "data").is_dir() and (p / "fluent_speech_commands_dataset").is_dir():
        p = p / "fluent_speech_commands_dataset"
    root = check_root(
        p,
        "data/train_data.csv",
        "Fluent Speech Commands",
        "Expected <root>/data/{train,valid,test}_data.csv and the wavs/ folder.",
    )
    rows = {}
    for s in ("train", "valid", "test"):
        path = root / "data" / f"{s}_data.csv"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: missing (Fluent Speech Commands has train, valid, test)"
            )
        rows[s] = _read(path)
        if not rows[s]:
            raise ValueError(f"{path}: no clips listed (the {s} split would be empty)")
    classes = sorted({intent for _, intent in rows["train"]})
    ids = {c: i for i, c in enumerate(classes)}
    split: dict[str, list[AudioItem]] = {}
    for s, key in (("train", "train"), ("valid", "val"), ("test", "test")):
        unknown = sorted({i for _, i in rows[s]} - set(ids))
        if unknown:
            raise ValueError(
                f"{root / 'data' / f'{s}_data.csv'}: intents not in train: {unknown[:3]}"
            )
        split[key] = [AudioItem(root / rel, ids[intent]) for rel, intent in rows[s]]
    return AudioSplits(
        "fluent_speech", classes, split["train"], split["val"], split["test"], dict(FSC_DEFAULTS)
    )
