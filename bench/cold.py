"""One compare after an idle gap against the same compare back to back, in one process, in one run.

    python -m bench.cold [--gaps 0.02,0.2,2] [--rounds 3] [--idle sleep|busy] [--photos-at-once on|off|both] [--json]

Why: `bench.peer`'s headline method runs each of our compares right after ~2 s in which dlib computes in
another process; such a compare cost 15-44% more CPU and ~1.8x the wall of one back to back
(docs/PERFORMANCE.md, "Sixth round: cold compares"). For each of the six pairs of 1920x1080 portraits
(`bench.peer`'s), each round: idle `--gap` seconds, then the pair (cold), then the same pair again at once
(warm); then, the same way, a fixed reference work that shares nothing with the pipeline (the machine's
own cost of an idle gap) and a hand-off to a sleeping thread (`thread_wake`). `--idle sleep` leaves the
cores idle; `--idle busy` has another process stream through 64 MB on one core meanwhile, as dlib does
(started anew each gap: its fork costs ours a few dozen page faults). Each compare's counters come from
`bench.counters`: wall, CPU (all threads and by thread), minor page faults, context switches, and the
pipeline's own decode and compare stages.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bench.counters import COUNTERS, measured
from bench.latency import PORTRAITS
from bench.photos import full_hd_jpeg
from bench.profile import bench_config
from engine.pipeline import FacePipeline

# Another process touching 64 MB over and over: a last-level cache's worth and more, as dlib's HOG pyramid.
BUSY = ("import sys, time\nb = bytearray(64 << 20)\nend = time.time() + float(sys.argv[1])\n"
        "while time.time() < end:\n    b[::64] = bytes(len(b) // 64)\n")


def idle(seconds: float, kind: str) -> None:
    if kind == "busy":
        subprocess.run([sys.executable, "-c", BUSY, str(seconds)], check=True)
    else:
        time.sleep(seconds)


def medians(samples: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({key for sample in samples for key in sample}, key=lambda key: (key not in COUNTERS, key))
    return {key: round(statistics.median(s.get(key, 0.0) for s in samples), 2) for key in keys}


REFERENCE_VALUES = np.empty(2 << 20, np.float32)


def reference_work(values: np.ndarray = REFERENCE_VALUES) -> None:
    """A fixed piece of work on this thread alone that touches nothing of the pipeline's and allocates
    nothing (its 8 MB, more than a core's L2 and less than the L3, made once): it tells what an idle gap
    costs any code on this machine (the cores' clocks and caches), not our compare's own."""
    values[:] = 0.5
    for _ in range(4):
        np.multiply(values, values, out=values)
        np.add(values, 1, out=values)
        np.sqrt(values, out=values)
    sum(i * i for i in range(100_000))


WAKER = ThreadPoolExecutor(1, thread_name_prefix="probe")


def thread_wake() -> dict[str, float]:
    """How long a sleeping thread of this process takes to start a task handed to it, as the photo pool's
    does at each of a compare's hand-offs: after an idle gap, on a machine whose idle cores halt (a VM's),
    that is the core's wake-up."""
    started = time.perf_counter()
    ran = WAKER.submit(time.perf_counter).result()
    return {"wake_us": (ran - started) * 1e6}


def cold_and_warm(work, gap: float, kind: str, cold: list, warm: list) -> None:
    idle(gap, kind)
    cold.append(measured(work))
    warm.append(measured(work))


def summary(cold: list[dict[str, float]], warm: list[dict[str, float]]) -> dict:
    cold_m, warm_m = medians(cold), medians(warm)
    ratios = {key: round(cold_m[key] / warm_m[key], 3) for key in ("ms", "cpu_ms") if warm_m[key]}
    return {"cold": cold_m, "warm": warm_m, "cold_over_warm": ratios}


def timed_compare(pipeline: FacePipeline, origin: bytes, target: bytes) -> dict[str, float]:
    """The compare, with its decodes' and the rest's wall ms (the pipeline's own stage timer)."""
    stages: dict[str, float] = {}
    pipeline.compare(origin, target, timed=lambda stage, seconds: stages.__setitem__(f"{stage}_ms", seconds * 1000))
    return stages


def run(pipelines: dict[str, FacePipeline], gaps: list[float], rounds: int, kind: str) -> list[dict]:
    """For each gap: the pairs' cold and warm compares on each pipeline in turn; between them, the reference
    work and a thread's wake-up, cold and warm the same way."""
    photos = {name: full_hd_jpeg(name) for name in PORTRAITS}
    pairs = list(itertools.combinations(PORTRAITS, 2))
    results = []
    for pipeline in pipelines.values():
        timed_compare(pipeline, photos[pairs[0][0]], photos[pairs[0][1]])
    reference_work()
    for gap in gaps:
        compares: dict[str, tuple[list, list]] = {name: ([], []) for name in pipelines}
        references: tuple[list, list] = ([], [])
        wakes: tuple[list, list] = ([], [])
        for _ in range(rounds):
            for a, b in pairs:
                for name, pipeline in pipelines.items():
                    cold_and_warm(lambda p=pipeline, a=a, b=b: timed_compare(p, photos[a], photos[b]), gap, kind,
                                  *compares[name])
                cold_and_warm(reference_work, gap, kind, *references)
                cold_and_warm(thread_wake, gap, kind, *wakes)
        results.append({"gap_s": gap, "idle": kind, "compares": rounds * len(pairs),
                        **{name: summary(*compares[name]) for name in pipelines},
                        "reference": summary(*references), "thread_wake": summary(*wakes)})
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gaps", default="2", help="idle seconds before each cold compare, comma-separated")
    parser.add_argument("--photos-at-once", choices=("on", "off", "both"), default="on",
                        help="the pipeline's photos_at_once; both: two pipelines, in turn")
    parser.add_argument("--rounds", type=int, default=3, help="times each of the six pairs is compared cold")
    parser.add_argument("--idle", choices=("sleep", "busy"), default="sleep")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = {"on": [True], "off": [False], "both": [True, False]}[args.photos_at_once]
    pipelines = {"at_once" if at_once else "one_by_one": FacePipeline(bench_config(photos_at_once=at_once))
                 for at_once in settings}
    try:
        results = run(pipelines, [float(gap) for gap in args.gaps.split(",")], args.rounds, args.idle)
    finally:
        for pipeline in pipelines.values():
            pipeline.close()
    for result in results:
        print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
