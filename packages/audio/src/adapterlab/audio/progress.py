"""When to show progress bars (tqdm): only if asked, on an interactive terminal, and not under CI."""

from __future__ import annotations

import os
import sys


def progress_enabled(requested: bool | None = True) -> bool:
    """True when ``requested`` (None counts as yes), stderr is a TTY and the CI variable is unset."""
    return (
        (requested is None or bool(requested)) and sys.stderr.isatty() and not os.environ.get("CI")
    )
