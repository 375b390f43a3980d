"""The calibration set: real photos through exactly the inference preprocessing, kept as each model's uint8 input.

A mismatch between calibration and inference preprocessing is the usual cause of "INT8 finds nothing", so the
images here come from the pipeline's own stages (letterbox, landmark patch, aligned crop) and only `to_blob`,
the same call inference makes, turns them into tensors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.align import align_face
from engine.errors import ApiError
from engine.pipeline import FacePipeline
from engine.preprocess import to_blob
from models.manifest import InputSpec

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


@dataclass
class CalibrationSet:
    """Per model name, the uint8 images that `to_blob` turns into that model's input."""

    images: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, model: str, images: list[np.ndarray]) -> None:
        self.images.setdefault(model, []).extend(images)

    def batches(self, model: str, spec: InputSpec, batch: int) -> Iterator[np.ndarray]:
        """NCHW float32 batches, exactly as inference builds them."""
        images = self.images.get(model, [])
        for start in range(0, len(images), batch):
            yield to_blob(images[start : start + batch], spec)

    def counts(self) -> dict[str, int]:
        return {model: len(images) for model, images in self.images.items()}


def photo_paths(folder: Path, limit: int | None = None) -> list[Path]:
    """The photos under `folder`, spread evenly over the sorted list when there are more than `limit`."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    if limit is not None and len(paths) > limit:
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, limit).round().astype(int)]
    return paths


def build_calibration_set(paths: list[Path], pipeline: FacePipeline, *, max_detector: int = 300,
                          max_faces: int = 1500, faces_per_photo: int = 5) -> CalibrationSet:
    """Detector canvases from up to `max_detector` photos; landmark patches and aligned crops of up to
    `max_faces` faces found by the (FP32) pipeline itself."""
    result = CalibrationSet()
    detector, landmarks, recognizer = pipeline.detector, pipeline.landmarks, pipeline.recognizer
    faces = 0
    for index, path in enumerate(paths):
        if index >= max_detector and faces >= max_faces:
            break
        try:
            pixels = pipeline.decode(path.read_bytes()).pixels
        except ApiError:
            continue
        if index < max_detector:
            result.add(detector.spec.name, detector.canvases([pixels])[0])
        if faces >= max_faces:
            continue
        (found,) = detector.detect([pixels])
        crops = [(pixels, d) for d in found[:faces_per_photo]]
        if not crops:
            continue
        result.add(landmarks.spec.name, landmarks.patches(crops))
        aligned = [align_face(pixels, p, recognizer.crop_size) for p in landmarks.points(crops)]
        for member in recognizer.members:
            result.add(member.spec.name, aligned)
        faces += len(crops)
    return result
