"""The package's expected errors (reported by the CLI in one line, exit 1). No heavy imports, so
the CLI can name them before it loads torch-backed modules."""

from __future__ import annotations

__all__ = [
    "CLI_ERRORS",
    "CacheError",
    "DataFileError",
    "DataFormatError",
    "LLMLoadError",
    "WordNetUnavailable",
]


from adapterlab.core.engine.errors import DataFileError


class DataFormatError(DataFileError):
    """A dataset file is malformed or inconsistent: the core's ``DataFileError`` (one line naming
    the file, line or byte, and the problem), built either like it or from a ready message
    ``"<file>[:<line>]: <problem>"``."""

    def __init__(
        self, path: str, problem: str | None = None, *, line: int | None = None,
        byte: int | None = None,
    ) -> None:  # fmt: skip
        if problem is None:  # a ready one-line message
            where, _, problem = path.partition(": ")
            file, _, num = where.rpartition(":")
            if num.isdigit() and file:
                path, line = file, int(num)
            else:
                path = where
        super().__init__(path, problem or "", line=line, byte=byte)


class WordNetUnavailable(RuntimeError):
    """Debian's wordnet-base could not be fetched (no apt, or the archive is unreachable)."""


class LLMLoadError(RuntimeError):
    """The LLM could not be loaded; the message names the offline fix."""


class CacheError(RuntimeError):
    """The cache folder is incomplete or belongs to another model/dataset."""


#: Errors ``adapterlab-graph`` reports in one line (the core adds FileExistsError, ValueError, ...).
CLI_ERRORS = (DataFileError, DataFormatError, WordNetUnavailable, LLMLoadError, CacheError)
