"""68-point landmarks (PFLD-style) on the detector's box, reduced to the five alignment points."""

from __future__ import annotations

import numpy as np

from engine.backends import Backend
from engine.faces import Detection
from engine.preprocess import Crop
from models.manifest import ModelSpec

# 0-based indices into the 68 points: eyes (mean of four lid points each), nose tip, mouth corners.
LEFT_EYE = (37, 38, 40, 41)
RIGHT_EYE = (43, 44, 46, 47)
NOSE_TIP = (30,)
MOUTH_LEFT = (48, 60)
MOUTH_RIGHT = (54, 64)
FIVE_POINT_GROUPS = (LEFT_EYE, RIGHT_EYE, NOSE_TIP, MOUTH_LEFT, MOUTH_RIGHT)


def _five_point_weights() -> np.ndarray:
    """Each of the five points as a row of weights over the 68: the means of all faces in one product."""
    weights = np.zeros((len(FIVE_POINT_GROUPS), 68), dtype=np.float32)
    for row, group in enumerate(FIVE_POINT_GROUPS):
        weights[row, list(group)] = 1.0 / len(group)
    return weights


FIVE_POINT_WEIGHTS = _five_point_weights()


def five_points(points68: np.ndarray) -> np.ndarray:
    """(..., 5, 2) points in the ArcFace template's order from (..., 68, 2) landmarks."""
    return FIVE_POINT_WEIGHTS @ points68


def crop_box(detection: Detection, image_shape: tuple[int, ...], expand: float) -> tuple[int, int, int, int]:
    """The landmark model's crop: a square of the box's height (the model was trained on square crops),
    scaled about the box's centre and shifted (not cut) to stay in the image."""
    height, width = image_shape[:2]
    side = detection.height * expand
    box_w = min(side, width - 1)
    box_h = min(side, height - 1)
    cx, cy = (detection.x1 + detection.x2) / 2, (detection.y1 + detection.y2) / 2
    x1 = min(max(cx - box_w / 2, 0.0), width - 1 - box_w)
    y1 = min(max(cy - box_h / 2, 0.0), height - 1 - box_h)
    return int(x1), int(y1), max(1, int(box_w)), max(1, int(box_h))


class Pfld68Landmarks:
    """Landmarks for many faces in one batch; points come back in image pixels."""

    def __init__(self, backend: Backend, spec: ModelSpec, *, expand: float = 1.0) -> None:
        self.backend = backend
        self.spec = spec
        self.expand = expand

    def inputs(self, crops: list[tuple[np.ndarray, Detection]]) -> list[Crop]:
        """What the model is asked for: each face's square crop box of its image, at the model's size."""
        return [Crop(image, crop_box(detection, image.shape, self.expand), self.spec.input.size)
                for image, detection in crops]

    def patches(self, crops: list[tuple[np.ndarray, Detection]]) -> list[np.ndarray]:
        """The uint8 image patches the model sees, cut on the CPU: what INT8 calibration must see."""
        return [request.image() for request in self.inputs(crops)]

    def landmarks68(self, crops: list[tuple[np.ndarray, Detection]]) -> np.ndarray:
        """(N, 68, 2) landmarks in image pixels for each (image, detection)."""
        if not crops:
            return np.zeros((0, 68, 2), dtype=np.float32)
        requests = self.inputs(crops)
        boxes = [request.box for request in requests]
        output = self.backend.infer_images(self.spec.input, requests)
        relative = next(iter(output.values())).reshape(len(crops), 68, 2)
        origins = np.array([(x, y) for x, y, _, _ in boxes], dtype=np.float32)[:, None, :]
        sizes = np.array([(w, h) for _, _, w, h in boxes], dtype=np.float32)[:, None, :]
        return relative * sizes + origins

    def points(self, crops: list[tuple[np.ndarray, Detection]]) -> list[np.ndarray]:
        """Five alignment points for each (image, detection)."""
        return list(five_points(self.landmarks68(crops)))
