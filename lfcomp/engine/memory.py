"""The process's memory allocator, set for the buffers a stage allocates and frees at every step.

glibc hands an allocation above its mmap threshold (128 KiB at first, raised dynamically up to
32 MiB) straight from the OS, and gives freed memory at the top of the heap back once it exceeds
the trim threshold; each new buffer is then page-faulted again. Rendering and training allocate and
free activations of a few MiB per chunk or step, so a decode spent a third of its time in the
kernel: 81 quick NeRF views of 128², one thread, 48.7-62.1 s wall with 10-22 s of system time,
against 31-32 s and 0.6 s with the thresholds below (a training step: 50.4 against 45.1 ms).
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed_memory"]

MMAP_THRESHOLD = 64 << 20  # bytes: smaller allocations come from the heap and are reused
TRIM_THRESHOLD = 256 << 20  # bytes of free heap kept for reuse before any is given back
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Have glibc keep freed buffers for reuse (``mallopt``); False where the C library is not
    glibc (macOS, musl), which is left as it is. Changes speed only, never a result."""
    if not sys.platform.startswith("linux"):
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
