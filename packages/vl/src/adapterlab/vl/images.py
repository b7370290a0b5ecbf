"""Images streamed from disk: each distinct image is decoded and preprocessed once, in batches
(optionally in DataLoader workers), and its pixels appended to a float32 cache file on disk;
datasets read one image back per item (``os.pread``). Memory holds one batch and an index, so it
does not grow with the dataset (tested: 20,000 against 2,000 images)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from adapterlab.core.engine import atomic_write_text
from torch.utils.data import DataLoader, Dataset

from .data import DataError, load_image

__all__ = ["EncodedImages", "ImageStore", "encode_images"]


class ImageStore:
    """Preprocessed pixels by image path, read from a cache file (mapping-like: ``in``, ``[]``)."""

    def __init__(self, file: Path, index: dict[Path, int], shape: tuple[int, ...]) -> None:
        self.file, self.index, self.shape = Path(file), index, tuple(shape)
        self._nbytes = int(np.prod(shape)) * 4
        self._fd: int | None = None
        self._pid = -1

    def __contains__(self, path: object) -> bool:
        return path in self.index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, path: Path) -> torch.Tensor:
        if self._fd is None or self._pid != os.getpid():  # reopen in each process
            self._fd, self._pid = os.open(self.file, os.O_RDONLY), os.getpid()
        raw = os.pread(self._fd, self._nbytes, self.index[path] * self._nbytes)
        return torch.from_numpy(np.frombuffer(raw, dtype=np.float32).copy()).view(self.shape)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fd": None, "_pid": -1}


@dataclass
class EncodedImages:
    """Preprocessed pixels by image path (an :class:`ImageStore` or a dict); ``bad`` lists
    skipped files and why."""

    pixels: Any
    bad: list[tuple[Path, str]]


class _Decode(Dataset):
    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, Any]:
        try:
            return i, load_image(self.paths[i])
        except DataError as err:
            return i, err


def _stamp(path: Path) -> list:
    try:
        st = path.stat()
    except OSError:
        return [str(path)]
    return [str(path), st.st_size, st.st_mtime_ns]


def _key(paths: Sequence[Path], image_processor: Any) -> str:
    """Cache key: every image's path, size and modification time, and the processor."""
    cfg = (
        image_processor.to_dict() if hasattr(image_processor, "to_dict") else repr(image_processor)
    )
    blob = json.dumps([[_stamp(p) for p in paths], cfg], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _as_list(items: list) -> list:
    return items


def encode_images(
    paths: Sequence[Path],
    image_processor: Any,
    *,
    skip_bad: bool = False,
    batch: int = 64,
    cache_dir: str | Path | None = None,
    workers: int = 0,
) -> EncodedImages:
    """Load and preprocess every distinct image once into a cache file under ``cache_dir``
    (a temporary folder when None; reused when the same paths and processor wrote it). Bad
    files raise :class:`DataError`, or are skipped and listed with ``skip_bad``."""
    unique = list(dict.fromkeys(Path(p) for p in paths))
    folder = Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp(prefix="vl-images-"))
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"pixels-{_key(unique, image_processor)}.f32"
    meta = file.with_suffix(".json")
    if file.is_file() and meta.is_file():
        info = json.loads(meta.read_text())
        index = {Path(p): i for i, p in enumerate(info["paths"])}
        bad = [(Path(p), why) for p, why in info["bad"]]
        return EncodedImages(ImageStore(file, index, tuple(info["shape"])), bad)
    index: dict[Path, int] = {}
    bad: list[tuple[Path, str]] = []
    shape: tuple[int, ...] = ()
    loader = DataLoader(_Decode(unique), batch_size=batch, num_workers=workers, collate_fn=_as_list)
    tmp = file.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as out:
        for items in loader:
            images = []
            for i, got in items:
                if isinstance(got, DataError):
                    if not skip_bad:
                        raise got
                    bad.append((unique[i], str(got)))
                else:
                    images.append((i, got))
            if not images:
                continue
            pixels = image_processor(images=[im for _, im in images], return_tensors="pt")
            pixels = pixels["pixel_values"].float().contiguous()
            shape = tuple(pixels.shape[1:])
            out.write(pixels.numpy().tobytes())
            for i, _ in images:
                index[unique[i]] = len(index)
    os.replace(tmp, file)
    atomic_write_text(
        meta,
        json.dumps({"paths": [str(p) for p in index], "bad": [[str(p), w] for p, w in bad],
                    "shape": list(shape)}),
    )  # fmt: skip
    return EncodedImages(ImageStore(file, index, shape), bad)
