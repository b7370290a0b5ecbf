"""Example types and careful file readers shared by the dataset loaders."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

__all__ = [
    "CaptionExample",
    "DataError",
    "VEExample",
    "VQAExample",
    "load_image",
    "read_json",
    "read_jsonl",
]


class DataError(ValueError):
    """A dataset file is missing, unreadable or inconsistent (the message names the file)."""


@dataclass
class VQAExample:
    """One question about one image with its human answers (VQAv2 / VizWiz)."""

    question_id: int | str
    image: Path
    question: str
    answers: list[str]
    question_type: str = ""
    answer_type: str = ""

    @property
    def answer(self) -> str:
        """The most frequent human answer (the training target)."""
        return max(self.answers, key=self.answers.count)


@dataclass
class CaptionExample:
    """One image with its reference captions (COCO Karpathy)."""

    image_id: int | str
    image: Path
    captions: list[str] = field(default_factory=list)


@dataclass
class VEExample:
    """One SNLI-VE pair: image premise, text hypothesis, label."""

    pair_id: str
    image: Path
    hypothesis: str
    label: str


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing or malformed file raises :class:`DataError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: malformed JSON ({err})") from err


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Parse a JSON-lines file; a bad line raises :class:`DataError` naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{number}: malformed JSON line ({err})") from err
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object per line")
            rows.append(row)
    return rows


def load_image(path: str | Path) -> Image.Image:
    """Open an image as RGB; missing, truncated, corrupt or oversized files (PIL's
    decompression-bomb limit, ``Image.MAX_IMAGE_PIXELS``) raise :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image not found")
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except Image.DecompressionBombError as err:
        raise DataError(f"{path}: image too large to decode safely ({err})") from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(f"{path}: unreadable image ({err})") from err


def require(condition: bool, path: Path, problem: str) -> None:
    """Raise :class:`DataError` ``"{path}: {problem}"`` unless ``condition``."""
    if not condition:
        raise DataError(f"{path}: {problem}")
