"""Exceptions raised by the training engine."""

from __future__ import annotations

import errno
from pathlib import Path

__all__ = [
    "BadSampleError",
    "CheckpointError",
    "DataFileError",
    "DiskFullError",
    "NonFiniteLossError",
    "PickleRefusedError",
    "TrainingInterrupted",
]


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


class CheckpointError(ValueError):
    """No checkpoint of a run can be resumed from (each one named with its problem)."""


class DataFileError(ValueError):
    """A data file is missing, unreadable or malformed: one line naming the file, where, and what.

    ``str()`` is ``"<path>:<line>: <problem>"`` when the line is known, ``"<path> (byte N): <problem>"``
    when only the byte offset is, ``"<path>:<line> (byte N): <problem>"`` with both, and
    ``"<path>: <problem>"`` otherwise. Every package's loader errors are this class (or subclasses
    of it: pointclip's ``DataError`` and ``MeshLoadError``, audio's ``AudioFileError``), so they all
    read alike and one ``except DataFileError`` catches any bad input.

    Attributes: ``path`` (str), ``problem`` (str), ``line`` (1-based or None), ``byte`` (0-based
    offset or None).
    """

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        line: int | None = None,
        byte: int | None = None,
    ) -> None:
        self.path = str(path)
        self.problem = " ".join(str(problem).split())  # one line, whatever the cause's text holds
        self.line = line
        self.byte = byte
        where = self.path + (f":{line}" if line is not None else "")
        where += f" (byte {byte})" if byte is not None else ""
        super().__init__(f"{where}: {self.problem}")

    def __reduce__(self):  # picklable across worker processes, subclasses included
        return (_rebuild_data_file_error, (type(self), self.__dict__.copy()))


def _rebuild_data_file_error(cls: type, state: dict) -> DataFileError:
    err = cls.__new__(cls)
    DataFileError.__init__(
        err, state["path"], state["problem"], line=state.get("line"), byte=state.get("byte")
    )
    err.__dict__.update(state)
    return err


class PickleRefusedError(ValueError):
    """A weights file is a pickle (``torch.save``); pickles can run code and are never loaded."""


class DiskFullError(OSError):
    """A write failed because the disk is full or a file-size limit (``ulimit -f``) was hit.

    ``str()`` is one line naming the file and the cause; ``errno`` and ``filename`` are set.
    """

    def __init__(self, path: str | Path, cause: BaseException) -> None:
        code = getattr(cause, "errno", None)
        if code is None:
            text = str(cause)
            code = errno.EFBIG if "too large" in text.lower() else errno.ENOSPC
        super().__init__(code, "disk full or file-size limit reached", str(path))
        self.cause = cause

    def __str__(self) -> str:
        cause = str(self.cause).strip() or type(self.cause).__name__
        return (
            f"cannot write {self.filename}: disk full or file-size limit reached ({cause}); "
            "free some space (or raise `ulimit -f`) and run again"
        )
