"""SIGINT/SIGTERM turn into a "checkpoint and stop" request checked at step boundaries."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType, TracebackType

__all__ = ["StopRequest"]

log = logging.getLogger("adapterlab.core.engine")


class StopRequest:
    """Context manager: while active, SIGINT/SIGTERM set ``signum`` instead of killing the run.

    A second SIGINT raises ``KeyboardInterrupt`` at once (to force quit without the checkpoint).
    Handlers are only installed from the main thread and are restored on exit.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        log.warning(
            "received %s: writing a checkpoint at the next step boundary, then stopping "
            "(press Ctrl-C again to quit without it)",
            signal.Signals(signum).name,
        )

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()
