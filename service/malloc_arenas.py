"""glibc's malloc tuned for the server process: two arenas, and freed blocks kept for reuse.

Why two arenas: glibc gives each allocating thread an arena of its own, up to eight per core, and an arena keeps
what is freed in it for reuse. The server's threads (compare workers, the batchers' workers, the recognizers'
pool) each decode and free images of megabytes, so the peak RSS grew with the threads: at concurrency 16 on two
cores, 451-531 MB with glibc's default and 410-418 MB with two arenas, at the same CPU per compare
(docs/PERFORMANCE.md, "Malloc arenas"). A `MALLOC_ARENA_MAX` in the environment wins: glibc has read it.

Why freed blocks are kept: with glibc's dynamic thresholds, a block larger than any freed before (a decoded
photo, a canvas) is mapped on its own and unmapped when freed, and the top of a heap is handed back once it
is free; the next compare faults the same pages in again. At concurrency 16 that was 140-320 page faults per
compare; with blocks up to 32 MiB taken from the heaps and a heap's free top kept up to 64 MiB, mostly 10-50,
and the server spent about 2 ms (2.5%) less CPU per compare at the same peak RSS (docs/PERFORMANCE.md, "Eighth
round: c16"). A threshold of either kind in the environment (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`,
`GLIBC_TUNABLES`) wins.
"""

from __future__ import annotations

import ctypes
import os

# mallopt's parameter numbers in glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
SERVER_ARENAS = 2
# glibc's own ceiling for its dynamic mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX): larger blocks
# are still mapped on their own.
SERVER_MMAP_THRESHOLD = 32 << 20
SERVER_TRIM_THRESHOLD = 64 << 20
THRESHOLDS_FROM_ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def _mallopt(parameter: int, value: int) -> bool:
    """glibc's `mallopt`; False where the C library has none or refuses (musl's does nothing and says so)."""
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


def keep_freed_blocks(mmap_threshold: int = SERVER_MMAP_THRESHOLD, trim_threshold: int = SERVER_TRIM_THRESHOLD) -> bool:
    """Blocks up to `mmap_threshold` come from the heaps, and a heap keeps up to `trim_threshold` free at its top;
    False where the environment chose already or the C library has no such setting. Setting either fixes both:
    glibc stops adjusting them."""
    if any(name in os.environ for name in THRESHOLDS_FROM_ENVIRONMENT):
        return False
    return _mallopt(M_MMAP_THRESHOLD, mmap_threshold) and _mallopt(M_TRIM_THRESHOLD, trim_threshold)


def tune_server_malloc() -> None:
    """What `facecompare serve` sets before its threads start (and `bench.inflight_memory`, to measure the same)."""
    cap_malloc_arenas()
    keep_freed_blocks()
