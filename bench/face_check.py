"""Refusing non-faces: photos without a face that still get one, and face photos that lose theirs, for the
detector alone, the shipped check (engine/face_check.py) and the other candidates measured for it.

    python -m bench.face_check --lfw DIR --nuaa DIR [--lfw-every N] [--json]

Non-face photos: bench/nonface_set.py (registry sample images, rescaled and cropped). Face photos: the test
photos, LFW dev (every N-th photo), the NUAA frames (live and printed-photo attacks: both show a face), and
the LFW photos pasted with 50 px faces into Full HD scenes (bench/small_faces.py). A non-face photo counts
if any box survives a rule; a face photo if none does. Every set is split into halves (non-faces by source
image, LFW and scenes by person, NUAA by subject, test photos alternately): choose on "tune", read "check".
"""

from __future__ import annotations

import argparse
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.nonface_set import nonface_photos
from bench.small_faces import background, scene_with_face
from engine.align import ARCFACE_TEMPLATE, similarity_matrix
from engine.pipeline import FacePipeline, PipelineConfig
from engine.preprocess import to_blob, warp_face
from tests.assets import asset_path

TEST_PHOTOS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama_partial_face.jpg",
               "obama_partial_face2.jpg", "32bit.png", *(f"sample{i}.jpg" for i in range(1, 7))]


@dataclass(frozen=True)
class Box:
    """What each candidate rule reads of one detector box."""

    score: float
    aspect: float
    second_look: float
    template_error: float
    embedding_norm: float


RULES: dict[str, Callable[[Box], bool]] = {
    "detector alone (score >= 0.6)": lambda b: True,
    "score >= 0.9": lambda b: b.score >= 0.9,
    "aspect (width / height) 0.6-1.1": lambda b: 0.6 <= b.aspect <= 1.1,
    "landmarks fit the template (error <= 5 px of 112)": lambda b: b.template_error <= 5.0,
    "embedding norm >= 2.2 (fr_feature, before normalising)": lambda b: b.embedding_norm >= 2.2,
    "second look (shipped)": lambda b: b.second_look > 0,
    "second look and embedding norm >= 2.0": lambda b: b.second_look > 0 and b.embedding_norm >= 2.0,
}


def boxes_of(pipeline: FacePipeline, data: bytes) -> list[Box]:
    image = pipeline.decode(data)
    (found,) = pipeline.detector.detect([image.pixels])
    if not found:
        return []
    (looks,) = pipeline.face_check.second_look([image.pixels], [found])
    pixels, in_crop_pixels = pipeline.crop_source(image, found)
    points = pipeline.landmarks.points([(pixels, d) for d in in_crop_pixels])
    matrices = [similarity_matrix(p) for p in points]
    errors = [float(np.sqrt(np.mean(np.sum((p @ m[:, :2].T + m[:, 2] - ARCFACE_TEMPLATE) ** 2, axis=1))))
              for p, m in zip(points, matrices, strict=True)]
    first = pipeline.recognizer.members[0]
    crops = [warp_face(pixels, m, first.spec.input.size) for m in matrices]
    raw = next(iter(first.backend.infer({first.spec.input.name: to_blob(crops, first.spec.input)}).values()))
    norms = np.linalg.norm(raw, axis=1)
    return [Box(d.score, d.width / d.height, look, error, float(norm))
            for d, look, error, norm in zip(found, looks, errors, norms, strict=True)]


def half_by(key: str) -> str:
    return "tune" if zlib.crc32(key.encode()) % 2 == 0 else "check"


def face_sets(pipeline: FacePipeline, lfw: Path, nuaa: Path, every: int) -> dict[str, list[tuple[str, bytes]]]:
    """(half, bytes) of every face photo, by set."""
    lfw_photos = sorted((lfw / "images").glob("*/*.jpg"))[::every]
    scene = background()
    rng = np.random.default_rng(2)
    scenes = [(half_by(p.parent.name), scene_with_face(pipeline, p.read_bytes(), 50, scene, rng))
              for p in lfw_photos[::2]]
    return {
        "test photos": [("tune" if i % 2 == 0 else "check", asset_path(n).read_bytes())
                        for i, n in enumerate(TEST_PHOTOS)],
        "LFW dev": [(half_by(p.parent.name), p.read_bytes()) for p in lfw_photos],
        "NUAA frames": [("tune" if p.parent.name <= "0004" else "check", p.read_bytes())
                        for p in sorted(nuaa.glob("*/*/*.jpg"))],
        "50 px faces in Full HD scenes": [(half, data) for half, data in scenes if data is not None],
    }


def tally(photos: list[tuple[str, list[Box]]], is_face: bool) -> dict[str, dict[str, int]]:
    """Per rule and half: non-face photos left with a box, or face photos left without one."""
    result: dict[str, dict[str, int]] = {}
    for name, rule in RULES.items():
        counts = {"tune": 0, "check": 0}
        for half, boxes in photos:
            kept = any(rule(b) for b in boxes)
            counts[half] += int(kept != is_face)
        result[name] = counts
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, required=True, help="LFW dev folder (images/)")
    parser.add_argument("--nuaa", type=Path, required=True, help="NUAA dev folder (live/, spoof/)")
    parser.add_argument("--lfw-every", type=int, default=1, help="every N-th LFW photo")
    parser.add_argument("--json", action="store_true", help="one JSON object on the last line")
    args = parser.parse_args(argv)
    pipeline = FacePipeline(PipelineConfig())
    nonfaces = nonface_photos()
    report = {"non-face photos with a face": {
        "photos": {"tune": sum(p.half == "tune" for p in nonfaces), "check": sum(p.half == "check" for p in nonfaces)},
        "by rule": tally([(p.half, boxes_of(pipeline, p.data)) for p in nonfaces], is_face=False)}}
    for name, photos in face_sets(pipeline, args.lfw, args.nuaa, args.lfw_every).items():
        measured = [(half, boxes_of(pipeline, data)) for half, data in photos]
        report[f"{name}: photos without a face"] = {
            "photos": {h: sum(half == h for half, _ in photos) for h in ("tune", "check")},
            "no box from the detector": sum(not boxes for _, boxes in measured),
            "by rule": tally([(half, boxes) for half, boxes in measured if boxes], is_face=True)}
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
