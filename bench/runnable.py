"""How many of a process's threads could use a core, sampled from /proc while a benchmark level runs (Linux).

Why: on a shared machine the compares/s at concurrency 16 say more about the other jobs than about the server.
What they cannot hide is whether the server has work for every core: a thread computing or waiting for a
core is runnable (state R), one blocked on the GIL, a lock or a hand-off is not. The share of samples with
fewer runnable threads than cores is the share of time a quiet machine would leave a core idle
(docs/PERFORMANCE.md, "Fifth round").
"""

from __future__ import annotations

import os
import threading

INTERVAL_S = 0.05


def runnable_threads(pid: int) -> int:
    """Threads of `pid` running or waiting for a core now; threads that end while being read are skipped."""
    count = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fd = os.open(f"/proc/{pid}/task/{tid}/stat", os.O_RDONLY)
        except OSError:
            continue
        try:
            stat = os.read(fd, 512)
        except OSError:
            continue
        finally:
            os.close(fd)
        state = stat.rfind(b")") + 2
        count += stat[state: state + 1] == b"R"
    return count


class RunnableSampler:
    """Counts `pid`'s runnable threads every `interval` seconds in a thread of its own, from start to stop."""

    def __init__(self, pid: int, cores: int, interval: float = INTERVAL_S) -> None:
        self.pid, self.cores, self.interval = pid, cores, interval
        self.counts: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="runnable-sampler", daemon=True)

    def __enter__(self) -> RunnableSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.counts.append(runnable_threads(self.pid))
            except OSError:
                return

    def summary(self) -> dict[str, float | int]:
        """Mean runnable threads, and the share of samples with fewer than `cores` (a quiet machine's idle core)."""
        samples = max(1, len(self.counts))
        return {"samples": len(self.counts), "runnable_mean": round(sum(self.counts) / samples, 2),
                "below_cores_share": round(sum(c < self.cores for c in self.counts) / samples, 3)}
