"""Finding and reading source files: by extension, recursively; bad files skipped-and-counted."""

from __future__ import annotations

import os
import sysconfig
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from adapterlab.core.engine import DataFileError

from .token_types import get_language, language_for_path

__all__ = [
    "BadSourceError",
    "MAX_FILE_BYTES",
    "MAX_LINE_CHARS",
    "SourceStats",
    "check_line_length",
    "decode_source",
    "find_sources",
    "read_source",
    "stdlib_root",
]

MAX_FILE_BYTES = 1_000_000
"""Default per-file size limit: larger files are skipped (counted and named), never read."""
MAX_LINE_CHARS = 1_000
"""Default per-line length limit (characters): a file with a longer line (minified or
generated code, a data blob on one line) is skipped, counted and named. The CPython standard
library's longest line is 175 characters."""


class BadSourceError(DataFileError):
    """A source file that cannot be used: the core's one-line data error (file, line or byte,
    problem) plus ``kind``, the skip reason counted in :class:`SourceStats` (``empty``,
    ``binary``, ``undecodable``, ``too_large``, ``long_line``, ``unparsable``, ``unreadable``)."""

    def __init__(
        self,
        path: str | Path,
        problem: str,
        kind: str = "other",
        *,
        line: int | None = None,
        byte: int | None = None,
    ) -> None:
        super().__init__(path, problem, line=line, byte=byte)
        self.kind = kind


@dataclass
class SourceStats:
    """What happened to the files of one preprocessing run."""

    files: int = 0
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    files_with_parse_errors: int = 0
    error_nodes: int = 0
    skipped_files: list[str] = field(default_factory=list)
    """One line per skipped file: its path and why (the BadSourceError message)."""

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

    def summary(self) -> str:
        """One line: kept/total and the skip counts (empty when nothing was skipped)."""
        if not self.skipped:
            return ""
        counts = ", ".join(f"{v} {k}" for k, v in sorted(self.skipped.items()))
        return f"skipped {self.files - self.kept} of {self.files} files ({counts})"


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
    (``empty``, ``binary`` or ``undecodable`` as the first word after the path). The NUL check
    covers the whole file, not a prefix."""
    if not data.strip():
        raise BadSourceError(path, "empty file", "empty")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise BadSourceError(
            path, "binary file (NUL byte), not source code", "binary", line=line, byte=nul
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise BadSourceError(
            path,
            f"undecodable bytes (not UTF-8: {err.reason})",
            "undecodable",
            line=line,
            byte=err.start,
        ) from None
    return text.removeprefix("\ufeff")


def check_line_length(path: str, text: str, max_line_chars: int | None = MAX_LINE_CHARS) -> None:
    """:class:`BadSourceError` (``long_line``) naming the file and its first line longer than
    ``max_line_chars`` characters (lines split on ``\\n`` only; None: no limit)."""
    if max_line_chars is None:
        return
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) > max_line_chars:
            raise BadSourceError(
                path,
                f"long line ({len(line):,} characters, limit {max_line_chars:,}; minified or "
                "generated code?)",
                "long_line",
                line=number,
            )


def read_source(
    path: str | Path,
    *,
    max_bytes: int | None = MAX_FILE_BYTES,
    max_line_chars: int | None = MAX_LINE_CHARS,
) -> str:
    """The text of one source file within the per-file limits, or :class:`BadSourceError`
    naming it: ``unreadable``, ``too_large`` (checked from the file size, before reading),
    ``empty``, ``binary``, ``undecodable`` or ``long_line``."""
    path = str(path)
    try:
        size = os.stat(path).st_size
        if max_bytes is not None and size > max_bytes:
            raise BadSourceError(
                path, f"too large ({size:,} bytes, limit {max_bytes:,})", "too_large"
            )
        data = Path(path).read_bytes()
    except OSError as err:
        raise BadSourceError(path, f"unreadable file: {err}", "unreadable") from None
    text = decode_source(path, data)
    check_line_length(path, text, max_line_chars)
    return text
