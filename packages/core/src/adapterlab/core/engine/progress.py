"""tqdm progress bar that stays quiet off a terminal, under CI, and on non-main processes."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

__all__ = ["make_progress", "progress", "progress_enabled"]

T = TypeVar("T")


def progress_enabled(requested: bool | None = True, is_main: bool = True) -> bool:
    """True only when asked for (None counts as yes), on the main process, on a TTY, and with no
    ``CI`` variable."""
    return bool(
        (requested is None or requested)
        and is_main
        and sys.stderr.isatty()
        and not os.environ.get("CI")
    )


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


def progress(
    items: Iterable[T],
    *,
    desc: str,
    total: int | None = None,
    enabled: bool | None = True,
    **kw: Any,
) -> Iterable[T]:
    """Wrap ``items`` in a tqdm bar when :func:`progress_enabled` says so (else no-op)."""
    return tqdm(
        items,
        desc=desc,
        total=total,
        disable=not progress_enabled(enabled),
        dynamic_ncols=True,
        leave=False,
        **kw,
    )
