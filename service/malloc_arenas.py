"""glibc's malloc in the server process: its arenas capped, and the memory freed in them kept for reuse.

Why the cap: glibc gives each allocating thread an arena of its own, up to eight per core, and an arena keeps
what is freed in it for reuse. The server's threads (compare workers, the batchers' workers, the recognizers'
pool) each decode and free images of megabytes, so the peak RSS grew with the threads: at concurrency 16 on two
cores, 451-531 MB with glibc's default and 410-418 MB with two arenas, at the same CPU per compare
(docs/PERFORMANCE.md, "Malloc arenas"). A `MALLOC_ARENA_MAX` in the environment wins: glibc has read it.

Why the kept memory: glibc hands the top of a heap back to the kernel once it is free (a thread arena's
whole extra heap, the main heap above its trim threshold), and a compare's decoded images and canvases are
what frees it. So the next compare took the same megabytes back as fresh pages: 470-1,500 page faults and
1.8-5.6 ms of system CPU per compare at concurrency 1, against 0.1-1.3 ms in process (docs/PERFORMANCE.md,
"Eighth round: c1gap"). A settings variable of glibc's in the environment (`MALLOC_TOP_PAD_`,
`GLIBC_TUNABLES=glibc.malloc...`) wins here too.
"""

from __future__ import annotations

import ctypes
import os

# mallopt's parameter numbers in glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
SERVER_ARENAS = 2
MIB = 1 << 20
# Freed memory a heap keeps past what is in use: about what one compare takes and gives back at once (its
# decodes and canvases), so the next one finds it there.
TOP_PAD = 16 * MIB
# Setting the pad stops glibc's sliding thresholds (each rises to the largest block freed so far), so both are
# set where they would end: blocks up to 32 MiB come from the heaps, which keep up to 64 MiB free at their top.
MMAP_THRESHOLD = 32 * MIB
TRIM_THRESHOLD = 64 * MIB
_HEAP_SETTINGS = ("MALLOC_TOP_PAD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


def _mallopt(parameter: int, value: int) -> bool:
    """glibc's mallopt; False where the C library has none or refuses (musl's does nothing and says so)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(parameter, value) == 1


def cap_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Caps the arenas for threads that allocate from now on; False where the environment chose already or
    the C library has no such setting."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    return _mallopt(M_ARENA_MAX, arenas)


def keep_freed_memory(top_pad: int = TOP_PAD) -> bool:
    """glibc keeps `top_pad` of freed memory at the top of each heap (with the thresholds it would reach),
    for the next compare, instead of handing it to the kernel; False where the environment chose already or
    the C library has no such setting."""
    if any(name in os.environ for name in _HEAP_SETTINGS) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    return all([_mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD), _mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                _mallopt(M_TOP_PAD, top_pad)])
