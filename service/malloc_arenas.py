"""glibc's malloc arenas capped in the server process.

Why: glibc gives each allocating thread an arena of its own, up to eight per core, and an arena keeps what is
freed in it for reuse. The server's threads (compare workers, the batchers' workers, the recognizers' pool)
each decode and free images of megabytes, so the peak RSS grew with the threads: at concurrency 16 on two
cores, 451-531 MB with glibc's default and 410-418 MB with two arenas, at the same CPU per compare
(docs/PERFORMANCE.md, "Malloc arenas"). A `MALLOC_ARENA_MAX` in the environment wins: glibc has read it.
"""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h
SERVER_ARENAS = 2


def cap_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Caps the arenas for threads that allocate from now on; False where the environment chose already or
    the C library has no such setting (musl's mallopt does nothing and says so)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(M_ARENA_MAX, arenas) == 1
