"""glibc allocator tuning for processes that repeat the same large allocations (refuter workers).

By default glibc serves every block above its mmap threshold (at most 32 MB) with a fresh
mmap and returns it on free, so a refit that allocates the same 100 MB temporaries again
and again page-faults them in each time: on a million-row logit refit that was about a
third of the time, spent in the kernel. A refuter worker lives for one refutation and
refits the same shapes, so it keeps freed memory for reuse instead (its peak is unchanged:
what it frees is what the next refit takes).
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30  # blocks up to 1 GiB come from (and return to) the heap
_done = False


def keep_freed_memory() -> None:
    """Ask glibc to reuse freed large blocks instead of unmapping them (once per process; a no-op
    where the C library is not glibc)."""
    global _done
    if _done:
        return
    _done = True
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: libc's where it is glibc
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl): nothing to tune
        return
    mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, _THRESHOLD)
