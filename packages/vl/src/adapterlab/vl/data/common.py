"""Example types and careful file readers shared by the dataset loaders (the core's
:class:`~adapterlab.core.engine.DataFileError` and readers: one error style in every package)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapterlab.core.engine import DataFileError, iter_jsonl
from adapterlab.core.engine import read_json as core_read_json
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


#: the core's bad-input error (one line: ``"<path>:<line>: <problem>"``), as every package uses
DataError = DataFileError


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
    """Parse a JSON file; a missing, non-UTF-8 or malformed file raises :class:`DataError`
    naming it (and the line)."""
    return core_read_json(path)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Parse a JSON-lines file; a bad line (malformed, non-UTF-8, not an object) raises
    :class:`DataError` naming file and line."""
    return [row for _, row in iter_jsonl(path)]


def load_image(path: str | Path) -> Image.Image:
    """Open an image as RGB; missing, truncated, corrupt or oversized files (PIL's
    decompression-bomb limit, ``Image.MAX_IMAGE_PIXELS``) raise :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "image not found")
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except Image.DecompressionBombError as err:
        raise DataError(path, f"image too large to decode safely ({err})") from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(path, f"unreadable image ({err})") from err


def require(condition: bool, path: Path, problem: str) -> None:
    """Raise :class:`DataError` ``"{path}: {problem}"`` unless ``condition``."""
    if not condition:
        raise DataError(path, problem)
