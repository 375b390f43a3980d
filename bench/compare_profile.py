"""Where one in-process compare's CPU goes outside the models: cProfile of every thread that works on it, by
function, and each thread's CPU.

    python -m bench.compare_profile [--rounds 20] [--top 40] [--photos-one-by-one]

Two pairs, each compared `--rounds` times after a warm-up: two 1920x1080 portraits, and a portrait against
a group photo (the pairs `bench.latency` sends). A compare works on three kinds of thread: the calling one,
the photo pool's (the other photo's decode and detection while cores are idle) and the recognizer ensemble's
(the second recognizer); ONNX Runtime and OpenCV may add threads of their own. Each thread's CPU comes from
the scheduler's count (`bench.counters`), so the other processes on a shared machine barely move it, and the Python
threads are profiled each on its own clock. For each pair: the compare's CPU ms per thread (without the
profiler, then with it), each model call by model, thread and input shape, and per kind of Python thread the
share in ONNX Runtime's `run`, the decodes, each OpenCV call and the top functions by own time, per compare.
`--photos-one-by-one` profiles the compare as it runs under load (no photo pool, one detector batch for both
photos: `photos_at_once = false`).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np

from bench.counters import threads
from bench.photos import full_hd_jpeg
from engine.backends import Backend
from engine.pipeline import FacePipeline, PipelineConfig
from tests.assets import asset_path

PAIRS = {"portrait": ("obama.jpg", "biden.jpg"), "group": ("obama.jpg", "sample1.jpg")}


def pair_bytes(kind: str) -> tuple[bytes, bytes]:
    origin, target = PAIRS[kind]
    target_bytes = full_hd_jpeg(target) if kind == "portrait" else asset_path(target).read_bytes()
    return full_hd_jpeg(origin), target_bytes


def thread_kind(name: str, caller: int, tid: int) -> str:
    """The calling thread, a pool's threads (by the prefix of their names) or another library's."""
    if tid == caller:
        return "calling thread"
    return pool_kind(name)


def pool_kind(name: str) -> str:
    for prefix in ("photo", "recognizer"):
        if name.startswith(prefix):
            return f"{prefix} pool"
    return f"other ({name}: ONNX Runtime's own workers)"


class PoolProfiles:
    """A cProfile per pool thread, each on its own CPU clock: every task the pool runs is profiled by the
    profiler of the thread that runs it, enabled only while `active`."""

    def __init__(self) -> None:
        self.active = False
        self.by_thread: dict[int, tuple[str, cProfile.Profile]] = {}

    def watch(self, pool: Executor | None) -> None:
        if pool is None:
            return
        submit = pool.submit

        def profiled_submit(fn: Callable, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            return submit(self._run, fn, *args, **kwargs)

        pool.submit = profiled_submit  # type: ignore[method-assign]

    def _run(self, fn: Callable, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not self.active:
            return fn(*args, **kwargs)
        thread = threading.current_thread()
        _, profiler = self.by_thread.setdefault(threading.get_native_id(),
                                                (thread.name, cProfile.Profile(time.thread_time)))
        profiler.enable()
        try:
            return fn(*args, **kwargs)
        finally:
            profiler.disable()


def cpu_by_thread(pipeline: FacePipeline, origin: bytes, target: bytes, rounds: int,
                  compare: Callable[[], None] | None = None) -> tuple[float, dict[str, float]]:
    """Process CPU ms per compare and its split by kind of thread, over `rounds` compares (`compare`, or a
    plain one)."""
    caller = threading.get_native_id()
    threads_before = {(thread.tid, thread.name): thread.cpu_ms for thread in threads()}
    process_started = time.process_time()
    for _ in range(rounds):
        (compare or (lambda: pipeline.compare(origin, target)))()
    process_ms = (time.process_time() - process_started) * 1000 / rounds
    by_kind: dict[str, float] = defaultdict(float)
    for thread in threads():
        ms = thread.cpu_ms - threads_before.get((thread.tid, thread.name), 0.0)
        by_kind[thread_kind(thread.name, caller, thread.tid)] += ms / rounds
    return process_ms, by_kind


def thread_table(title: str, process_ms: float, by_kind: dict[str, float]) -> str:
    rows = [f"{title}: process CPU per compare {process_ms:.2f} ms; by thread (the scheduler's counts):"]
    rows += [f"  {kind:<52} {ms:7.2f} ms" for kind, ms in sorted(by_kind.items(), key=lambda item: -item[1])
             if ms >= 0.005]
    return "\n".join(rows) + "\n"


class ModelCalls:
    """Each model call's CPU on the thread that makes it (ONNX Runtime's own workers apart), by model, kind of
    thread and input shape, recorded while `active`: which calls a compare makes, and where."""

    def __init__(self) -> None:
        self.active = False
        self.calls: dict[tuple[str, str, tuple[int, ...]], list[float]] = defaultdict(lambda: [0, 0.0])

    def watch(self, name: str, backend: Backend) -> None:
        infer = backend.infer

        def timed(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            if not self.active:
                return infer(feeds)
            started = time.thread_time()
            try:
                return infer(feeds)
            finally:
                thread = threading.current_thread()
                kind = "calling thread" if thread is threading.main_thread() else pool_kind(thread.name)
                row = self.calls[(name, kind, next(iter(feeds.values())).shape)]
                row[0] += 1
                row[1] += time.thread_time() - started

        backend.infer = timed  # type: ignore[method-assign]

    def table(self, rounds: int) -> str:
        rows = ["model calls per compare (CPU of the calling thread of each):"]
        for (name, kind, shape), (calls, seconds) in sorted(self.calls.items(), key=lambda item: -item[1][1]):
            rows.append(f"  {name:<22} {kind:<16} {str(shape):<20} {calls / rounds:5.1f} calls "
                        f"{seconds * 1000 / rounds:7.2f} ms")
        return "\n".join(rows) + "\n\n"


def profile_pair(pipeline: FacePipeline, pools: PoolProfiles, models: ModelCalls, origin: bytes, target: bytes,
                 rounds: int, top: int) -> str:
    """The compare's CPU by thread without the profiler, then the profile of `rounds` compares as text, per
    compare."""
    for _ in range(3):
        pipeline.compare(origin, target)
    out = io.StringIO()
    out.write(thread_table("without the profiler", *cpu_by_thread(pipeline, origin, target, rounds)))
    pools.by_thread.clear()
    models.calls.clear()
    caller = threading.get_native_id()
    profiler = cProfile.Profile(time.thread_time)

    def profiled() -> None:
        profiler.enable()
        pipeline.compare(origin, target)
        profiler.disable()

    pools.active = models.active = True
    process_ms, by_kind = cpu_by_thread(pipeline, origin, target, rounds, profiled)
    pools.active = models.active = False
    out.write(thread_table("profiled", process_ms, by_kind) + "\n" + models.table(rounds))
    profiles: dict[str, list[cProfile.Profile]] = {"calling thread": [profiler]}
    for tid, (name, pool_profiler) in pools.by_thread.items():
        profiles.setdefault(thread_kind(name, caller, tid), []).append(pool_profiler)
    listings = io.StringIO()
    for kind, group in profiles.items():
        stats = pstats.Stats(*group, stream=listings)
        out.write(f"{kind}, {by_kind.get(kind, 0.0):.2f} ms:\n")
        outside = by_kind.get(kind, 0.0)
        for label, calls, ms in categories(stats, rounds):
            out.write(f"  {label:<44} {calls:6.1f} calls {ms:7.2f} ms\n")
            outside -= ms if label.startswith("model") else 0
        out.write(f"  outside the models (profiler's overhead included): {outside:.2f} ms\n\n")
        listings.write(f"== {kind}\n")
        stats.sort_stats("tottime").print_stats(top)
    return out.getvalue() + listings.getvalue() + f"(times in the listings are for all {rounds} compares)\n"


def categories(stats: pstats.Stats, rounds: int) -> list[tuple[str, float, float]]:
    """(label, calls per compare, ms per compare): the models, the decodes (cumulative), each OpenCV call."""
    rows = []
    for (filename, _, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if name.endswith("onnxruntime_pybind11_state.run>"):
            rows.append(("models: ONNX Runtime run", calls, own))
        elif name == "decode_image" and filename.endswith("decode.py"):
            rows.append(("decode_image (cumulative)", calls, cumulative))
        elif filename == "~" and re.fullmatch(r"<[A-Za-z0-9]+>", name):
            rows.append((f"OpenCV {name.strip('<>')}", calls, own))
    return sorted(((label, calls / rounds, ms * 1000 / rounds) for label, calls, ms in rows), key=lambda r: -r[2])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--photos-one-by-one", action="store_true",
                        help="the compare as under load: photos_at_once = false")
    args = parser.parse_args(argv)
    pipeline = FacePipeline(PipelineConfig(photos_at_once=not args.photos_one_by_one))
    pools = PoolProfiles()
    pools.watch(pipeline._photos)
    pools.watch(pipeline.recognizer._pool)
    models = ModelCalls()
    for name, backend in pipeline.backends.items():
        models.watch(name, backend)
    if pipeline._wide_detector is not None:
        models.watch("detector, every core", pipeline._wide_detector.backend)
    print(f"cores {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f} at the start, "
          f"photos_at_once {pipeline.config.photos_at_once}")
    try:
        for kind in PAIRS:
            print(f"== {kind}: {' vs '.join(PAIRS[kind])}")
            print(profile_pair(pipeline, pools, models, *pair_bytes(kind), args.rounds, args.top))
    finally:
        pipeline.close()


if __name__ == "__main__":
    main()
