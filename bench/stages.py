"""Milliseconds per pipeline stage for one compare of two 1920x1080 JPEGs (one face each), in process.

    python -m bench.stages [--repeat 30] [--threads 0] [--variants no-spin,decode,ort-all,after] [--json]

Each stage is timed on its own over `--repeat` runs; the median is reported. With several variants
(the settings before and after each speed change, see VARIANTS), every variant is loaded in the same
process and their runs are interleaved, so a busy machine slows them alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from bench.photos import full_hd_jpeg
from engine.align import align_face, similarity_matrix
from engine.backends import Backend
from engine.backends.onnxruntime import OnnxRuntimeBackend
from engine.decode import DecodeLimits
from engine.pipeline import FacePipeline, PipelineConfig
from models.manifest import ModelSpec


@dataclass(frozen=True)
class Variant:
    """CPU settings to compare: JPEG decode size, ORT graph optimisation, PRelu unfolding, spin-waiting."""

    decode_long_side: int = DecodeLimits.decode_long_side
    optimisation: str = "all"
    unfold: bool = True
    spin: bool = False


# Each change on top of the one before it. Spinning pools take the cores from whatever runs next, other
# variants' stages included: compare "before" with the others in separate processes, not in one.
VARIANTS = {
    "before": Variant(decode_long_side=2048, optimisation="basic", unfold=False, spin=True),
    "no-spin": Variant(decode_long_side=2048, optimisation="basic", unfold=False),
    "decode": Variant(optimisation="basic", unfold=False),
    "ort-all": Variant(unfold=False),
    "after": Variant(),
}


class VariantPipeline(FacePipeline):
    """The pipeline with its ONNX Runtime backends built to one variant's settings."""

    def __init__(self, config: PipelineConfig, variant: Variant) -> None:
        self.variant = variant
        super().__init__(replace(config, limits=replace(config.limits, decode_long_side=variant.decode_long_side)))

    def _backend(self, spec: ModelSpec) -> Backend:
        return OnnxRuntimeBackend(self.models[spec.name].prepared, max_batch=self.config.max_batch,
                                  threads=self.threads, optimisation=self.variant.optimisation,
                                  unfold=self.variant.unfold, spin=self.variant.spin)


def stage_actions(pipeline: FacePipeline) -> dict[str, Callable[[], object]]:
    """Each stage as a call on the same two inputs, made by the stages before it."""
    origin, target = full_hd_jpeg("obama.jpg"), full_hd_jpeg("obama2.jpg")
    images = [pipeline.decode(origin), pipeline.decode(target)]
    pixels = [image.pixels for image in images]
    detections = [found[:1] for found in pipeline.detector.detect(pixels)]
    crops_in = [(p, found[0]) for p, found in zip(pixels, detections, strict=True)]
    points = pipeline.landmarks.points(crops_in)
    size = pipeline.recognizer.crop_size
    aligned = [(p, similarity_matrix(pts, size)) for p, pts in zip(pixels, points, strict=True)]
    return {
        "decode (2 images)": lambda: [pipeline.decode(data) for data in (origin, target)],
        "detect (batch of 2)": lambda: pipeline.detector.detect(pixels),
        "landmarks (2 faces)": lambda: pipeline.landmarks.points(crops_in),
        "align (2 faces)": lambda: [align_face(p, pts, size) for p, pts in zip(pixels, points, strict=True)],
        "embed (2 faces, their warp included)": lambda: pipeline.recognizer.embed(aligned),
        "end to end (compare)": lambda: pipeline.compare(origin, target),
    }


def measure(pipelines: dict[str, FacePipeline], repeat: int) -> dict[str, dict[str, float]]:
    """Median ms per variant and stage; each round runs every stage of every variant once."""
    actions = {name: stage_actions(pipeline) for name, pipeline in pipelines.items()}
    samples: dict[str, dict[str, list[float]]] = {name: {stage: [] for stage in a} for name, a in actions.items()}
    for stages in actions.values():
        for action in stages.values():
            action()
    for _ in range(repeat):
        for name, stages in actions.items():
            for stage, action in stages.items():
                started = time.perf_counter()
                action()
                samples[name][stage].append((time.perf_counter() - started) * 1000)
    return {name: {stage: round(statistics.median(values), 2) for stage, values in stages.items()}
            for name, stages in samples.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: all cores)")
    parser.add_argument("--variants", type=lambda s: s.split(","), default=["after"],
                        help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    config = PipelineConfig(threads=args.threads)
    pipelines: dict[str, FacePipeline] = {name: VariantPipeline(config, VARIANTS[name]) for name in args.variants}
    results = measure(pipelines, args.repeat)
    if args.json:
        print(json.dumps(results if len(results) > 1 else next(iter(results.values()))))
        return
    names = list(results)
    print(f"{'stage (median ms)':24s}" + "".join(f"{name:>10s}" for name in names))
    for stage in results[names[0]]:
        print(f"{stage:24s}" + "".join(f"{results[name][stage]:10.2f}" for name in names))


if __name__ == "__main__":
    main()
