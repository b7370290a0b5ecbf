"""Keep large CPU allocations in the process (glibc ``mallopt``), for the CLI and the benchmark.

glibc serves every allocation above its mmap threshold (at most 32 MB by default) with a fresh
``mmap`` and gives it back on ``free``, so each new (tokens x vocabulary) tensor of the residual
loss (about 100 MB for 500 tokens and SmolLM2's 49k-token vocabulary) is page-faulted in again at
every step: on a 2-core CPU that kernel time was about half of a pre-training step. Raising the
mmap and trim thresholds lets freed blocks be reused (the same advice as PyTorch's CPU tuning
guide, which preloads jemalloc/tcmalloc for it). Peak memory is unchanged; freed memory stays in
the process until it exits. Only the command-line entry points call this; importing the library
changes nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

__all__ = ["keep_large_allocations"]

log = logging.getLogger("adapterlab.graph")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_large_allocations(threshold_bytes: int = 1 << 30) -> bool:
    """Raise glibc's mmap and trim thresholds to ``threshold_bytes``; False where there is no
    glibc (macOS, Windows, musl) or mallopt refuses (nothing is changed then)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = bool(mallopt(_M_MMAP_THRESHOLD, threshold_bytes)) and bool(
        mallopt(_M_TRIM_THRESHOLD, threshold_bytes)
    )
    if not ok:
        log.debug("mallopt refused the allocation thresholds; kept glibc's defaults")
    return ok
