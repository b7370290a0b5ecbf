"""Google Speech Commands v2 (Warden, 2018): ``<word>/<clip>.wav`` + ``validation_list.txt``/``testing_list.txt``.

All 35 word folders are classes (folders starting with ``_``, e.g. ``_background_noise_``, are not). Train is
every clip listed in neither file. The study uses 100 frames, 75 epochs, batch 128, no SpecAugment, kernel 31.
"""

from __future__ import annotations

import os
from pathlib import Path

from .common import AudioItem, AudioSplits, check_nonempty, check_root

GSC_DEFAULTS = {
    "target_frames": 100,
    "spec_augment": False,
    "kernel_size": 31,
    "epochs": 75,
    "batch_size": 128,
    "task": "speech",
}


def _read_list(path: Path) -> set[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at offset {err.start})") from None
    return {ln.strip() for ln in text.splitlines() if ln.strip()}


def load_speech_commands(root: str | os.PathLike) -> AudioSplits:
    """Official splits of Speech Commands v2 (``root`` is the ``speech_commands_v0.02`` folder or its parent)."""
    p = Path(root).expanduser()
    if not (p / "testing_list.txt").is_file() and (p / "speech_commands_v0.02").is_dir():
        p = p / "speech_commands_v0.02"
    root = check_root(
        p,
        "testing_list.txt",
        "Speech Commands v2",
        "Expected <root>/validation_list.txt, <root>/testing_list.txt and <root>/<word>/*.wav.",
    )
    if not (root / "validation_list.txt").is_file():
        raise FileNotFoundError(f"{root}: missing validation_list.txt (Speech Commands v2 layout)")
    val_set, test_set = (
        _read_list(root / "validation_list.txt"),
        _read_list(root / "testing_list.txt"),
    )
    folders = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(("_", "."))]
    empty = sorted(d.name for d in folders if not any(d.glob("*.wav")))
    if empty:
        raise ValueError(
            f"{root}: word folder(s) {empty} hold no .wav files (a class without clips); "
            "remove them or move them out of the dataset folder"
        )
    classes = sorted(d.name for d in folders)
    if not classes:
        raise ValueError(f"{root}: no word folders found")
    ids = {c: i for i, c in enumerate(classes)}
    split: dict[str, list[AudioItem]] = {"train": [], "val": [], "test": []}
    for c in classes:
        for wav in sorted((root / c).glob("*.wav")):
            rel = f"{c}/{wav.name}"
            key = "test" if rel in test_set else "val" if rel in val_set else "train"
            split[key].append(AudioItem(wav, ids[c]))
    for name, listed in (("validation_list.txt", val_set), ("testing_list.txt", test_set)):
        unknown = sorted(r for r in listed if r.split("/")[0] not in ids)
        if unknown:
            raise ValueError(f"{root / name}: names clips of unknown words, e.g. {unknown[:3]}")
        missing = sorted(r for r in listed if not (root / r).is_file())
        if missing:
            raise ValueError(
                f"{root / name}: names {len(missing)} clip(s) that do not exist, e.g. {missing[:3]}"
            )
    both = sorted(val_set & test_set)
    if both:
        raise ValueError(
            f"{root}: {len(both)} clip(s) are in both validation and testing lists, e.g. {both[:3]}"
        )
    check_nonempty(split, root, "Speech Commands v2 lists")
    return AudioSplits(
        "speech_commands", classes, split["train"], split["val"], split["test"], dict(GSC_DEFAULTS)
    )
