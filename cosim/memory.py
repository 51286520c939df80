"""glibc's allocator, set for NumPy's large short-lived temporaries.

By default glibc serves every allocation above its mmap threshold (128 kB at start, raised
as large blocks are freed) with a fresh ``mmap``, whose pages fault in anew on every use;
a Dask nanny's ``MALLOC_TRIM_THRESHOLD_=65536`` pins that threshold at 128 kB for good.
Training and the engine allocate and free arrays of 0.1-30 MB thousands of times a
second, so :func:`tune_malloc` keeps blocks up to 32 MiB on the heap and trims the heap only
beyond 64 MiB of free memory. ``python benchmarks/malloc.py`` measures it (three 10-epoch
digits MLP trainings and a LeNet-5 evaluation under each setting, ratios in one run).
Results do not change, only where memory comes from. ``COSIM_TUNE_MALLOC=0`` leaves glibc
as it is.
"""

from __future__ import annotations

import os
import sys

__all__ = ["tune_malloc"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 64 << 20
_done = False


def tune_malloc() -> bool:
    """Set glibc's mmap and trim thresholds for this process (once; later calls are free).

    Returns whether the allocator was tuned (False off glibc, e.g. macOS or musl)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("COSIM_TUNE_MALLOC") == "0":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
        )
    except (OSError, AttributeError):  # no glibc
        return False
    _done = ok
    return ok
