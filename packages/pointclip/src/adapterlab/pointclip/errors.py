"""The package's own error types (a leaf module: the CLI names them without importing torch)."""

from __future__ import annotations

__all__ = ["DataError", "PretrainedWeightsError"]  # noqa: F822 (DataError: __getattr__)


class PretrainedWeightsError(RuntimeError):
    """Raised when CLIP weights cannot be obtained (offline, unknown tag, bad file)."""


def __getattr__(name: str):
    # ``DataError`` is the core's DataFileError ("<file>:<line>: <problem>", the style of every
    # package), imported on first use so that this module stays free of torch for the CLI.
    if name == "DataError":
        from adapterlab.core.engine.errors import DataFileError

        return DataFileError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
