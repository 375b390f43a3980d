"""Pixel work shared by the adapters, one OpenCV call each; the CUDA kernels are checked against these."""

from __future__ import annotations

import cv2
import numpy as np

from models.manifest import InputSpec

# Shrinking by up to 2x, bilinear already reads every source pixel; area averaging pays beyond that. It costs
# 5x bilinear at 1.5x (a Full HD JPEG decoded at 960 wide onto the detector's 640: 1.35 against 0.26 ms).
AREA_BELOW_SCALE = 0.5


def shrinks_by_area(scale: float) -> bool:
    """Whether a resize by `scale` averages areas (cv2.INTER_AREA) rather than interpolating bilinearly."""
    return scale < AREA_BELOW_SCALE


def letterbox_geometry(shape: tuple[int, ...], size: tuple[int, int], max_upscale: float) -> tuple[float, int, int]:
    """The scale and resized (width, height) of an image of `shape` letterboxed into `size` (width, height)."""
    width, height = size
    scale = min(width / shape[1], height / shape[0], max_upscale)
    return scale, max(1, min(width, round(shape[1] * scale))), max(1, min(height, round(shape[0] * scale)))


def letterbox(pixels: np.ndarray, size: tuple[int, int], max_upscale: float,
              canvas_size: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
    """Resize keeping the aspect ratio to fit `size` (width, height), onto a canvas anchored top-left.

    The canvas is `size` unless `canvas_size` (which must hold the resized image) says smaller.
    Returns the canvas and the scale from image pixels to canvas pixels.
    """
    width, height = canvas_size or size
    scale, resized_w, resized_h = letterbox_geometry(pixels.shape, size, max_upscale)
    interpolation = cv2.INTER_AREA if shrinks_by_area(scale) else cv2.INTER_LINEAR
    resized = cv2.resize(pixels, (resized_w, resized_h), interpolation=interpolation)
    canvas = np.zeros((height, width, pixels.shape[2]), dtype=np.uint8)
    canvas[:resized_h, :resized_w] = resized
    return canvas, scale


def to_blob(images: list[np.ndarray], spec: InputSpec, size: tuple[int, int] | None = None) -> np.ndarray:
    """NCHW float32 batch at the model's size (or `size`): (x - mean) * scale, RGB, BGR or grey as the model
    declares; inputs are RGB or grey."""
    if spec.channels == "grey":
        images = [cv2.cvtColor(i, cv2.COLOR_RGB2GRAY) if i.ndim == 3 else i for i in images]
    return cv2.dnn.blobFromImages(
        images, scalefactor=spec.scale, size=size or spec.size, mean=(spec.mean,) * 3,
        swapRB=spec.channels == "bgr", crop=False,
    )


def warp_face(pixels: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The aligned crop: an affine warp of the image, bilinear, black outside the image."""
    return cv2.warpAffine(pixels, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)
