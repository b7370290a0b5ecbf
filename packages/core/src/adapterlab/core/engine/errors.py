"""Exceptions raised by the training engine."""

from __future__ import annotations

__all__ = ["BadSampleError", "NonFiniteLossError", "TrainingInterrupted"]


class BadSampleError(RuntimeError):
    """A data item (or the collation of a batch) raised; the message names index and source."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is left untouched."""


class TrainingInterrupted(RuntimeError):
    """SIGINT/SIGTERM arrived; a checkpoint was written so ``resume=True`` continues the run."""

    def __init__(self, message: str, signum: int = 2, checkpoint: str | None = None) -> None:
        super().__init__(message)
        self.signum = signum
        self.checkpoint = checkpoint

    @property
    def exit_code(self) -> int:
        """Conventional shell exit code (128 + signal number)."""
        return 128 + self.signum
