"""Where one in-process compare's CPU goes outside the models: cProfile of the compare thread, by function.

    python -m bench.compare_profile [--rounds 20] [--top 40]

Two pairs, each compared `--rounds` times after a warm-up: two 1920x1080 portraits, and a portrait against
a group photo (the pairs `bench.latency` sends). The profiler's clock is the calling thread's CPU time, so
the other processes on a shared machine barely move it; the second recognizer runs on the ensemble's pool
thread and is not in the calling thread's profile (its model time is in `bench.engines`). For each pair:
the compare's CPU ms, the share in ONNX Runtime's `run`, and the top functions by own time, per compare.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import time

from bench.photos import full_hd_jpeg
from engine.pipeline import FacePipeline, PipelineConfig
from tests.assets import asset_path

PAIRS = {"portrait": ("obama.jpg", "biden.jpg"), "group": ("obama.jpg", "sample1.jpg")}


def pair_bytes(kind: str) -> tuple[bytes, bytes]:
    origin, target = PAIRS[kind]
    target_bytes = full_hd_jpeg(target) if kind == "portrait" else asset_path(target).read_bytes()
    return full_hd_jpeg(origin), target_bytes


def profile_pair(pipeline: FacePipeline, origin: bytes, target: bytes, rounds: int, top: int) -> str:
    """The profile of `rounds` compares as text, per compare."""
    for _ in range(3):
        pipeline.compare(origin, target)
    profiler = cProfile.Profile(time.thread_time)
    cpu_started, process_started = time.thread_time(), time.process_time()
    profiler.enable()
    for _ in range(rounds):
        pipeline.compare(origin, target)
    profiler.disable()
    thread_ms = (time.thread_time() - cpu_started) * 1000 / rounds
    process_ms = (time.process_time() - process_started) * 1000 / rounds
    stats = pstats.Stats(profiler)
    out = io.StringIO()
    out.write(f"process CPU per compare {process_ms:.2f} ms: the calling thread {thread_ms:.2f}, the other threads "
              f"(the second recognizer) {process_ms - thread_ms:.2f}\n")
    outside = thread_ms
    for label, calls, ms in categories(stats, rounds):
        out.write(f"  {label:<44} {calls:6.1f} calls {ms:7.2f} ms\n")
        outside -= ms if label.startswith("model") else 0
    out.write(f"  calling thread outside the models (profiler's overhead included): {outside:.2f} ms\n\n")
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue() + f"(times in the listing are for all {rounds} compares)\n"


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
    args = parser.parse_args(argv)
    pipeline = FacePipeline(PipelineConfig())
    try:
        for kind in PAIRS:
            print(f"== {kind}: {' vs '.join(PAIRS[kind])}")
            print(profile_pair(pipeline, *pair_bytes(kind), args.rounds, args.top))
    finally:
        pipeline.close()


if __name__ == "__main__":
    main()
