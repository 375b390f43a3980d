"""glibc's malloc tuned for the server process: two arenas, and the memory freed in them kept for reuse.

Why two arenas: glibc gives each allocating thread an arena of its own, up to eight per core, and an arena keeps
what is freed in it for reuse. The server's threads (compare workers, the batchers' workers, the recognizers'
pool) each decode and free images of megabytes, so the peak RSS grew with the threads: at concurrency 16 on two
cores, 451-531 MB with glibc's default and 410-418 MB with two arenas, at the same CPU per compare
(docs/PERFORMANCE.md, "Malloc arenas"). A `MALLOC_ARENA_MAX` in the environment wins: glibc has read it.

Why the freed memory is kept: with glibc's sliding thresholds a block larger than any freed before (a decoded
photo, a canvas) is mapped on its own and unmapped when freed, and the top of a heap (a thread arena's whole
extra heap, the main heap above its trim threshold) goes back to the kernel once it is free. So each compare
took the same megabytes back as fresh pages: 470-1,500 page faults and 1.8-5.6 ms of system CPU per compare at
concurrency 1 (0.1-1.3 ms in process), 140-320 faults and about 2 ms of CPU per compare at concurrency 16.
With the thresholds fixed where glibc's would end, most runs fall to tens of faults; a top pad the size of what
one compare frees keeps the rest, where glibc would still drop an emptied heap (docs/PERFORMANCE.md, "Eighth
round: c1gap" and "Eighth round: c16"). A heap setting of glibc's in the environment (`MALLOC_TOP_PAD_`,
`MALLOC_TRIM_THRESHOLD_`, `MALLOC_MMAP_THRESHOLD_`, `GLIBC_TUNABLES=glibc.malloc...`) wins.
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
# Setting any of these stops glibc's sliding thresholds, so both are set where they would end (its 64-bit
# DEFAULT_MMAP_THRESHOLD_MAX): blocks up to 32 MiB come from the heaps, which keep up to 64 MiB free at their top.
MMAP_THRESHOLD = 32 * MIB
TRIM_THRESHOLD = 64 * MIB
HEAP_SETTINGS_FROM_ENVIRONMENT = ("MALLOC_TOP_PAD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


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
    """glibc keeps `top_pad` of freed memory at the top of each heap, and blocks up to `MMAP_THRESHOLD` in the
    heaps, for the next compare; False where the environment chose already or the C library has no such setting."""
    if (any(name in os.environ for name in HEAP_SETTINGS_FROM_ENVIRONMENT)
            or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")):
        return False
    return all([_mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD), _mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                _mallopt(M_TOP_PAD, top_pad)])


def tune_server_malloc() -> None:
    """What `facecompare serve` sets before its threads start (and `bench.inflight_memory`, to measure the same)."""
    cap_malloc_arenas()
    keep_freed_memory()


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                       "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_state() -> dict[str, float] | None:
    """glibc's account of the process's malloc, in MiB; None where the C library has no mallinfo2 (glibc < 2.33,
    musl)."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _Mallinfo2
    info = mallinfo2()
    return {"mapped_mib": round(info.hblkhd / MIB, 1), "heap_in_use_mib": round(info.uordblks / MIB, 1),
            "heap_free_mib": round(info.fordblks / MIB, 1)}
