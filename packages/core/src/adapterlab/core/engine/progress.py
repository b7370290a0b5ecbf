"""tqdm progress bar that stays quiet off a terminal, under CI, and on non-main processes."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm

__all__ = ["progress_enabled", "make_progress"]


def progress_enabled(requested: bool, is_main: bool) -> bool:
    """True only when asked for, on the main process, on a TTY, and with no ``CI`` variable."""
    return bool(requested and is_main and sys.stderr.isatty() and not os.environ.get("CI"))


def make_progress(total: int, initial: int, enabled: bool) -> tqdm:
    """A step counter bar; ``set_postfix`` carries loss and samples/s."""
    return tqdm(
        total=total,
        initial=initial,
        disable=not enabled,
        unit="step",
        dynamic_ncols=True,
        leave=True,
    )
