"""What one call cost this process, by counters the machine's load hardly moves: CPU time of every thread
(and by thread), minor page faults, voluntary and involuntary context switches. `perf` has no hardware
counters in this VM; getrusage and the scheduler's /proc/self/task/*/sched do the job (Linux)."""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

COUNTERS = ("ms", "cpu_ms", "minor_faults", "voluntary_switches", "involuntary_switches")
# The scheduler's fields of ThreadCounters.cpu_ms (in ms) and .switches.
SCHED_FIELDS = ("se.sum_exec_runtime", "nr_voluntary_switches")


@dataclass(frozen=True)
class ThreadCounters:
    """One thread's counters so far: `name` is the Python thread's, else the system's (a library's own thread,
    `python` False); `cpu_ms` and `switches` (voluntary) are the scheduler's."""

    tid: int
    name: str
    python: bool
    cpu_ms: float
    switches: float


def threads() -> list[ThreadCounters]:
    """Every thread of this process, from /proc/self/task/*/sched (empty off Linux); a thread that ends while
    being read is left out."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    found = []
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return found
    for tid in map(int, tids):
        try:
            with open(f"/proc/self/task/{tid}/sched") as sched:
                header = sched.readline()  # "comm (tid, #threads: n)"
                pairs = (line.split(":", 1) for line in sched if ":" in line)
                fields = {field.strip(): value for field, value in pairs}
        except OSError:
            continue
        found.append(ThreadCounters(tid, names.get(tid, header.rsplit(" (", 1)[0]), tid in names,
                                    *(float(fields[field]) for field in SCHED_FIELDS)))
    return found


def by_thread() -> dict[str, float]:
    """Each thread's CPU ms and voluntary switches so far, summed by the thread's Python name less its number
    ("photo", "recognizer", "MainThread") or "native" (ONNX Runtime's and the BLAS pools): `cpu_ms.NAME`,
    `switches.NAME`. A thread that ends between two readings drops out of them (the pipeline's pools live as
    long as it does)."""
    totals: dict[str, float] = {}
    for thread in threads():
        label = thread.name.rstrip("0123456789").rstrip("_") if thread.python else "native"
        for field in ("cpu_ms", "switches"):
            key = f"{field}.{label}"
            totals[key] = totals.get(key, 0.0) + getattr(thread, field)
    return totals


def measured(call: Callable[[], dict[str, float] | None], threads: bool = True) -> dict[str, float]:
    """One call's wall and CPU ms, faults and switches for the whole process, and whatever figures the call
    itself returns; with `threads`, its CPU ms and voluntary switches by thread too (`by_thread`: ~0.5 ms
    of reading /proc just before and after the call, the calling thread's figure included)."""
    before_threads = by_thread() if threads else {}
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    figures = call() or {}
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    per_thread = {key: value - before_threads.get(key, 0.0) for key, value in by_thread().items()} \
        if threads else {}
    return {"ms": wall * 1000, "cpu_ms": cpu * 1000, "minor_faults": after.ru_minflt - before.ru_minflt,
            "voluntary_switches": after.ru_nvcsw - before.ru_nvcsw,
            "involuntary_switches": after.ru_nivcsw - before.ru_nivcsw, **figures, **per_thread}
