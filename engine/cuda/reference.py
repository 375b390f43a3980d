"""The NumPy references of the CUDA preprocessing kernels: the exact maths the kernels implement.

They follow OpenCV (the CPU path in `engine.preprocess`) and are tested against it:
- resize when enlarging or shrinking by up to 2x: cv2 INTER_LINEAR for uint8, pixel-centre mapping, edge
  clamping and 11-bit fixed-point weights with OpenCV's SIMD rounding (equal to cv2 on all but ~0.1% of
  pixels, which differ by one level);
- resize when shrinking more: cv2 INTER_AREA, its area-overlap weights in float (equal but for rare one-level ties);
- the aligned-crop warp: cv2.warpAffine bilinear, border 0, in float32 coordinates and weights as OpenCV 5 does
  (OpenCV 4 rounded sample positions to 1/32 pixel: up to a few levels apart on noise);
then (x - mean) * scale in float32 and HWC -> NCHW, as `cv2.dnn.blobFromImages` does.
"""

from __future__ import annotations

import math

import numpy as np

from engine.preprocess import letterbox_geometry, shrinks_by_area

COEF_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS


def linear_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per output index: the two source indices and their fixed-point weights (sum 2**COEF_BITS)."""
    d = np.arange(dst)
    f = ((d + 0.5) * (src / dst) - 0.5).astype(np.float32)
    first = np.floor(f).astype(np.int64)
    frac = (f - first).astype(np.float32)
    frac[first < 0] = 0
    first[first < 0] = 0
    last = first >= src - 1
    frac[last], first[last] = 0, src - 1
    one = 1 << COEF_BITS
    w0 = np.rint((np.float32(1) - frac) * np.float32(one)).astype(np.int64)
    w1 = np.rint(frac * np.float32(one)).astype(np.int64)
    return first, np.minimum(first + 1, src - 1), w0, w1


def area_weights(src: int, dst: int) -> np.ndarray:
    """(dst, src) weights of OpenCV's INTER_AREA when shrinking: each source pixel's overlap with the cell."""
    weights = np.zeros((dst, src), dtype=np.float32)
    scale = src / dst
    for d in range(dst):
        f1 = d * scale
        f2 = f1 + scale
        cell = min(scale, src - f1)
        s2 = min(math.floor(f2), src - 1)
        s1 = min(math.ceil(f1), s2)
        if s1 - f1 > 1e-3:
            weights[d, s1 - 1] += np.float32((s1 - f1) / cell)
        weights[d, s1:s2] += np.float32(1.0 / cell)
        if f2 - s2 > 1e-3:
            weights[d, s2] += np.float32(min(f2 - s2, 1.0, cell) / cell)
    return weights


def resize_linear(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 HWC bilinear resize: horizontal pass in integers, vertical pass with OpenCV's SIMD shifts."""
    x0, x1, a0, a1 = linear_taps(pixels.shape[1], width)
    y0, y1, b0, b1 = linear_taps(pixels.shape[0], height)
    image = pixels.astype(np.int64)
    rows = image[:, x0] * a0[None, :, None] + image[:, x1] * a1[None, :, None]
    top, bottom = rows[y0] >> 4, rows[y1] >> 4
    value = (((b0[:, None, None] * top) >> 16) + ((b1[:, None, None] * bottom) >> 16) + 2) >> 2
    return np.clip(value, 0, 255).astype(np.uint8)


def resize_area(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 HWC area resize (shrinking only), rounded half to even as OpenCV's saturate_cast does."""
    wx = area_weights(pixels.shape[1], width)
    wy = area_weights(pixels.shape[0], height)
    planes = [wy @ pixels[..., c].astype(np.float32) @ wx.T for c in range(pixels.shape[2])]
    return np.clip(np.rint(np.stack(planes, axis=-1)), 0, 255).astype(np.uint8)


def normalise(image: np.ndarray, mean: float, scale: float, swap_rb: bool = False) -> np.ndarray:
    """uint8 HWC -> float32 1xCxHxW, (x - mean) * scale; `swap_rb` for BGR pixels into an RGB model."""
    if swap_rb:
        image = image[..., ::-1]
    planes = (image.astype(np.float32) - np.float32(mean)) * np.float32(scale)
    return np.ascontiguousarray(planes.transpose(2, 0, 1)[None])


def letterbox_blob(pixels: np.ndarray, size: tuple[int, int], max_upscale: float, mean: float, scale: float,
                   swap_rb: bool = False) -> tuple[np.ndarray, float]:
    """What the detector kernel writes for one image: resized top-left into a black `size` canvas, normalised."""
    factor, resized_w, resized_h = letterbox_geometry(pixels.shape, size, max_upscale)
    resized = (resize_area if shrinks_by_area(factor) else resize_linear)(pixels, resized_w, resized_h)
    canvas = np.zeros((size[1], size[0], pixels.shape[2]), dtype=np.uint8)
    canvas[:resized_h, :resized_w] = resized
    return normalise(canvas, mean, scale, swap_rb), factor


def inverse_affine(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine map, as cv2.warpAffine computes it (in float64)."""
    (a, b, c), (d, e, f) = np.asarray(matrix, dtype=np.float64)
    det = a * e - b * d
    det = 1.0 / det if det != 0 else 0.0
    ia, ib, id_, ie = e * det, -b * det, -d * det, a * det
    return np.array([[ia, ib, -ia * c - ib * f], [id_, ie, -id_ * c - ie * f]])


def warp(pixels: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 HWC affine warp into `size` (width, height): bilinear, black outside the image."""
    inverse = inverse_affine(matrix).astype(np.float32)
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)
    sx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    sy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    floor_x, floor_y = np.floor(sx), np.floor(sy)
    ix, iy = floor_x.astype(np.int64), floor_y.astype(np.int64)
    fx, fy = (sx - floor_x)[..., None], (sy - floor_y)[..., None]
    height, width = pixels.shape[:2]

    def tap(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        values = pixels[np.clip(y, 0, height - 1), np.clip(x, 0, width - 1)].astype(np.float32)
        return values * inside[..., None]

    top = tap(iy, ix) + fx * (tap(iy, ix + 1) - tap(iy, ix))
    bottom = tap(iy + 1, ix) + fx * (tap(iy + 1, ix + 1) - tap(iy + 1, ix))
    return np.clip(np.rint(top + fy * (bottom - top)), 0, 255).astype(np.uint8)


def warp_blob(pixels: np.ndarray, matrix: np.ndarray, size: tuple[int, int], mean: float, scale: float
              ) -> np.ndarray:
    """What the aligned-crop kernel writes for one face."""
    return normalise(warp(pixels, matrix, size), mean, scale)
