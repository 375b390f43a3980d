"""Which CPU engine runs each model fastest: ONNX Runtime at each optimisation level, with PRelu as is or
unfolded, against OpenCV's DNN module, on the batch one compare sends, with the outputs checked alike.
Every ONNX Runtime variant flushes denormal weights to zero (as the backend does) but one, which shows what
the flush is worth; the reference is the graph as stored.

    python -m bench.engines [--repeat 15] [--threads 1] [--json]

Times are the calling thread's CPU time (median), not wall time: with one thread every engine computes on
the caller, and CPU time barely moves when other processes share the cores, where wall time triples.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np

from engine.backends.onnxruntime import OPTIMISATION, OnnxRuntimeBackend
from models.manifest import load_manifest
from models.store import prepared_models

# Rows per model in one compare of two one-face photos: two canvases, two patches, two crops and their mirrors.
ROWS = {"detector": 2, "landmarks": 2, "recognizer": 4}

Runner = Callable[[np.ndarray], np.ndarray]


def onnxruntime_runner(path, optimisation: str, unfold: bool, threads: int, flush: bool = True) -> Runner:
    backend = OnnxRuntimeBackend(path, threads=threads, optimisation=optimisation, unfold=unfold, flush=flush)
    name = backend.input_names[0]
    return lambda batch: next(iter(backend.infer({name: batch}).values()))


def opencv_runner(path) -> Runner:
    net = cv2.dnn.readNetFromONNX(str(path))

    def run(batch: np.ndarray) -> np.ndarray:
        net.setInput(batch)
        return net.forward()

    return run


def cpu_ms(run: Runner, batch: np.ndarray) -> float:
    started = time.thread_time()
    run(batch)
    return (time.thread_time() - started) * 1000


def measure(repeat: int, threads: int) -> dict[str, dict[str, dict[str, float]]]:
    """Per model and engine: median CPU ms for one compare's batch, and the largest difference from the
    reference (ONNX Runtime, basic optimisation, the graph as stored, denormals included)."""
    cv2.setNumThreads(threads)
    manifest = load_manifest()
    models = prepared_models(manifest)
    roles = manifest.pipeline.roles()
    names = [*roles, *(n for n in manifest.models if n not in roles)]
    results = {}
    for name in names:
        spec = manifest.models[name]
        path = models[name].prepared
        channels = 1 if spec.input.channels == "grey" else 3
        width, height = spec.input.size
        rows = ROWS[roles.get(name, "recognizer")]
        batch = np.random.default_rng(0).uniform(-1, 1, (rows, channels, height, width)).astype(np.float32)
        runners = {f"onnxruntime {level}{' unfolded' if unfold else ''}": onnxruntime_runner(path, level, unfold,
                                                                                            threads)
                   for unfold in (False, True) for level in OPTIMISATION}
        runners["onnxruntime all unfolded, denormals kept"] = onnxruntime_runner(path, "all", True, threads, False)
        runners["opencv dnn"] = opencv_runner(path)
        reference = onnxruntime_runner(path, "basic", False, threads, False)(batch)
        samples: dict[str, list[float]] = {engine: [] for engine in runners}
        differences = {engine: float(np.abs(run(batch).reshape(reference.shape) - reference).max())
                       for engine, run in runners.items()}
        for _ in range(repeat):
            for engine, run in runners.items():
                samples[engine].append(cpu_ms(run, batch))
        results[name] = {engine: {"cpu_ms": round(statistics.median(values), 2),
                                  "max_abs_diff": float(f"{differences[engine]:.2g}")}
                         for engine, values in samples.items()}
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = measure(args.repeat, args.threads)
    if args.json:
        print(json.dumps(results))
        return
    for name, engines in results.items():
        print(name)
        for engine, stats in engines.items():
            print(f"    {engine:42s} {stats['cpu_ms']:8.2f} ms   max |diff| {stats['max_abs_diff']:.1e}")


if __name__ == "__main__":
    main()
