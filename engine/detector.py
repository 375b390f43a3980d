"""Ultra-Light-Fast-Generic-Face-Detector (RFB): letterboxed input, priors for any size, decode, NMS."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from engine.backends import Backend
from engine.faces import Detection
from engine.preprocess import letterbox, to_blob
from models.manifest import ModelSpec


@lru_cache(maxsize=8)
def priors_for(size: tuple[int, int], min_sizes: tuple[tuple[int, ...], ...], steps: tuple[int, ...]) -> np.ndarray:
    """Centre-form priors (cx, cy, w, h as ratios) in the network's output order for an input `size`."""
    width, height = size
    rows = []
    for step, sizes in zip(steps, min_sizes, strict=True):
        cols_n, rows_n = int(np.ceil(width / step)), int(np.ceil(height / step))
        # Centres are spaced over the feature map's cells (as the graph's own priors are), not by `step`.
        cy, cx = np.meshgrid((np.arange(rows_n) + 0.5) / rows_n, (np.arange(cols_n) + 0.5) / cols_n, indexing="ij")
        for_level = np.empty((rows_n, cols_n, len(sizes), 4), dtype=np.float32)
        for_level[..., 0] = cx[..., None]
        for_level[..., 1] = cy[..., None]
        for_level[..., 2] = np.array(sizes, dtype=np.float32) / width
        for_level[..., 3] = np.array(sizes, dtype=np.float32) / height
        rows.append(for_level.reshape(-1, 4))
    # Clipped to the image, as the priors the network was trained with were.
    return np.clip(np.concatenate(rows), 0.0, 1.0)


def decode_boxes(regression: np.ndarray, priors: np.ndarray, variances: tuple[float, float]) -> np.ndarray:
    """SSD decoding to corner form (x1, y1, x2, y2) as ratios of the input."""
    centres = priors[:, :2] + regression[:, :2] * variances[0] * priors[:, 2:]
    sizes = priors[:, 2:] * np.exp(regression[:, 2:] * variances[1])
    return np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)


class UltraFaceDetector:
    """Finds faces in a batch of images at one fixed, letterboxed input size (so requests batch together)."""

    def __init__(self, backend: Backend, spec: ModelSpec, *, max_faces: int = 100) -> None:
        self.backend = backend
        self.spec = spec
        self.max_faces = max_faces
        params = spec.params
        self.max_upscale = float(params["max_upscale"])
        self.score_threshold = float(params["score_threshold"])
        self.nms_iou = float(params["nms_iou"])
        self.min_face = float(params["min_face"])
        self.variances = tuple(params["variances"])
        self.priors = priors_for(spec.input.size, tuple(tuple(s) for s in params["min_sizes"]),
                                 tuple(params["steps"]))

    def detect(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """Faces per image, in image pixels, largest first, at most `max_faces`."""
        canvases, scales = self.canvases(images)
        outputs = self.backend.infer({self.spec.input.name: to_blob(canvases, self.spec.input)})
        return [
            self._faces(scores[:, 1], regression, scale)
            for scores, regression, scale in zip(outputs["scores"], outputs["regression"], scales, strict=True)
        ]

    def canvases(self, images: list[np.ndarray]) -> tuple[list[np.ndarray], list[float]]:
        """The letterboxed uint8 inputs and their scales: what INT8 calibration must see too."""
        pairs = [letterbox(image, self.spec.input.size, self.max_upscale) for image in images]
        return [canvas for canvas, _ in pairs], [scale for _, scale in pairs]

    def _faces(self, scores: np.ndarray, regression: np.ndarray, scale: float) -> list[Detection]:
        keep = scores >= self.score_threshold
        if not keep.any():
            return []
        width, height = self.spec.input.size
        boxes = decode_boxes(regression[keep], self.priors[keep], self.variances) * (width, height, width, height)
        scores = scores[keep]
        sizes = boxes[:, 2:] - boxes[:, :2]
        big_enough = sizes.min(axis=1) >= self.min_face
        boxes, scores, sizes = boxes[big_enough], scores[big_enough], sizes[big_enough]
        rects = np.concatenate([boxes[:, :2], sizes], axis=1).tolist()
        kept = cv2.dnn.NMSBoxes(rects, scores.tolist(), self.score_threshold, self.nms_iou)
        detections = [Detection(*(boxes[i] / scale).tolist(), score=float(scores[i])) for i in np.ravel(kept)]
        detections.sort(key=lambda d: d.area, reverse=True)
        return detections[: self.max_faces]
