"""The in-process compare of the photo pairs `bench.latency` sends: the floor an HTTP compare is measured against.

    python bench/inprocess.py DIR

DIR holds `pairs.json` (a list of {"kind", "origin", "target"}, file names in DIR). After one warm-up round
over the pairs it prints `ready`, then answers each line on stdin (a pair's index) with one JSON line: that
pair compared once, {"kind", "ms", "cpu_ms", "system_cpu_ms", "minor_faults"}: wall time, the process's CPU
time over every thread, the kernel's part of it and the pages the kernel mapped in meanwhile (read beside the
server's, the last two show where its compare pays for memory handed back and taken again).
Run as a script (not `-m`) with another checkout first on PYTHONPATH, it times that checkout's pipeline:
`bench.latency --checkout` measures "before" with the code that serves it. `bench.latency` asks for one
in-process compare before each HTTP one at concurrency 1, so both meet the same load on a shared machine.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

from engine.pipeline import FacePipeline, PipelineConfig


def serve(folder: Path) -> None:
    pairs = [(p["kind"], (folder / p["origin"]).read_bytes(), (folder / p["target"]).read_bytes())
             for p in json.loads((folder / "pairs.json").read_text())]
    # The profile the server beside it reads; unset, a checkout from before profiles runs too.
    profile = os.environ.get("FACECOMPARE_PROFILE")
    pipeline = FacePipeline(PipelineConfig(profile=profile) if profile else PipelineConfig())
    for _, origin, target in pairs:
        pipeline.compare(origin, target)
    print("ready", flush=True)
    for line in sys.stdin:
        kind, origin, target = pairs[int(line)]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        started, cpu_started = time.perf_counter(), time.process_time()
        pipeline.compare(origin, target)
        ms, cpu_ms = (time.perf_counter() - started) * 1000, (time.process_time() - cpu_started) * 1000
        after = resource.getrusage(resource.RUSAGE_SELF)
        print(json.dumps({"kind": kind, "ms": ms, "cpu_ms": cpu_ms,
                          "system_cpu_ms": (after.ru_stime - usage.ru_stime) * 1000,
                          "minor_faults": after.ru_minflt - usage.ru_minflt}), flush=True)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
