"""`bench.counters`, which `bench.peer` and `bench.cold` read their per-compare costs from: each counter
must see what a call did, on the thread that did it."""

from __future__ import annotations

import mmap
import sys
import threading
import time

import pytest

from bench.counters import measured

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="getrusage's faults and /proc are Linux's")

PAGE = 4096


def burn(seconds: float) -> None:
    """Spend `seconds` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_cpu_of_another_thread_is_counted_under_its_name() -> None:
    """A pool's thread outlives the call (one that exits within it is counted in `cpu_ms` only)."""
    burnt, done = threading.Event(), threading.Event()

    def work() -> None:
        burn(0.05)
        burnt.set()
        done.wait(10)

    worker = threading.Thread(target=work, name="worker_0")

    def call() -> None:
        worker.start()
        burnt.wait(10)

    try:
        figures = measured(call)
    finally:
        done.set()
        worker.join()
    assert figures["cpu_ms"] >= 45
    assert figures["cpu_ms.worker"] >= 45
    assert figures["cpu_ms.MainThread"] < 45
    assert figures["switches.MainThread"] >= 1  # it waited for the worker


def test_fresh_memory_written_is_counted_as_minor_faults() -> None:
    size = 32 << 20

    def call() -> dict[str, float]:
        # Fresh zero pages from the system, each faulted in on first write; without transparent huge pages,
        # which would fault in 2 MiB at a time where the kernel has them on.
        with mmap.mmap(-1, size) as block:
            block.madvise(mmap.MADV_NOHUGEPAGE)
            block[::PAGE] = b"\1" * (size // PAGE)
            return {"pages": len(block) // PAGE}

    figures = measured(call, threads=False)  # as `bench.peer` times ours: nothing read besides the call
    assert not any(key.startswith(("cpu_ms.", "switches.")) for key in figures)
    assert figures["pages"] == size // PAGE
    assert figures["minor_faults"] >= 0.9 * size // PAGE
    assert figures["ms"] > 0
