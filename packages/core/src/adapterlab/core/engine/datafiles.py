"""Careful readers for data files: every problem becomes one :class:`DataFileError` line.

All packages read their text, JSON, JSON-lines and gzip files through these helpers, so bad input
is reported the same way everywhere: ``"<path>:<line>: <problem>"`` (or ``"<path> (byte N): ..."``).

- A missing file, a directory, non-UTF-8 bytes (with line and byte offset), malformed JSON (with
  line and column), a truncated or corrupt ``.gz`` all raise :class:`DataFileError`.
- Lines split on ``"\\n"`` only (``"\\r\\n"`` is tolerated), never on ``\\f``, ``\\u2028`` or
  ``\\u2029`` as ``str.splitlines`` would: a record's line number is its line in an editor.
- Paths ending in ``.gz`` are decompressed transparently; byte offsets then count decompressed bytes.
- :class:`SkipCounter` counts and names the bad samples a job was asked to skip.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from .errors import DataFileError

__all__ = [
    "DataFileError",
    "SkipCounter",
    "iter_jsonl",
    "iter_lines",
    "open_gzip_text",
    "open_text",
    "read_bytes",
    "read_json",
    "read_text",
]

#: errors a truncated or corrupt gzip stream raises while being read
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataFileError(path, "no such file")
    if path.is_dir():
        raise DataFileError(path, "is a directory, expected a file")


def _gzip_problem(err: BaseException) -> str:
    if isinstance(err, EOFError):
        return "truncated gzip file (compressed stream ended early)"
    return f"corrupt gzip file ({err})"


@contextmanager
def _binary(path: Path) -> Iterator[IO[bytes]]:
    """Open ``path`` for binary reading (``.gz`` decompressed); gzip and OS errors become
    :class:`DataFileError`, also when raised while the caller reads inside the block."""
    _check_file(path)
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as fh:
            yield fh
    except _GZIP_ERRORS as err:
        raise DataFileError(path, _gzip_problem(err)) from err
    except PermissionError as err:
        raise DataFileError(path, "permission denied") from err
    except IsADirectoryError as err:  # pragma: no cover - checked above, kept for races
        raise DataFileError(path, "is a directory, expected a file") from err


def _decode_error(
    path: Path, err: UnicodeDecodeError, data: bytes, line: int, offset: int, encoding: str
) -> DataFileError:
    """``err`` raised decoding ``data``, which starts at ``line`` / byte ``offset`` of the file."""
    before = data[: err.start]
    bad = data[err.start : err.start + 4]
    return DataFileError(
        path,
        f"not valid {encoding} text (byte 0x{bad[:1].hex()} cannot be decoded: {err.reason})",
        line=line + before.count(b"\n"),
        byte=offset + err.start,
    )


def read_bytes(path: str | Path) -> bytes:
    """The whole file's bytes (``.gz`` decompressed); errors as :class:`DataFileError`."""
    path = Path(path)
    with _binary(path) as fh:
        return fh.read()


def read_text(path: str | Path, *, encoding: str = "utf-8") -> str:
    """The whole file as text; undecodable bytes raise :class:`DataFileError` naming the line
    and byte offset of the first bad byte; a missing file raises "no such file"."""
    path = Path(path)
    data = read_bytes(path)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise _decode_error(path, err, data, 1, 0, encoding) from err


def read_json(path: str | Path, *, encoding: str = "utf-8") -> Any:
    """Parse a JSON file; malformed JSON raises :class:`DataFileError` with line and column."""
    path = Path(path)
    text = read_text(path, encoding=encoding)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFileError(
            path, f"malformed JSON: {err.msg} (column {err.colno})", line=err.lineno
        ) from err


