"""Passive liveness (presentation attack detection) of one face, MiniFASNet-style: is it a live person in front
of the camera, or a printed photo or a screen held up to it? Input convention measured in docs/LIVENESS.md."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.backends import Backend
from engine.faces import Detection
from engine.preprocess import to_blob
from engine.score import floor2
from models.manifest import ModelSpec


@dataclass(frozen=True)
class LivenessCheck:
    """A compare's liveness check: the score (0-100) a live face reaches, None for the shipped one, and whether
    a target that is not live refuses the match (a workspace's `require-liveness`) or is only reported."""

    threshold: float | None = None
    required: bool = False


def crop_box(detection: Detection, image_shape: tuple[int, ...], scale: float) -> tuple[int, int, int, int]:
    """The model's view of a face as (x, y, width, height): a square of `scale` times the box's longer side about
    its centre, shrunk (never cut) to fit the image and shifted into it, as the model saw faces in training."""
    height, width = image_shape[:2]
    side = max(1.0, min(max(detection.width, detection.height) * scale, width - 1.0, height - 1.0))
    cx, cy = (detection.x1 + detection.x2) / 2, (detection.y1 + detection.y2) / 2
    x1 = min(max(cx - side / 2, 0.0), width - 1 - side)
    y1 = min(max(cy - side / 2, 0.0), height - 1 - side)
    return int(max(x1, 0.0)), int(max(y1, 0.0)), int(side), int(side)


class MiniFasNetLiveness:
    """Scores many faces in one batch: the softmax probability of the live class, as 0-100."""

    def __init__(self, backend: Backend, spec: ModelSpec) -> None:
        self.backend = backend
        self.spec = spec
        self.scale = float(spec.params["crop_scale"])
        self.live_class = int(spec.params["live_class"])
        self.threshold = float(spec.params["threshold"])

    def patches(self, faces: list[tuple[np.ndarray, Detection]]) -> list[np.ndarray]:
        """The uint8 RGB squares the model sees, at its input size."""
        size = self.spec.input.size
        boxes = [crop_box(detection, image.shape, self.scale) for image, detection in faces]
        return [cv2.resize(image[y: y + h, x: x + w], size, interpolation=cv2.INTER_LINEAR)
                for (image, _), (x, y, w, h) in zip(faces, boxes, strict=True)]

    def probabilities(self, faces: list[tuple[np.ndarray, Detection]]) -> np.ndarray:
        """(N, classes) softmax probabilities for each (RGB image, detection)."""
        if not faces:
            return np.zeros((0, 0), dtype=np.float32)
        output = self.backend.infer({self.spec.input.name: to_blob(self.patches(faces), self.spec.input)})
        logits = next(iter(output.values())).astype(np.float64)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    def scores(self, faces: list[tuple[np.ndarray, Detection]]) -> list[float]:
        """Each face's liveness, 0-100 (the live class's probability), rounded down as the API shows it."""
        if not faces:
            return []
        return [floor2(float(p) * 100.0) for p in self.probabilities(faces)[:, self.live_class]]
