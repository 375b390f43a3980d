"""Pixels into model inputs. A stage describes its input (`Letterbox`, `Crop`, `Warp`: uint8 pixels and
geometry); the backend prepares it: onnxruntime with the OpenCV calls here (`cpu_blob`), TensorRT with the
CUDA kernels (engine/cuda), which the suite holds against these."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

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


def _window_inside(shape: tuple[int, ...], size: tuple[int, int], max_upscale: float,
                   window: tuple[int, int, int, int]) -> tuple[tuple[float, float], tuple[int, int]]:
    """The letterbox's image pixels per canvas pixel on each axis (the resize is to whole pixels, so the axes
    differ: a 960x640 image onto 640x427 gives 1.5 and 1.49883), and the (width, height) of the window's part
    that holds the resized image (the rest of the canvas is black)."""
    _, resized_w, resized_h = letterbox_geometry(shape, size, max_upscale)
    x1, y1, x2, y2 = window
    return ((shape[1] / resized_w, shape[0] / resized_h),
            (max(0, min(x2, resized_w) - x1), max(0, min(y2, resized_h) - y1)))


def resizable_region(shape: tuple[int, ...], size: tuple[int, int], max_upscale: float,
                     window: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
    """The image region (x1, y1, x2, y2) whose `cv2.resize` gives the image part of the letterbox canvas's
    `window` exactly (it samples the very same positions), or None where there is none: the region is not on
    whole pixels, or the scale enlarges (a resize of a region would then clamp at its edges, not the image's)."""
    (x_scale, y_scale), (inside_w, inside_h) = _window_inside(shape, size, max_upscale, window)
    region = (window[0] * x_scale, window[1] * y_scale, (window[0] + inside_w) * x_scale,
              (window[1] + inside_h) * y_scale)
    if x_scale < 1 or y_scale < 1 or not all(abs(v - round(v)) < 1e-9 for v in region):
        return None
    left, top, right, bottom = (round(v) for v in region)
    return left, top, right, bottom


def letterbox_window(pixels: np.ndarray, size: tuple[int, int], max_upscale: float,
                     window: tuple[int, int, int, int], *, by_resize: bool = True) -> np.ndarray:
    """The pixels of `window` (x1, y1, x2, y2) of the canvas `letterbox` makes, from the image alone, for a
    scale that interpolates bilinearly (not `shrinks_by_area`).

    Canvas pixel (i, j) samples the image at ((i + 0.5) * x scale - 0.5, ...) with each axis's own scale,
    clamped at the image's edges. Where there is a `resizable_region` it is resized (the canvas's very
    pixels, for a third of a warp's cost); elsewhere, or without `by_resize`, warped with the same per-axis
    scales (within a level of the canvas: a warp places its samples to 1/32 px).
    """
    (x_scale, y_scale), (inside_w, inside_h) = _window_inside(pixels.shape, size, max_upscale, window)
    x1, y1, x2, y2 = window
    window_pixels = np.zeros((y2 - y1, x2 - x1, *pixels.shape[2:]), dtype=np.uint8)
    if inside_w == 0 or inside_h == 0:
        return window_pixels
    region = resizable_region(pixels.shape, size, max_upscale, window) if by_resize else None
    if region is not None:
        left, top, right, bottom = region
        inside = cv2.resize(pixels[top:bottom, left:right], (inside_w, inside_h), interpolation=cv2.INTER_LINEAR)
    else:
        to_image = np.array([[x_scale, 0, (x1 + 0.5) * x_scale - 0.5], [0, y_scale, (y1 + 0.5) * y_scale - 0.5]])
        inside = cv2.warpAffine(pixels, to_image, (inside_w, inside_h),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    window_pixels[:inside_h, :inside_w] = inside.reshape(inside_h, inside_w, *pixels.shape[2:])
    return window_pixels


def to_blob(images: list[np.ndarray], spec: InputSpec, size: tuple[int, int] | None = None) -> np.ndarray:
    """NCHW float32 batch at the model's size (or `size`): (x - mean) * scale, RGB, BGR or grey as the model
    declares; inputs are RGB or grey."""
    if spec.channels == "grey":
        images = [cv2.cvtColor(i, cv2.COLOR_RGB2GRAY) if i.ndim == 3 else i for i in images]
    return cv2.dnn.blobFromImages(
        images, scalefactor=spec.scale, size=size or spec.size, mean=(spec.mean,) * 3,
        swapRB=spec.channels == "bgr", crop=False,
    )


def square_crop(pixels: np.ndarray, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """The square of `side` pixels about (cx, cy), brought to `size` x `size` by `warp_face`."""
    scale = size / side
    matrix = np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]], dtype=np.float32)
    return warp_face(pixels, matrix, (size, size))


