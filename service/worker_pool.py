"""The compare workers: a bounded thread pool that hands each task to the thread that went idle last.

`ThreadPoolExecutor` wakes its idle threads in turn, so at low load every compare ran on another thread:
another glibc arena to grow and trim (page faults on every decoded image) and cold caches. Measured at
concurrency 1, one run of each alternating, twice: 4 workers served a compare with 4-8% more CPU than in
process and 12% more wall time, one worker with 0-3% and 2-5% (docs/PERFORMANCE.md). Here the most recently
idle thread takes the next task, so a light load stays on one warm thread, and a heavy one still spreads over
every worker. Tasks run in the order they came.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any


class LastIdleFirstPool(Executor):
    """At most `max_workers` threads, started as work needs them; idle ones wait on a stack."""

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._lock = threading.Lock()
        self._tasks: deque[tuple[Future, Callable[..., Any], tuple, dict]] = deque()
        self._idle: list[threading.Semaphore] = []
        self._threads: list[threading.Thread] = []
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._tasks.append((future, fn, args, kwargs))
            if self._idle:
                self._idle.pop().release()
            elif len(self._threads) < self._max_workers:
                thread = threading.Thread(target=self._work, name=f"{self._prefix}_{len(self._threads)}",
                                          daemon=True)
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        wake = threading.Semaphore(0)
        while True:
            with self._lock:
                if self._tasks:
                    future, fn, args, kwargs = self._tasks.popleft()
                elif self._shutdown:
                    return
                else:
                    self._idle.append(wake)
                    future = None
            if future is None:
                wake.acquire()
                continue
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # handed to the caller, as ThreadPoolExecutor does
                    future.set_exception(exc)
            del future, fn, args, kwargs  # nothing of a finished task stays referenced while idle

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new tasks; those queued still run unless `cancel_futures`; `wait` joins the threads."""
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while self._tasks:
                    self._tasks.popleft()[0].cancel()
            for wake in self._idle:
                wake.release()
            self._idle.clear()
            threads = list(self._threads)
        if wait:
            for thread in threads:
                thread.join()
