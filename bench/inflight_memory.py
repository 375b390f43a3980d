"""Peak memory of the service's pipeline by compares in flight, without HTTP: what each compare worker costs.

    python -m bench.inflight_memory [--compares 1,2,4,8] [--seconds 20] [--json]

Each level runs in a process of its own (a peak is only ever reached once per process): the service's batched
pipeline, loaded and warmed up as `facecompare serve` does (malloc arenas capped), then N threads comparing
bench.latency's pairs (Full HD portraits, every 4th target a group photo) back to back for `--seconds`. It
reports the RSS after the warm-up and the peak (VmHWM) under the load, and the CPU per compare. Why: the
photo-mix soak's peak RSS decides how many compare workers fit under 600 MB, and the soak cannot say what
part of it the compares in flight hold (docs/PERFORMANCE.md, "Sixth round: c=16").

Where glibc's malloc is the C library, it also reports glibc's own account (mallinfo2) when the RSS was
highest, sampled every 10 ms: `mapped` (blocks malloc mapped on their own: ONNX Runtime's arena extends in
such blocks), `heap_in_use` and `heap_free` (what the heaps hold in use and keep freed). Where the peak is
heap kept free, the allocator keeps it; where it is mapped, the arena does (docs/PERFORMANCE.md, "Seventh
round: memory").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

from service.malloc_arenas import malloc_state
from tests.memory import rss_mib


class PeakSampler(threading.Thread):
    """The malloc state when this process's RSS was highest."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_rss = 0.0
        self.at_peak: dict[str, float] | None = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.01):
            rss = rss_mib()
            if rss > self.peak_rss:
                self.peak_rss, self.at_peak = rss, malloc_state()


def level(compares: int, seconds: float) -> dict[str, float | int | dict[str, float] | None]:
    """One level in this process: load, warm up, then `compares` threads for `seconds`."""
    from bench.latency import make_pairs, peak_rss_mb
    from service.config import ServiceConfig
    from service.malloc_arenas import tune_server_malloc
    from service.runtime import BatchedPipeline, warm_up

    tune_server_malloc()
    config = ServiceConfig()
    pairs = make_pairs(group_every=4)
    pipeline = BatchedPipeline(config.pipeline_config(), max_wait_ms=config.max_wait_ms,
                               queue_size=config.queue_size, count_callers=True)
    warm_up(pipeline)
    warm = rss_mib()
    warm_malloc = malloc_state()
    sampler = PeakSampler()
    sampler.start()
    deadline = time.monotonic() + seconds
    done = [0] * compares

    def work(index: int) -> None:
        turn = index * 7
        while time.monotonic() < deadline:
            pair = pairs[turn % len(pairs)]
            pipeline.compare(pair.origin, pair.target)
            turn += 1
            done[index] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(compares)]
    cpu = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu_ms = (time.process_time() - cpu) * 1000
    sampler.done.set()
    sampler.join()
    pipeline.close()
    return {"compares_in_flight": compares, "rss_after_warm_up_mib": round(warm, 1),
            "peak_rss_mib": peak_rss_mb(os.getpid()), "compares": sum(done),
            "cpu_ms_per_compare": round(cpu_ms / max(1, sum(done)), 1),
            "malloc_after_warm_up": warm_malloc, "malloc_at_peak_rss": sampler.at_peak}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compares", type=lambda s: [int(c) for c in s.split(",")], default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of load per level")
    parser.add_argument("--level", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.level is not None:
        print(json.dumps(level(args.level, args.seconds)))
        return
    results = []
    for compares in args.compares:
        command = [sys.executable, "-m", "bench.inflight_memory", "--level", str(compares),
                   "--seconds", str(args.seconds)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps(results))
        return
    for result in results:
        print(f"{result['compares_in_flight']} in flight: RSS after warm-up {result['rss_after_warm_up_mib']} MiB,"
              f" peak {result['peak_rss_mib']} MiB, {result['compares']} compares,"
              f" {result['cpu_ms_per_compare']} CPU ms each; malloc at the peak {result['malloc_at_peak_rss']}")


if __name__ == "__main__":
    main()
