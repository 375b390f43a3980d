"""Ultra-Light-Fast-Generic-Face-Detector (RFB): letterboxed input, priors for any size, decode, NMS.

Why the canvas fits the image: the network is fully convolutional and its cost is its input's area, so each
image runs on the smallest canvas (in steps of `CANVAS_STEP` px) that holds it letterboxed, within the
manifest's size. A 16:9 photo needs 640x368 of the 640x480, a 250x250 one 256x256: the same pixels, a
quarter less work or far less (docs/PERFORMANCE.md).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from engine.backends import Backend
from engine.faces import Detection
from engine.preprocess import Letterbox, letterbox_geometry
from models.manifest import ModelSpec

CANVAS_STEP = 16


@lru_cache(maxsize=64)
def priors_for(size: tuple[int, int], min_sizes: tuple[tuple[int, ...], ...], steps: tuple[int, ...],
               full_size: tuple[int, int] | None = None) -> np.ndarray:
    """Centre-form priors (cx, cy, w, h as ratios of `size`) in the network's output order for an input `size`.

    A canvas fitted to its image is the top-left of the `full_size` one: the network's cells there are the
    full canvas's cells, so their priors are too (spacing and clipping included), and a face gets the
    same box on either canvas.
    """
    width, height = size
    full_width, full_height = full_size or size
    rows = []
    for step, sizes in zip(steps, min_sizes, strict=True):
        cols_n, rows_n = int(np.ceil(width / step)), int(np.ceil(height / step))
        full_cols, full_rows = int(np.ceil(full_width / step)), int(np.ceil(full_height / step))
        # Centres are spaced over the feature map's cells (as the graph's own priors are), not by `step`.
        cy, cx = np.meshgrid((np.arange(rows_n) + 0.5) / full_rows, (np.arange(cols_n) + 0.5) / full_cols,
                             indexing="ij")
        for_level = np.empty((rows_n, cols_n, len(sizes), 4), dtype=np.float32)
        for_level[..., 0] = cx[..., None]
        for_level[..., 1] = cy[..., None]
        for_level[..., 2] = np.array(sizes, dtype=np.float32) / full_width
        for_level[..., 3] = np.array(sizes, dtype=np.float32) / full_height
        rows.append(for_level.reshape(-1, 4))
    # Clipped to the full canvas, as the priors the network was trained with were clipped to its input.
    full = np.clip(np.concatenate(rows), 0.0, 1.0)
    to_size = np.array([full_width / width, full_height / height] * 2, dtype=np.float32)
    return full * to_size


def _round_up(pixels: int) -> int:
    return -(-pixels // CANVAS_STEP) * CANVAS_STEP


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
        self.min_sizes = tuple(tuple(s) for s in params["min_sizes"])
        self.steps = tuple(params["steps"])

    def detect(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """Faces per image, in image pixels, largest first, at most `max_faces`.

        Images of one canvas size run as one batch; each image's canvas depends on it alone, so its faces
        do not depend on what it was batched with.
        """
        sizes = [self.canvas_size(image) for image in images]
        found: list[list[Detection]] = [[] for _ in images]
        for size in dict.fromkeys(sizes):
            indices = [i for i, s in enumerate(sizes) if s == size]
            outputs = self.backend.infer_images(self.spec.input, self.inputs([images[i] for i in indices], size))
            scales = [self.scale(images[i]) for i in indices]
            priors = priors_for(size, self.min_sizes, self.steps, self.spec.input.size)
            for i, scores, regression, scale in zip(indices, outputs["scores"], outputs["regression"], scales,
                                                    strict=True):
                found[i] = self._faces(scores[:, 1], regression, scale, priors, size)
        return found

    def canvas_size(self, image: np.ndarray) -> tuple[int, int]:
        """The smallest (width, height) in steps of `CANVAS_STEP` holding the image letterboxed."""
        _, width, height = letterbox_geometry(image.shape, self.spec.input.size, self.max_upscale)
        largest_width, largest_height = self.spec.input.size
        return min(largest_width, _round_up(width)), min(largest_height, _round_up(height))

    def scale(self, image: np.ndarray) -> float:
        """From image pixels to canvas pixels."""
        return letterbox_geometry(image.shape, self.spec.input.size, self.max_upscale)[0]

    def inputs(self, images: list[np.ndarray], size: tuple[int, int] | None = None) -> list[Letterbox]:
        """What the detector asks its backend for: each image letterboxed on a canvas of `size` (default: the
        manifest's full size)."""
        return [Letterbox(image, self.spec.input.size, size or self.spec.input.size, self.max_upscale)
                for image in images]

    def canvases(self, images: list[np.ndarray], size: tuple[int, int] | None = None
                 ) -> tuple[list[np.ndarray], list[float]]:
        """The letterboxed uint8 canvases made on the CPU and their scales: what INT8 calibration must see."""
        return [request.image() for request in self.inputs(images, size)], [self.scale(image) for image in images]

    def _faces(self, scores: np.ndarray, regression: np.ndarray, scale: float, priors: np.ndarray,
               size: tuple[int, int]) -> list[Detection]:
        keep = scores >= self.score_threshold
        if not keep.any():
            return []
        width, height = size
        boxes = decode_boxes(regression[keep], priors[keep], self.variances) * (width, height, width, height)
        scores = scores[keep]
        sizes = boxes[:, 2:] - boxes[:, :2]
        big_enough = sizes.min(axis=1) >= self.min_face
        boxes, scores, sizes = boxes[big_enough], scores[big_enough], sizes[big_enough]
        rects = np.concatenate([boxes[:, :2], sizes], axis=1).tolist()
        kept = cv2.dnn.NMSBoxes(rects, scores.tolist(), self.score_threshold, self.nms_iou)
        detections = [Detection(*(boxes[i] / scale).tolist(), score=float(scores[i])) for i in np.ravel(kept)]
        detections.sort(key=lambda d: d.area, reverse=True)
        return detections[: self.max_faces]
