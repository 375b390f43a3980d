"""The in-process compare of the photo pairs `bench.latency` sends: the floor an HTTP compare is measured against.

    python bench/inprocess.py DIR [--rounds 3]

DIR holds `pairs.json` (a list of {"kind", "origin", "target"}, file names in DIR); the answer is one JSON
line on stdout. Run as a script (not `-m`) with another checkout first on PYTHONPATH, it times that
checkout's pipeline: `bench.latency --checkout` measures "before" with the code that serves it. Each
compare is timed in wall time and in the process's CPU time (every thread), after one warm-up round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bench.latency import percentile
from engine.pipeline import FacePipeline, PipelineConfig


def figures(wall: list[float], cpu: list[float]) -> dict[str, float | int]:
    return {"n": len(wall), "p50_ms": percentile(wall, 50), "mean_ms": round(statistics.fmean(wall), 2),
            "cpu_ms_per_compare": round(statistics.fmean(cpu), 2)}


def measure(folder: Path, rounds: int) -> dict:
    """Every pair once per round, in the order given (the HTTP cycle's mix of portraits and groups)."""
    pairs = [(p["kind"], (folder / p["origin"]).read_bytes(), (folder / p["target"]).read_bytes())
             for p in json.loads((folder / "pairs.json").read_text())]
    pipeline = FacePipeline(PipelineConfig())
    for _, origin, target in pairs:
        pipeline.compare(origin, target)
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for _ in range(rounds):
        for kind, origin, target in pairs:
            started, cpu_started = time.perf_counter(), time.process_time()
            pipeline.compare(origin, target)
            wall.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
            cpu.setdefault(kind, []).append((time.process_time() - cpu_started) * 1000)
    everything_wall = [ms for values in wall.values() for ms in values]
    everything_cpu = [ms for values in cpu.values() for ms in values]
    return {**figures(everything_wall, everything_cpu),
            "by_kind": {kind: figures(wall[kind], cpu[kind]) for kind in wall}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.folder, args.rounds)))


if __name__ == "__main__":
    main()
