"""Microseconds per face for the quality in the answer (engine/quality.py), and for each of its parts; with
`--values`, what the values read on real faces, their blurred and darkened copies.

    python -m bench.quality [--repeat 300]
    python -m bench.quality --values ../shared/data/lfw-dev/images [--limit 500]

The faces are those of the test photos at 1920x1080 (bench/photos.py), decoded and found as a compare
finds them. Parts and photos are interleaved round by round, so a busy machine slows them alike; the median
over rounds and then over photos is reported.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from bench.photos import full_hd_jpeg
from engine.decode import DecodedImage
from engine.pipeline import FacePipeline, PipelineConfig
from engine.quality import FaceQuality, brightness, face_quality, inner_face, pose, sharpness
from tests.assets import asset_path

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
        "face_quality (all)": lambda: face_quality(image.pixels, landmarks, round(found[0].width)),
    }


def quality_of(pipeline: FacePipeline, pixels: np.ndarray) -> FaceQuality | None:
    """The origin's quality, as a compare of the image with itself reports it; None without a face."""
    image = DecodedImage(pixels=np.ascontiguousarray(pixels), format="jpeg")
    face = pipeline.compare_images(image, image).face
    return face.quality if face is not None else None


def report_values(pipeline: FacePipeline, folder: Path, limit: int) -> None:
    """Percentiles (5, 25, 50, 75, 95) of each value for the test photos and up to `limit` photos under
    `folder`, as they are, blurred (Gaussian, sigma 2 and 3) and at half brightness."""
    sets = {"test photos": [pipeline.decode(asset_path(name).read_bytes()).pixels for name in PHOTOS],
            folder.name: [pipeline.decode(path.read_bytes()).pixels
                          for path in sorted(folder.rglob("*.jpg"))[:limit]]}
    copies: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "as is": lambda p: p, "blur 2": lambda p: cv2.GaussianBlur(p, (0, 0), 2.0),
        "blur 3": lambda p: cv2.GaussianBlur(p, (0, 0), 3.0), "half bright": lambda p: (p * 0.5).astype(np.uint8)}
    print(f"{'set / copy':32s}{'faces':>6s}  brightness           sharpness            |yaw|")
    for set_name, images in sets.items():
        for copy_name, copy in copies.items():
            found = [q for q in (quality_of(pipeline, copy(p)) for p in images) if q is not None]
            columns = [[q.brightness for q in found], [q.sharpness for q in found], [abs(q.pose.yaw) for q in found]]
            cells = ["/".join(f"{v:.0f}" for v in np.percentile(c, [5, 25, 50, 75, 95])) for c in columns]
            print(f"{set_name + ' / ' + copy_name:32s}{len(found):6d}  " + "".join(f"{c:21s}" for c in cells))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--values", type=Path, help="a folder of face photos (JPEG) to read the values on")
    parser.add_argument("--limit", type=int, default=500)
    args = parser.parse_args(argv)
    pipeline = FacePipeline(PipelineConfig())
    if args.values:
        report_values(pipeline, args.values, args.limit)
        return
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
