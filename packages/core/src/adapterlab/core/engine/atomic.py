"""Atomic writes: a reader sees the old file or the new one, never half of either.

Every package writes its results through these helpers, so an interrupted job leaves either the
previous file or the complete new one (plus, at worst, a hidden ``.name.tmp*`` leftover that
:func:`clean_temp_leftovers` removes).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_directory",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "clean_temp_leftovers",
    "to_jsonable",
]


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Dataclass-like dicts, tuples, paths, tensors and numpy scalars -> JSON-safe values.

    Non-finite floats become the strings ``"nan"``, ``"inf"`` and ``"-inf"`` (JSON has none).
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and callable(obj.tolist):  # tensors, numpy arrays and scalars
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return str(obj)
    return obj


def atomic_write_json(path: str | Path, payload: Any, *, indent: int = 2) -> None:
    """Write ``payload`` as JSON (see :func:`to_jsonable`) atomically, with a final newline."""
    atomic_write_text(path, json.dumps(to_jsonable(payload), indent=indent) + "\n")


def atomic_directory(directory: str | Path, write: Callable[[Path], None]) -> None:
    """Fill a fresh temporary folder with ``write(tmp)``, then swap it in for ``directory``.

    An existing ``directory`` is replaced whole only after ``write`` succeeded; on any error the
    temporary folder is removed and ``directory`` is untouched. Use it for folders the caller owns
    entirely (a checkpoint, a rendered item); to update a few files in a user's folder use
    :func:`atomic_write_bytes` per file instead.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        write(tmp)
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def clean_temp_leftovers(folder: str | Path, name: str | None = None) -> list[Path]:
    """Remove the hidden ``.name.tmp*`` / ``.name.old-*`` leftovers of interrupted atomic writes.

    With ``name`` only that target's leftovers go; returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    patterns = [f".{name}.tmp*", f".{name}.old-*"] if name else [".*.tmp*", ".*.old-*"]
    removed: list[Path] = []
    for pattern in patterns:
        for leftover in folder.glob(pattern):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