def iter_lines(
    path: str | Path,
    *,
    encoding: str = "utf-8",
    max_line_bytes: int | None = None,
) -> Iterator[tuple[int, str]]:
    """Yield ``(line_no, line)`` (1-based; the newline and a trailing ``"\\r"`` removed).

    Streams the file (constant memory). Splits on ``"\\n"`` only. Non-decodable bytes raise
    :class:`DataFileError` naming the line and the byte offset; a line longer than
    ``max_line_bytes`` raises one too (before the long line is read into memory whole).
    """
    path = Path(path)
    offset = 0
    with _binary(path) as fh:
        number = 0
        while True:
            limit = -1 if max_line_bytes is None else max_line_bytes + 2  # room for "\r\n"
            raw = fh.readline(limit)
            if not raw:
                return
            number += 1
            if max_line_bytes is not None and not raw.endswith(b"\n") and len(raw) == limit:
                raise DataFileError(
                    path, f"line longer than {max_line_bytes} bytes", line=number, byte=offset
                )
            body = raw[:-1] if raw.endswith(b"\n") else raw
            body = body[:-1] if body.endswith(b"\r") else body
            if max_line_bytes is not None and len(body) > max_line_bytes:
                raise DataFileError(
                    path, f"line longer than {max_line_bytes} bytes", line=number, byte=offset
                )
            try:
                text = body.decode(encoding)
            except UnicodeDecodeError as err:
                raise _decode_error(path, err, body, number, offset, encoding) from err
            offset += len(raw)
            yield number, text


def iter_jsonl(
    path: str | Path,
    *,
    require_object: bool = True,
    max_line_bytes: int | None = None,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_no, record)`` for each non-blank line of a JSON-lines file.

    Malformed JSON, non-UTF-8 bytes, and (with ``require_object``) a line that is not a JSON
    object raise :class:`DataFileError` naming the file and the line.
    """
    path = Path(path)
    for number, line in iter_lines(path, max_line_bytes=max_line_bytes):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFileError(
                path, f"malformed JSON: {err.msg} (column {err.colno})", line=number
            ) from err
        if require_object and not isinstance(record, dict):
            raise DataFileError(
                path, f"expected a JSON object, got {type(record).__name__}", line=number
            )
        yield number, record


@contextmanager
def open_text(path: str | Path, *, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """Open a text file (``.gz`` decompressed) for ``csv``/``pandas`` readers and the like.

    Errors raised while the caller reads inside the ``with`` block (a truncated gzip stream,
    undecodable bytes) become :class:`DataFileError` naming the file. Newlines are kept as in
    the file (``newline=""``, as the ``csv`` module wants).
    """
    path = Path(path)
    with _binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        try:
            yield text
        except UnicodeDecodeError as err:
            raise DataFileError(
                path, f"not valid {encoding} text ({err.reason} at a byte near {err.start})"
            ) from err
        finally:
            text.detach()


#: the name the contract promised for the gzip case; :func:`open_text` reads plain files too
open_gzip_text = open_text


class SkipCounter:
    """Counts and names bad samples that a job was told to skip instead of stopping on.

    Example::

        skipped = SkipCounter(skip=cfg.skip_bad_samples)
        for path in files:
            try:
                rows.append(load(path))
            except DataFileError as err:
                skipped.add(err)          # re-raises unless skip=True
        print(skipped.summary())          # "skipped 2 bad files: a.jsonl:3: ...; b.jsonl: ..."
    """

    def __init__(self, *, skip: bool = True, what: str = "bad samples", show: int = 5) -> None:
        self.skip = skip
        self.what = what
        self.show = show
        self.errors: list[str] = []

    def add(self, err: BaseException | str) -> None:
        """Record one bad sample (an error or a one-line description); re-raise an error when
        the counter does not skip."""
        if not self.skip and isinstance(err, BaseException):
            raise err
        self.errors.append(str(err))

    def __len__(self) -> int:
        return len(self.errors)

    @property
    def count(self) -> int:
        """How many samples were skipped."""
        return len(self.errors)

    def summary(self) -> str:
        """One line: how many were skipped and the first ``show`` of them, or '' if none."""
        if not self.errors:
            return ""
        shown = "; ".join(self.errors[: self.show])
        more = f"; and {len(self.errors) - self.show} more" if len(self.errors) > self.show else ""
        return f"skipped {len(self.errors)} {self.what}: {shown}{more}"

    def to_json(self) -> dict[str, Any]:
        """``{"count": n, "skipped": [messages]}`` for ``metrics.json``."""
        return {"count": len(self.errors), "skipped": list(self.errors)}
