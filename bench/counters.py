"""What one call cost this process, by counters the machine's load hardly moves: CPU time of every thread
(and by thread), minor page faults, voluntary and involuntary context switches. `perf` has no hardware
counters in this VM; getrusage and the scheduler's /proc/self/task/*/sched do the job (Linux)."""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable

COUNTERS = ("ms", "cpu_ms", "minor_faults", "voluntary_switches", "involuntary_switches")


def thread_cpu_ns() -> dict[str, int]:
    """Each thread's CPU so far, in ns, from the scheduler, summed by the thread's Python name less its
    number ("photo", "recognizer", "MainThread") or "native" (ONNX Runtime's pools); empty off Linux."""
    names = {t.native_id: t.name.rstrip("0123456789").rstrip("_") for t in threading.enumerate()}
    totals: dict[str, int] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return totals
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/sched") as sched:
                line = next(line for line in sched if line.startswith("se.sum_exec_runtime"))
        except (OSError, StopIteration):
            continue
        label = names.get(int(tid), "native")
        totals[label] = totals.get(label, 0) + round(float(line.split(":")[1]) * 1e6)
    return totals


def measured(call: Callable[[], dict[str, float] | None]) -> dict[str, float]:
    """One call's wall and CPU ms, faults and switches for the whole process, its CPU ms by thread
    (`cpu_ms.NAME`), and whatever figures the call itself returns."""
    threads, before, started = thread_cpu_ns(), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    figures = call() or {}
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    by_thread = {f"cpu_ms.{label}": (ns - threads.get(label, 0)) / 1e6 for label, ns in thread_cpu_ns().items()}
    return {"ms": wall * 1000, "cpu_ms": cpu * 1000, "minor_faults": after.ru_minflt - before.ru_minflt,
            "voluntary_switches": after.ru_nvcsw - before.ru_nvcsw,
            "involuntary_switches": after.ru_nivcsw - before.ru_nivcsw, **figures, **by_thread}
