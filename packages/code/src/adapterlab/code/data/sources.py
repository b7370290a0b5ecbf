"""Finding and reading source files: by extension, recursively; bad files skipped-and-counted."""

from __future__ import annotations

import sysconfig
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .token_types import get_language, language_for_path

__all__ = [
    "BadSourceError",
    "SourceStats",
    "decode_source",
    "find_sources",
    "stdlib_root",
]

_BINARY_PROBE = 8192


class BadSourceError(ValueError):
    """A source file that cannot be used (empty, binary, undecodable, unparsable)."""


@dataclass
class SourceStats:
    """What happened to the files of one preprocessing run."""

    files: int = 0
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    files_with_parse_errors: int = 0
    error_nodes: int = 0

    def as_dict(self) -> dict[str, int]:
        """Flat counts for JSON."""
        out = {
            "files": self.files,
            "kept": self.kept,
            "files_with_parse_errors": self.files_with_parse_errors,
            "error_nodes": self.error_nodes,
        }
        out.update({f"skipped_{k}": v for k, v in sorted(self.skipped.items())})
        return out


def stdlib_root() -> Path:
    """The CPython standard library folder of the running interpreter."""
    return Path(sysconfig.get_paths()["stdlib"])


def find_sources(root: str | Path, languages: list[str] | None = None) -> list[tuple[str, str]]:
    """``(path, language)`` of every file under ``root`` (recursively) whose suffix belongs to a
    supported language (``languages`` restricts them), sorted by path.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: an unknown language, or no matching file.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"source folder {root} does not exist")
    wanted = {get_language(name).name for name in languages} if languages else None
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    found: list[tuple[str, str]] = []
    for path in paths:
        spec = language_for_path(path.name)
        if spec is not None and (wanted is None or spec.name in wanted):
            found.append((str(path), spec.name))
    if not found:
        raise ValueError(
            f"no source files of {sorted(wanted) if wanted else 'any supported language'} "
            f"under {root}"
        )
    return found


def decode_source(path: str, data: bytes) -> str:
    """UTF-8 text of a source file, or :class:`BadSourceError` naming the file and the problem
    (``empty``, ``binary`` or ``undecodable`` as the first word after the path)."""
    if not data.strip():
        raise BadSourceError(f"{path}: empty file")
    if b"\x00" in data[:_BINARY_PROBE]:
        raise BadSourceError(f"{path}: binary file (NUL bytes), not source code")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadSourceError(
            f"{path}: undecodable bytes (not UTF-8) at byte {err.start}: {err.reason}"
        ) from None
    return text.removeprefix("\ufeff")


def problem_kind(err: BadSourceError) -> str:
    """``empty`` / ``binary`` / ``undecodable`` / ``parse_errors`` from an error message."""
    message = str(err)
    for kind in ("empty", "binary", "undecodable", "parse errors"):
        if f": {kind}" in message:
            return kind.replace(" ", "_")
    return "other"
