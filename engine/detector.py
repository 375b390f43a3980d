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
from engine.preprocess import Letterbox, letterbox_geometry, letterbox_window, to_blob
from models.manifest import ModelSpec

CANVAS_STEP = 16


@lru_cache(maxsize=256)
def priors_for(size: tuple[int, int], min_sizes: tuple[tuple[int, ...], ...], steps: tuple[int, ...],
               full_size: tuple[int, int] | None = None, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Centre-form priors (cx, cy, w, h as ratios of `size`) in the network's output order for an input `size`.

    A canvas fitted to its image is the top-left of the `full_size` one: the network's cells there are the
    full canvas's cells, so their priors are too (spacing and clipping included), and a face gets the
    same box on either canvas. A window of the full canvas at `origin` (on multiples of the largest step)
    has the cells, and so the priors, of that part of it.
    """
    width, height = size
    full_width, full_height = full_size or size
    left, top = origin
    rows = []
    for step, sizes in zip(steps, min_sizes, strict=True):
        cols_n, rows_n = int(np.ceil(width / step)), int(np.ceil(height / step))
        full_cols, full_rows = int(np.ceil(full_width / step)), int(np.ceil(full_height / step))
        # Centres are spaced over the feature map's cells (as the graph's own priors are), not by `step`.
        cy, cx = np.meshgrid((np.arange(rows_n) + top // step + 0.5) / full_rows,
                             (np.arange(cols_n) + left // step + 0.5) / full_cols, indexing="ij")
        for_level = np.empty((rows_n, cols_n, len(sizes), 4), dtype=np.float32)
        for_level[..., 0] = cx[..., None]
        for_level[..., 1] = cy[..., None]
        for_level[..., 2] = np.array(sizes, dtype=np.float32) / full_width
        for_level[..., 3] = np.array(sizes, dtype=np.float32) / full_height
        rows.append(for_level.reshape(-1, 4))
    # Clipped to the full canvas, as the priors the network was trained with were clipped to its input.
    full = np.clip(np.concatenate(rows), 0.0, 1.0)
    to_size = np.array([full_width / width, full_height / height] * 2, dtype=np.float32)
    shift = np.array([left / width, top / height, 0.0, 0.0], dtype=np.float32)
    return full * to_size - shift


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

    def detect(self, images: list[np.ndarray], largest: tuple[int, int] | None = None) -> list[list[Detection]]:
        """Faces per image, in image pixels, largest first, at most `max_faces`; `largest` is the canvas the
        images are letterboxed into (the manifest's size unless told: a smaller one is a coarse pass).

        Images of one canvas size run as one batch; each image's canvas depends on it alone, so its faces
        do not depend on what it was batched with.
        """
        largest = largest or self.spec.input.size
        sizes = [self.canvas_size(image, largest) for image in images]
        found: list[list[Detection]] = [[] for _ in images]
        for size in dict.fromkeys(sizes):
            indices = [i for i, s in enumerate(sizes) if s == size]
            outputs = self.backend.infer_images(self.spec.input,
                                                self.inputs([images[i] for i in indices], size, largest))
            scales = [self.scale(images[i], largest) for i in indices]
            priors = priors_for(size, self.min_sizes, self.steps, largest)
            for i, scores, regression, scale in zip(indices, outputs["scores"], outputs["regression"], scales,
                                                    strict=True):
                found[i] = self._faces(scores[:, 1], regression, scale, priors, size)
        return found

    def detect_window(self, image: np.ndarray, window: tuple[int, int, int, int]) -> list[Detection]:
        """Faces in a window (x1, y1, x2, y2 in pixels of the image's fine canvas, the corners on multiples of
        the largest step) of the fine canvas: the pixels, cells and priors of that part of the full pass, so
        a face well inside gets the full pass's box, for the window's share of its work."""
        scale = self.scale(image)
        x1, y1, x2, y2 = window
        size = (x2 - x1, y2 - y1)
        outputs = self.backend.infer({self.spec.input.name: to_blob([self.window_canvas(image, window)],
                                                                    self.spec.input, size)})
        priors = priors_for(size, self.min_sizes, self.steps, self.spec.input.size, (x1, y1))
        found = self._faces(outputs["scores"][0, :, 1], outputs["regression"][0], scale, priors, size)
        return [Detection(d.x1 + x1 / scale, d.y1 + y1 / scale, d.x2 + x1 / scale, d.y2 + y1 / scale, d.score)
                for d in found]

    def window_canvas(self, image: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
        """The uint8 pixels of a window of the fine canvas (`detect_window`), made from the image alone."""
        return letterbox_window(image, self.spec.input.size, self.max_upscale, window)

    def canvas_size(self, image: np.ndarray, largest: tuple[int, int] | None = None) -> tuple[int, int]:
        """The smallest (width, height) in steps of `CANVAS_STEP` holding the image letterboxed into `largest`
        (the manifest's size unless told)."""
        largest_width, largest_height = largest or self.spec.input.size
        _, width, height = letterbox_geometry(image.shape, (largest_width, largest_height), self.max_upscale)
        return min(largest_width, _round_up(width)), min(largest_height, _round_up(height))

    def scale(self, image: np.ndarray, largest: tuple[int, int] | None = None) -> float:
        """From image pixels to canvas pixels, letterboxed into `largest` (the manifest's size unless told)."""
        return letterbox_geometry(image.shape, largest or self.spec.input.size, self.max_upscale)[0]

    def inputs(self, images: list[np.ndarray], size: tuple[int, int] | None = None,
               largest: tuple[int, int] | None = None) -> list[Letterbox]:
        """What the detector asks its backend for: each image letterboxed into `largest` (the manifest's size
        unless told) on a canvas of `size` (default: `largest`)."""
        largest = largest or self.spec.input.size
        return [Letterbox(image, largest, size or largest, self.max_upscale) for image in images]

    def canvases(self, images: list[np.ndarray], size: tuple[int, int] | None = None,
                 largest: tuple[int, int] | None = None) -> tuple[list[np.ndarray], list[float]]:
        """The letterboxed uint8 canvases made on the CPU and their scales: what INT8 calibration must see."""
        return ([request.image() for request in self.inputs(images, size, largest)],
                [self.scale(image, largest) for image in images])

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
