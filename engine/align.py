"""Alignment: a similarity transform (rotation, uniform scale, shift) of five points onto the template."""

from __future__ import annotations

import cv2
import numpy as np

from engine.preprocess import warp_face

# The standard ArcFace 112x112 template: left eye, right eye, nose tip, left and right mouth corners.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


def similarity_matrix(points: np.ndarray, size: tuple[int, int] = (112, 112)) -> np.ndarray:
    """The 2x3 least-squares similarity transform taking `points` onto the template scaled to `size`."""
    template = ARCFACE_TEMPLATE * (np.array(size, dtype=np.float32) / 112.0)
    # A threshold no point can miss makes every point an inlier: the refinement is then plain least squares.
    matrix, _ = cv2.estimateAffinePartial2D(points.astype(np.float32), template, method=cv2.RANSAC,
                                            ransacReprojThreshold=1e9, maxIters=1, refineIters=50)
    if matrix is None:
        raise ValueError("degenerate landmarks")
    return matrix


def align_face(pixels: np.ndarray, points: np.ndarray, size: tuple[int, int] = (112, 112)) -> np.ndarray:
    return warp_face(pixels, similarity_matrix(points, size), size)
