"""Coarse-to-fine detection: the detector's own 320x240 canvas finds the faces, the fine scale boxes them.

The detector costs its canvas's area: a Full HD photo's fine canvas (640x368) is four times the coarse one
(320x192). A face large enough is found on both; the coarse box is a few pixels off, so the face is boxed
again at the fine canvas's scale on its surroundings alone (a canvas of about twice the face), which gives
the fine pass's box. The fine pass over the whole image is only needed where a face too small for the
coarse canvas could change the API's answer:

- the origin's face is its largest: a coarse face at least `safe_px` on the coarse canvas, with `dominant`
  times the area of any other face the coarse pass found, is taken, since a face larger than it would be
  found there too, and boxes a few pixels off cannot reorder faces that far apart (two faces of about one
  size are ranked by the fine pass: on LFW photos at kiosk scale, 3 pairs in 131 took the other face
  before this rule); else the origin gets the fine pass;
- the target's face is the most similar: a safe coarse face that matches ends the search, since no other
  face can turn a match into a non-match; else (or with more than `max_refined` safe faces, where one
  fine pass costs less) the target gets the fine pass, and the faces it finds that were already embedded
  (IoU >= `same_face_iou`) keep those embeddings.

A decision within `margin` of the threshold that rests on a refined box is taken again by the fine pass
alone, so coarse-to-fine never turns the fine pipeline's non-match into a match (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.detector import UltraFaceDetector
from engine.faces import Detection
from engine.preprocess import letterbox_geometry, shrinks_by_area


@dataclass(frozen=True)
class CoarseToFine:
    """The coarse canvas and the bounds that keep its answers the fine pass's."""

    canvas: tuple[int, int] = (320, 240)
    safe_px: float = 20.0
    dominant: float = 1.5
    context: float = 0.75
    max_refined: int = 3
    margin: float = 3.0
    same_face_iou: float = 0.5

    def safe(self, detector: UltraFaceDetector, image: np.ndarray, detection: Detection) -> bool:
        """Whether a face is large enough on the coarse canvas to be found there whenever it is on the fine."""
        scale = letterbox_geometry(image.shape, self.canvas, detector.max_upscale)[0]
        return min(detection.width, detection.height) * scale >= self.safe_px

    def decided(self, similarity: float, threshold: float) -> bool:
        """Whether a score resting on a refined box is far enough from the threshold to stand."""
        return abs(similarity - threshold) >= self.margin

    def largest(self, detector: UltraFaceDetector, image: np.ndarray, found: list[Detection]) -> Detection | None:
        """The origin's face, boxed at the fine scale, when the coarse pass is enough to choose it."""
        if not found or not self.safe(detector, image, found[0]):
            return None
        if len(found) > 1 and found[0].area < self.dominant * found[1].area:
            return None
        return refine(detector, image, found[0], self.context)

    def candidates(self, detector: UltraFaceDetector, image: np.ndarray, found: list[Detection]) -> list[Detection]:
        """The target's safe faces, boxed at the fine scale; none when there are more than `max_refined`."""
        safe = [d for d in found if self.safe(detector, image, d)]
        if len(safe) > self.max_refined:
            return []
        return [box for box in (refine(detector, image, d, self.context) for d in safe) if box is not None]


def refine(detector: UltraFaceDetector, image: np.ndarray, coarse: Detection, context: float) -> Detection | None:
    """The fine pass's box for a face the coarse pass found: the fine canvas's window around it (`context` of
    its size on each side, out to the largest step's cells); None if the face is not found there again,
    where the window would cover more than half the canvas (the fine pass then costs about as much), or
    where the image shrinks onto the fine canvas by more than 2x (decoded JPEGs never do)."""
    scale = letterbox_geometry(image.shape, detector.spec.input.size, detector.max_upscale)[0]
    if shrinks_by_area(scale):
        return None  # the fine canvas averages areas, which a window's bilinear sampling would not match
    width, height = detector.canvas_size(image)
    cell = max(detector.steps)
    pad = context * max(coarse.width, coarse.height) * scale
    window = (max(0, math.floor((coarse.x1 * scale - pad) / cell) * cell),
              max(0, math.floor((coarse.y1 * scale - pad) / cell) * cell),
              min(width, math.ceil((coarse.x2 * scale + pad) / cell) * cell),
              min(height, math.ceil((coarse.y2 * scale + pad) / cell) * cell))
    if (window[2] - window[0]) * (window[3] - window[1]) > width * height / 2:
        return None  # a window this large costs about what the whole fine canvas does
    best = max(detector.detect_window(image, window), key=lambda d: iou(d, coarse), default=None)
    return best if best is not None and iou(best, coarse) >= 0.3 else None


def iou(a: Detection, b: Detection) -> float:
    width = min(a.x2, b.x2) - max(a.x1, b.x1)
    height = min(a.y2, b.y2) - max(a.y1, b.y1)
    overlap = max(width, 0.0) * max(height, 0.0)
    union = a.area + b.area - overlap
    return overlap / union if union > 0 else 0.0
