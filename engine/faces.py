"""What the stages pass between them: a detected face, and a face with its landmarks and embedding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detection:
    """A face box in the pixels of the upright image, with the detector's confidence (0-1)."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def scaled(self, x: float, y: float) -> Detection:
        """The same box in the pixels of the image resized by (x, y)."""
        return Detection(self.x1 * x, self.y1 * y, self.x2 * x, self.y2 * y, self.score)


@dataclass(frozen=True)
class Face:
    """A detected face ready to compare: five alignment points, a unit-length embedding and the 68 landmarks
    the points come from (for its quality)."""

    detection: Detection
    points: np.ndarray
    embedding: np.ndarray
    landmarks: np.ndarray