def warp_face(pixels: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The aligned crop: an affine warp of the image, bilinear, black outside the image."""
    return cv2.warpAffine(pixels, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)


@dataclass(frozen=True, eq=False)
class Letterbox:
    """The detector's input: the image resized keeping its aspect ratio to fit `fit` (width, height), at most
    `max_upscale`, top-left on a black `canvas` (width, height)."""

    pixels: np.ndarray
    fit: tuple[int, int]
    canvas: tuple[int, int]
    max_upscale: float

    @property
    def size(self) -> tuple[int, int]:
        return self.canvas

    def image(self) -> np.ndarray:
        return letterbox(self.pixels, self.fit, self.max_upscale, self.canvas)[0]


@dataclass(frozen=True, eq=False)
class Crop:
    """The landmark model's input: the `box` (x, y, width, height) of the image, resized to `size`."""

    pixels: np.ndarray
    box: tuple[int, int, int, int]
    size: tuple[int, int]

    def image(self) -> np.ndarray:
        x, y, width, height = self.box
        return self.pixels[y : y + height, x : x + width]


class AlignedCrops:
    """Aligned crops warped once for every model that takes them: the recognizer ensemble's members, each on
    its own thread, and a crop wanted both ways (the recognizer's flip). The first to ask warps; the others
    wait for it (a 112x112 warp is under 0.1 ms). Keyed by the objects' identity, which the requests holding
    them keep unique while the crops live."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[tuple[int, int, tuple[int, int]], np.ndarray] = {}

    def warp(self, pixels: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        key = (id(pixels), id(matrix), size)
        with self._lock:
            if key not in self._made:
                self._made[key] = warp_face(pixels, matrix, size)
            return self._made[key]


@dataclass(frozen=True, eq=False)
class Warp:
    """The recognizer's input: the image warped by the 2x3 image->crop `matrix` into `size`, mirrored left to
    right when `flip`; `crops` shares the warp with the other requests for the same crop (on the CPU)."""

    pixels: np.ndarray
    matrix: np.ndarray
    size: tuple[int, int]
    flip: bool = False
    crops: AlignedCrops | None = field(default=None, repr=False)

    def image(self) -> np.ndarray:
        return warp_face(self.pixels, self.matrix, self.size) if self.crops is None else \
            self.crops.warp(self.pixels, self.matrix, self.size)


ImageInput = Letterbox | Crop | Warp


def tensor_shape(request: ImageInput, spec: InputSpec) -> tuple[int, int, int]:
    """(C, H, W) of one request's row of the model input."""
    width, height = request.size
    return (1 if spec.channels == "grey" else 3, height, width)


def cpu_blob(spec: InputSpec, requests: list[ImageInput]) -> np.ndarray:
    """The model input for requests of one size, made with OpenCV: what the onnxruntime backend runs. A crop
    wanted both ways (the recognizer's flip), or by several models (`Warp.crops`), is warped once."""
    own = AlignedCrops()
    images = [(request.crops or own).warp(request.pixels, request.matrix, request.size)
              if isinstance(request, Warp) else request.image() for request in requests]
    blob = to_blob(images, spec, requests[0].size)
    flipped = [index for index, request in enumerate(requests) if isinstance(request, Warp) and request.flip]
    if flipped:
        blob[flipped] = blob[flipped][..., ::-1]
    return blob
