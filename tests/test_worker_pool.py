"""The compare workers' pool: the last idle thread takes the next task, tasks run in order, at most N at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import pytest

from service.worker_pool import LastIdleFirstPool


def _start_every_thread(pool, workers: int) -> None:
    """Make the pool start all its threads: `workers` tasks that wait for each other."""
    barrier = threading.Barrier(workers)
    for future in [pool.submit(barrier.wait, 30) for _ in range(workers)]:
        future.result(30)


def _threads_of_sequential_tasks(pool, tasks: int) -> set[str]:
    names = set()
    for _ in range(tasks):
        names.add(pool.submit(lambda: threading.current_thread().name).result(30))
        time.sleep(0.005)
    return names


def test_a_light_load_stays_on_one_thread() -> None:
    """One task at a time, after every thread has started: the same thread takes them all (ThreadPoolExecutor
    wakes its idle threads in turn, so each task met another thread's caches and malloc arena)."""
    pool = LastIdleFirstPool(4, "compare")
    try:
        _start_every_thread(pool, 4)
        assert len(_threads_of_sequential_tasks(pool, 12)) == 1
    finally:
        pool.shutdown()


def test_a_heavy_load_runs_on_every_thread_in_order_and_never_more() -> None:
    pool = LastIdleFirstPool(3, "compare")
    lock = threading.Lock()
    running, most, started, threads = [0], [0], [], set()

    def task(index: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            started.append(index)
            threads.add(threading.current_thread().name)
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return index * 2

    try:
        futures = [pool.submit(task, index) for index in range(30)]
        assert [future.result(30) for future in futures] == [index * 2 for index in range(30)]
    finally:
        pool.shutdown()
    assert most[0] == 3 and len(threads) == 3
    assert sorted(started) == list(range(30))


def test_one_worker_runs_tasks_in_the_order_they_came() -> None:
    pool = LastIdleFirstPool(1, "compare")
    order: list[int] = []
    try:
        for future in [pool.submit(order.append, index) for index in range(50)]:
            future.result(30)
    finally:
        pool.shutdown()
    assert order == list(range(50))


def test_errors_reach_the_caller_and_the_thread_goes_on() -> None:
    pool = LastIdleFirstPool(1, "compare")
    try:
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result(30)
        assert pool.submit(lambda: 7).result(30) == 7
    finally:
        pool.shutdown()


def test_shutdown_runs_what_is_queued_then_refuses() -> None:
    pool = LastIdleFirstPool(1, "compare")
    gate = threading.Event()
    first = pool.submit(gate.wait, 30)
    queued = pool.submit(lambda: "ran")
    gate.set()
    pool.shutdown(wait=True)
    assert first.result(0) is True and queued.result(0) == "ran"
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)


def test_shutdown_can_cancel_what_is_queued() -> None:
    pool = LastIdleFirstPool(1, "compare")
    gate = threading.Event()
    first = pool.submit(gate.wait, 30)
    while not first.running():
        time.sleep(0.001)
    queued = pool.submit(lambda: "ran")
    pool.shutdown(wait=False, cancel_futures=True)
    gate.set()
    with pytest.raises(CancelledError):
        queued.result(30)
    assert first.result(30) is True
