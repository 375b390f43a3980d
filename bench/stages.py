"""Milliseconds per pipeline stage for one compare of two 1920x1080 JPEGs (one face each), in process.

    python -m bench.stages [--repeat 30] [--threads 0] [--json]

Each stage is timed on its own over `--repeat` runs; the median is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from bench.photos import full_hd_jpeg
from engine.align import align_face
from engine.pipeline import FacePipeline, PipelineConfig


def median_ms(action: Callable[[], object], repeat: int) -> float:
    action()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 2)


def measure(pipeline: FacePipeline, repeat: int) -> dict[str, float]:
    origin, target = full_hd_jpeg("obama.jpg"), full_hd_jpeg("obama2.jpg")
    images = [pipeline.decode(origin), pipeline.decode(target)]
    pixels = [image.pixels for image in images]
    detections = [found[:1] for found in pipeline.detector.detect(pixels)]
    crops_in = [(p, found[0]) for p, found in zip(pixels, detections, strict=True)]
    points = pipeline.landmarks.points(crops_in)
    size = pipeline.recognizer.crop_size
    crops = [align_face(p, pts, size) for p, pts in zip(pixels, points, strict=True)]
    stages = {
        "decode (2 images)": median_ms(lambda: [pipeline.decode(data) for data in (origin, target)], repeat),
        "detect (batch of 2)": median_ms(lambda: pipeline.detector.detect(pixels), repeat),
        "landmarks (2 faces)": median_ms(lambda: pipeline.landmarks.points(crops_in), repeat),
        "align (2 faces)": median_ms(lambda: [align_face(p, pts, size) for p, pts in
                                              zip(pixels, points, strict=True)], repeat),
        "embed (2 faces)": median_ms(lambda: pipeline.recognizer.embed(crops), repeat),
    }
    stages["end to end (compare)"] = median_ms(lambda: pipeline.compare(origin, target), repeat)
    return stages


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: all cores)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    stages = measure(FacePipeline(PipelineConfig(threads=args.threads)), args.repeat)
    if args.json:
        print(json.dumps(stages))
    else:
        for stage, ms in stages.items():
            print(f"{stage:24s} {ms:8.2f} ms")


if __name__ == "__main__":
    main()
