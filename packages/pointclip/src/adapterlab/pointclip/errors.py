"""The package's own error types (a leaf module: the CLI names them without importing torch)."""

from __future__ import annotations

__all__ = ["DataError", "PretrainedWeightsError"]


class PretrainedWeightsError(RuntimeError):
    """Raised when CLIP weights cannot be obtained (offline, unknown tag, bad file)."""


class DataError(ValueError):
    """A dataset file or folder is malformed; the message names the file and the problem."""
