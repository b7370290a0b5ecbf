"""The package's expected errors (reported by the CLI in one line, exit 1). No heavy imports, so
the CLI can name them before it loads torch-backed modules."""

from __future__ import annotations

__all__ = ["CLI_ERRORS", "CacheError", "DataFormatError", "LLMLoadError", "WordNetUnavailable"]


class DataFormatError(ValueError):
    """A dataset file is malformed or inconsistent; the message names the file (and line)."""


class WordNetUnavailable(RuntimeError):
    """Debian's wordnet-base could not be fetched (no apt, or the archive is unreachable)."""


class LLMLoadError(RuntimeError):
    """The LLM could not be loaded; the message names the offline fix."""


class CacheError(RuntimeError):
    """The cache folder is incomplete or belongs to another model/dataset."""


#: Errors ``adapterlab-graph`` reports in one line (the core adds FileExistsError, ValueError, ...).
CLI_ERRORS = (DataFormatError, WordNetUnavailable, LLMLoadError, CacheError)
