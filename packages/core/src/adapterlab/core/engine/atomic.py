"""Atomic writes: a reader sees the old file or the new one, never half of either.

Every package writes its results through these helpers, so an interrupted job leaves either the
previous file or the complete new one (plus, at worst, a hidden ``.name.tmp*`` leftover that
:func:`clean_temp_leftovers` removes).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import DiskFullError

__all__ = [
    "atomic_directory",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "clean_temp_leftovers",
    "explain_disk_full",
    "is_disk_full",
    "to_jsonable",
]

_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
# how safetensors (Rust) and other libraries word the same failures
_DISK_FULL_TEXT = (
    "file too large",
    "no space left",
    "disk quota exceeded",
    f"os error {errno.EFBIG})",
    f"os error {errno.ENOSPC})",
    f"os error {errno.EDQUOT})",
)


def is_disk_full(err: BaseException) -> bool:
    """True when ``err`` (an ``OSError``, or a library error wrapping one, such as safetensors'
    ``SafetensorError: File too large``) means a full disk, quota or file-size limit."""
    if isinstance(err, DiskFullError):
        return True
    if isinstance(err, OSError) and err.errno in _DISK_FULL_ERRNOS:
        return True
    text = str(err).lower()
    return any(marker in text for marker in _DISK_FULL_TEXT)


@contextmanager
def explain_disk_full(path: str | Path) -> Iterator[None]:
    """Turn a full-disk / file-size-limit failure inside the block into :class:`DiskFullError`,
    whose one-line message names the file (the error's own file name, else ``path``)."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as err:
        if not is_disk_full(err):
            raise
        raise DiskFullError(getattr(err, "filename", None) or path, err) from err


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        with explain_disk_full(path), open(tmp, "wb") as handle:
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
    old = None
    try:
        with explain_disk_full(directory):
            write(tmp)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            os.replace(directory, old)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not directory.exists():
            os.replace(old, directory)  # put the previous version back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def clean_temp_leftovers(folder: str | Path, name: str | None = None) -> list[Path]:
    """Remove the hidden ``.name.tmp*`` / ``.name.old-*`` leftovers of interrupted atomic writes.

    A process killed between the two renames of a swap leaves the target missing and its previous
    version as ``.name.old-*``: that one is renamed back instead of removed. With ``name`` only
    that target's leftovers are handled; returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed: list[Path] = []
    for old in sorted(folder.glob(f".{name}.old-*" if name else ".*.old-*")):
        target = folder / old.name[1:].rsplit(".old-", 1)[0]
        if not target.exists():
            os.replace(old, target)
            continue
        _remove(old)
        removed.append(old)
    for leftover in sorted(folder.glob(f".{name}.tmp*" if name else ".*.tmp*")):
        _remove(leftover)
        removed.append(leftover)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
