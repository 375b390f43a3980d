"""`bench.runnable`, which `bench.latency --sample-runnable` reads the server's idle cores from: a thread that
computes counts as runnable, one that sleeps does not."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bench.runnable import RunnableSampler, runnable_threads

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="thread states are read from /proc")

SPIN = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass"
SLEEP = "import time; time.sleep(30)"


@contextmanager
def child(code: str) -> Iterator[int]:
    """A Python process running `code` (bounded to 30 s), killed on leaving."""
    process = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.5)  # past the interpreter's start-up, which reads files and sleeps on them
        yield process.pid
    finally:
        process.kill()
        process.wait()


def test_a_spinning_thread_is_runnable_and_a_sleeping_one_is_not() -> None:
    with child(SPIN) as pid:
        spinning = [runnable_threads(pid) for _ in range(20)]
    with child(SLEEP) as pid:
        sleeping = [runnable_threads(pid) for _ in range(20)]
    assert spinning == [1] * 20  # running or waiting for a core, never blocked
    assert sleeping == [0] * 20


def test_the_sampler_reports_a_core_left_idle() -> None:
    with child(SPIN) as pid, RunnableSampler(pid, cores=2, interval=0.01) as sampler:
        time.sleep(0.3)
    summary = sampler.summary()
    assert summary["samples"] >= 5
    assert summary["runnable_mean"] == 1.0
    assert summary["below_cores_share"] == 1.0  # one thread can keep one of two cores busy
    with child(SPIN) as pid, RunnableSampler(pid, cores=1, interval=0.01) as sampler:
        time.sleep(0.3)
    assert sampler.summary()["below_cores_share"] == 0.0
