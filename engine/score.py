"""Cosine similarity to the calibrated 0-100 score: a fixed score means a fixed false-accept rate.

The score is piecewise linear in the cosine through the calibration's knots: 10 points per decade of
FAR, so FAR 1e-2 -> 60, 1e-3 -> 70, 1e-4 -> 80 (the default threshold), 1e-5 -> 90, 1e-6 -> 100; a
cosine of -1 scores 0 and anything above the 1e-6 cosine scores 100.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np


def floor2(value: float) -> float:
    """Two decimals, rounded down: a shown score never rounds up past a threshold."""
    return math.floor(value * 100.0) / 100.0


def score_for_far(far: float) -> float:
    """The score a false-accept rate maps to: 80 at 1e-4, ten points per decade."""
    return 40.0 - 10.0 * math.log10(far)


@dataclass(frozen=True)
class SimilarityCalibration:
    """The cosine measured at each FAR on an impostor set, and where it came from."""

    cosine_at_far: dict[str, float]
    details: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> SimilarityCalibration:
        data = json.loads(path.read_text())
        return cls(cosine_at_far=dict(data["cosine_at_far"]), details=data)

    @cached_property
    def knots(self) -> tuple[np.ndarray, np.ndarray]:
        """(cosines, scores), increasing, that the score interpolates between."""
        pairs = sorted((cos, score_for_far(float(far))) for far, cos in self.cosine_at_far.items())
        cosines = np.array([-1.0, *(c for c, _ in pairs)])
        scores = np.array([0.0, *(s for _, s in pairs)])
        if np.any(np.diff(cosines) <= 0) or np.any(np.diff(scores) <= 0):
            raise ValueError("similarity calibration is not strictly monotonic")
        return cosines, scores

    def similarity(self, cosine: float) -> float:
        """0-100 in two decimals (rounded down), monotonic in the cosine, clamped at both ends: the number
        the API shows is the number `isMatch` compares with the threshold."""
        cosines, scores = self.knots
        return floor2(float(np.clip(np.interp(cosine, cosines, scores), 0.0, 100.0)))
