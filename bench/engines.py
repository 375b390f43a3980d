"""Which CPU engine runs each model fastest: ONNX Runtime at each optimisation level, with PRelu as is or
unfolded, against OpenCV's DNN module, on what one compare sends, with the outputs checked alike.
Every ONNX Runtime variant flushes denormal weights to zero and runs with denormal activations as zero (as
the backend does) but two, which show what each is worth; the reference is the graph as stored.

    python -m bench.engines [--repeat 15] [--threads 1] [--inputs faces|noise] [--json]

`--inputs faces` (the default) times every call a compare of two 1920x1080 portraits makes to each model
(the coarse and fine canvases, the landmark patches, the aligned crops, the liveness crop of a compare that
asks for it), recorded from the pipeline;
`noise` one batch of uniform noise per model (the earlier rounds' figures), sized as one compare's.
Where the INT8 route's Q/DQ model of a model is in the cache, it is timed too, with the backend's options.

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

from bench.photos import full_hd_jpeg
from engine.backends.onnxruntime import OPTIMISATION, OnnxRuntimeBackend
from engine.liveness import LivenessCheck
from engine.pipeline import FacePipeline
from models.manifest import Manifest, load_manifest
from models.store import prepared_models

# Rows per model in one compare of two one-face photos: two canvases, two patches, two crops, and the matched
# face's liveness crop where asked.
ROWS = {"detector": 2, "landmarks": 2, "recognizer": 2, "liveness": 1, "face_check": 2}
PORTRAITS = ("obama.jpg", "biden.jpg")

Runner = Callable[[np.ndarray], np.ndarray]


def onnxruntime_runner(path, optimisation: str, unfold: bool, threads: int, flush: bool = True,
                       zero_denormals: bool = True) -> Runner:
    backend = OnnxRuntimeBackend(path, threads=threads, optimisation=optimisation, unfold=unfold, flush=flush,
                                 zero_denormals=zero_denormals)
    name = backend.input_names[0]
    return lambda batch: next(iter(backend.infer({name: batch}).values()))


def opencv_runner(path) -> Runner:
    net = cv2.dnn.readNetFromONNX(str(path))

    def run(batch: np.ndarray) -> np.ndarray:
        net.setInput(batch)
        return net.forward()

    return run


def cpu_ms(run: Runner, batches: list[np.ndarray]) -> float:
    started = time.thread_time()
    for batch in batches:
        run(batch)
    return (time.thread_time() - started) * 1000


def noise_batches(manifest: Manifest) -> dict[str, list[np.ndarray]]:
    """One batch of uniform noise per model, as many rows as one compare sends it."""
    roles = manifest.pipeline.roles()
    batches = {}
    for name, spec in manifest.models.items():
        channels = 1 if spec.input.channels == "grey" else 3
        width, height = spec.input.size
        shape = (ROWS[roles.get(name, "recognizer")], channels, height, width)
        batches[name] = [np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)]
    return batches


def face_batches(manifest: Manifest) -> dict[str, list[np.ndarray]]:
    """Every input each model gets in one compare of two Full HD portraits, recorded from the pipeline."""
    pipeline = FacePipeline(manifest=manifest)
    recorded: dict[str, list[np.ndarray]] = {name: [] for name in manifest.models}
    for name, backend in pipeline.backends.items():
        infer = backend.infer

        def recording(inputs: dict[str, np.ndarray], infer=infer, calls=recorded[name]) -> dict[str, np.ndarray]:
            calls.append(next(iter(inputs.values())).copy())
            return infer(inputs)

        backend.infer = recording  # type: ignore[method-assign]
    origin, target = (pipeline.decode(full_hd_jpeg(photo)) for photo in PORTRAITS)
    pipeline.compare_images(origin, target, liveness=LivenessCheck())
    pipeline.close()
    return {name: calls for name, calls in recorded.items() if calls}


def measure(repeat: int, threads: int, inputs: str = "faces") -> dict[str, dict[str, dict[str, float]]]:
    """Per model and engine: median CPU ms for one compare's inputs, and the largest difference from the
    reference (ONNX Runtime, basic optimisation, the graph as stored, denormals included)."""
    cv2.setNumThreads(threads)
    manifest = load_manifest()
    models = prepared_models(manifest)
    roles = manifest.pipeline.roles()
    every = face_batches(manifest) if inputs == "faces" else noise_batches(manifest)
    names = [*(n for n in roles if n in every), *(n for n in every if n not in roles)]
    results = {}
    for name in names:
        path = models[name].prepared
        batches = every[name]
        runners = {f"onnxruntime {level}{' unfolded' if unfold else ''}": onnxruntime_runner(path, level, unfold,
                                                                                            threads)
                   for unfold in (False, True) for level in OPTIMISATION}
        runners["onnxruntime all unfolded, denormal activations kept"] = onnxruntime_runner(
            path, "all", True, threads, zero_denormals=False)
        runners["onnxruntime all unfolded, denormals kept"] = onnxruntime_runner(path, "all", True, threads, False,
                                                                                 zero_denormals=False)
        runners["opencv dnn"] = opencv_runner(path)
        if models[name].quantized.exists():  # after `facecompare engines build --precision int8 ... --onnx-only`
            runners["onnxruntime int8 (Q/DQ), as precision = int8 runs it"] = onnxruntime_runner(
                models[name].quantized, "all", True, threads)
        reference = onnxruntime_runner(path, "basic", False, threads, False, zero_denormals=False)
        expected = [reference(batch) for batch in batches]
        differences = {engine: max(float(np.abs(run(batch).reshape(want.shape) - want).max())
                                   for batch, want in zip(batches, expected, strict=True))
                       for engine, run in runners.items()}
        samples: dict[str, list[float]] = {engine: [] for engine in runners}
        for _ in range(repeat):
            for engine, run in runners.items():
                samples[engine].append(cpu_ms(run, batches))
        results[name] = {engine: {"cpu_ms": round(statistics.median(values), 2),
                                  "max_abs_diff": float(f"{differences[engine]:.2g}")}
                         for engine, values in samples.items()}
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--inputs", choices=("faces", "noise"), default="faces")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = measure(args.repeat, args.threads, args.inputs)
    if args.json:
        print(json.dumps(results))
        return
    for name, engines in results.items():
        print(name)
        for engine, stats in engines.items():
            print(f"    {engine:52s} {stats['cpu_ms']:8.2f} ms   max |diff| {stats['max_abs_diff']:.1e}")


if __name__ == "__main__":
    main()
