"""Microseconds per face for the quality in the answer (engine/quality.py), and for each of its parts.

    python -m bench.quality [--repeat 300]

The faces are those of the test photos at 1920x1080 (bench/photos.py), decoded and found as a compare
finds them. Parts and photos are interleaved round by round, so a busy machine slows them alike; the median
over rounds and then over photos is reported.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from bench.photos import full_hd_jpeg
from engine.pipeline import FacePipeline, PipelineConfig
from engine.quality import brightness, face_quality, inner_face, pose, sharpness

PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "sample2.jpg", "sample3.jpg", "sample5.jpg")


def actions(pipeline: FacePipeline, name: str) -> dict[str, Callable[[], object]]:
    image = pipeline.decode(full_hd_jpeg(name))
    (found,) = pipeline.detector.detect([image.pixels])
    (landmarks,) = pipeline.landmarks.landmarks68([(image.pixels, found[0])])
    grey = inner_face(image.pixels, landmarks)
    return {
        "inner face crop (align + warp + grey)": lambda: inner_face(image.pixels, landmarks),
        "brightness": lambda: brightness(grey),
        "sharpness": lambda: sharpness(grey),
        "pose (solvePnP + eye line)": lambda: pose(landmarks, image.pixels.shape),
        "face_quality (all)": lambda: face_quality(image.pixels, landmarks, found[0], image.source_scale),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args(argv)
    pipeline = FacePipeline(PipelineConfig())
    per_photo = {name: actions(pipeline, name) for name in PHOTOS}
    samples: dict[str, dict[str, list[float]]] = {n: {part: [] for part in a} for n, a in per_photo.items()}
    for _ in range(args.repeat):
        for name, parts in per_photo.items():
            for part, action in parts.items():
                started = time.perf_counter()
                action()
                samples[name][part].append((time.perf_counter() - started) * 1e6)
    parts = list(next(iter(samples.values())))
    print(f"{'part (us per face)':40s}{'median':>8s}{'p90':>8s}")
    for part in parts:
        medians = [statistics.median(samples[name][part]) for name in PHOTOS]
        every = sorted(v for name in PHOTOS for v in samples[name][part])
        print(f"{part:40s}{statistics.median(medians):8.0f}{every[int(0.9 * len(every))]:8.0f}")
    print(f"faces: {len(PHOTOS)} photos at 1920x1080, {args.repeat} rounds, OpenCV threads {pipeline.threads}")


if __name__ == "__main__":
    main()
