"""One pipeline knob changed at a time, each measured as bench.accuracy measures the shipped pipeline
(DevTest errors at the DevTrain threshold, 10-fold, TAR at FAR): the rows of docs/ACCURACY.md's table of
tries and of docs/INT8.md's stage swaps.

    python -m bench.accuracy_tries --lfw DIR [--tries NAME ...]

One JSON line per try. The tries that lost stay here, so a row of the table can be measured again.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from bench.accuracy import evaluate, photos_of, read_pairs
from bench.embeddings import embed_paths
from engine.align import similarity_matrix
from engine.faces import Detection
from engine.landmarks import Pfld68Landmarks, five_points
from engine.pipeline import MIXED_INT8, FacePipeline, PipelineConfig
from engine.preprocess import to_blob
from engine.recognizer import Aligned, ArcFaceRecognizer, RecognizerEnsemble


class SecondLandmarkPass:
    """Landmarks again on the face turned upright by the first pass's points: the same square crop (the
    box's centre and height), rotated by the alignment's angle, so the model sees the upright face it was
    trained on; its points are mapped back to the image."""

    def __init__(self, landmarks: Pfld68Landmarks) -> None:
        self.landmarks = landmarks

    def points(self, crops: list[tuple[np.ndarray, Detection]]) -> list[np.ndarray]:
        first = self.landmarks.points(crops)
        if not crops:
            return first
        width, height = self.landmarks.spec.input.size
        patches, inverses = [], []
        for (image, box), points in zip(crops, first, strict=True):
            matrix = similarity_matrix(points)
            angle = np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))
            centre = ((box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2)
            upright = cv2.getRotationMatrix2D(centre, -angle, width / (box.height * self.landmarks.expand))
            upright[:, 2] += (width / 2 - centre[0], height / 2 - centre[1])
            patches.append(cv2.warpAffine(image, upright, (width, height), flags=cv2.INTER_AREA))
            inverses.append(cv2.invertAffineTransform(upright))
        spec = self.landmarks.spec.input
        output = self.landmarks.backend.infer({spec.name: to_blob(patches, spec)})
        relative = next(iter(output.values())).reshape(len(crops), 68, 2) * (width, height)
        return [five_points(points @ inverse[:, :2].T + inverse[:, 2])
                for points, inverse in zip(relative, inverses, strict=True)]


class FlipSmallFaces(RecognizerEnsemble):
    """Flip averaging only for faces whose aligned crop was enlarged from fewer pixels than it holds."""

    def __init__(self, plain: RecognizerEnsemble) -> None:
        super().__init__(plain.members)
        self.flipped = RecognizerEnsemble([ArcFaceRecognizer(m.backend, m.spec, flip=True) for m in plain.members])
        self.small: list[bool] = []

    def embed(self, faces: list[Aligned]) -> np.ndarray:
        plain = super().embed(faces)
        small = [i for i, is_small in enumerate(self.small) if is_small]
        if small:
            plain[small] = self.flipped.embed([faces[i] for i in small])
        return plain


def flip_small_faces(pipeline: FacePipeline) -> None:
    ensemble = FlipSmallFaces(pipeline.recognizer)
    pipeline.recognizer = ensemble
    faces = pipeline.faces

    def marking(images, detections):
        ensemble.small = [d.width < ensemble.crop_size[0] for found in detections for d in found]
        return faces(images, detections)

    pipeline.faces = marking


def int8_stages(*stages: str) -> Callable[[FacePipeline], None]:
    """These stages from the int8-mixed pipeline (the Q/DQ models of the last calibration, docs/INT8.md), the
    others in FP32: which stage's INT8 costs what. The face check's second look is a stage of its own: it holds
    the detector it looks with."""

    def swap(pipeline: FacePipeline) -> None:
        mixed = FacePipeline(replace(pipeline.config, precision=MIXED_INT8))
        for stage in stages:
            setattr(pipeline, stage, getattr(mixed, stage))

    return swap


def set_attribute(path: str, value: float) -> Callable[[FacePipeline], None]:
    owner, name = path.split(".")
    return lambda pipeline: setattr(getattr(pipeline, owner), name, value)


TRIES: dict[str, Callable[[FacePipeline], None]] = {
    "shipped": lambda pipeline: None,
    "landmark-crop-1.1": set_attribute("landmarks.expand", 1.1),
    "landmark-crop-1.2": set_attribute("landmarks.expand", 1.2),
    "second-landmark-pass": lambda pipeline: setattr(pipeline, "landmarks", SecondLandmarkPass(pipeline.landmarks)),
    "detector-threshold-0.5": set_attribute("detector.score_threshold", 0.5),
    "detector-threshold-0.7": set_attribute("detector.score_threshold", 0.7),
    "detector-threshold-0.8": set_attribute("detector.score_threshold", 0.8),
    "flip-small-faces": flip_small_faces,
    "int8-mixed": int8_stages("detector", "face_check", "landmarks"),
    "int8-detector": int8_stages("detector", "face_check"),
    "int8-mixed-fp32-second-look": int8_stages("detector", "landmarks"),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, required=True, help="LFW dev folder (images/, pairsDev*.tsv)")
    parser.add_argument("--tries", nargs="+", default=list(TRIES), choices=list(TRIES))
    args = parser.parse_args(argv)
    pairs = read_pairs(args.lfw / "images", args.lfw / "pairsDevTest.tsv")
    train = read_pairs(args.lfw / "images", args.lfw / "pairsDevTrain.tsv")
    photos = photos_of(pairs, train)
    for name in args.tries:
        pipeline = FacePipeline(PipelineConfig())
        TRIES[name](pipeline)
        started = time.perf_counter()
        report = evaluate(embed_paths(pipeline, photos), pairs, train, None)
        print(json.dumps({"try": name, "seconds": round(time.perf_counter() - started), **report}), flush=True)


if __name__ == "__main__":
    main()
