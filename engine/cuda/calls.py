"""Which kernel prepares a stage's input, and its arguments: plain Python, shared by the GPU launcher
(engine/cuda/launch.py) and the suite, which runs the same calls on the kernels' sources on the CPU.

Each call is `kernel(source pixels, *source_arguments, destination, *destination_arguments)` over a grid of
one thread per output pixel; the scalars are NumPy-typed as pycuda needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.preprocess import Crop, ImageInput, Letterbox, Warp, letterbox_geometry, shrinks_by_area
from models.manifest import InputSpec

MAX_SHRINK = 62  # area taps per axis the letterbox kernel holds (MAX_AREA_TAPS - 2)


@dataclass(frozen=True)
class KernelCall:
    kernel: str
    source: tuple
    destination: tuple
    size: tuple[int, int]  # the output's (width, height): the grid


def inverse_affine(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine map, as cv2.warpAffine computes it (in float64)."""
    (a, b, c), (d, e, f) = np.asarray(matrix, dtype=np.float64)
    det = a * e - b * d
    det = 1.0 / det if det != 0 else 0.0
    ia, ib, id_, ie = e * det, -b * det, -d * det, a * det
    return np.array([[ia, ib, -ia * c - ib * f], [id_, ie, -id_ * c - ie * f]])


def _ints(*values: int) -> tuple[np.int32, ...]:
    return tuple(np.int32(v) for v in values)


def kernel_call(request: ImageInput, spec: InputSpec) -> KernelCall:
    """The kernel and arguments that write `request`'s row of the model input as `engine.preprocess.cpu_blob`."""
    pixels = request.pixels
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"the kernels take HxWx3 uint8 pixels, not {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape[:2]
    pitch = width * 3
    normalise = (np.float32(spec.mean), np.float32(spec.scale))
    grey, swap_rb = spec.channels == "grey", spec.channels == "bgr"
    out_width, out_height = request.size
    if grey and not isinstance(request, Crop):
        raise ValueError(f"{type(request).__name__} kernels write RGB; this model takes grey")
    if isinstance(request, Letterbox):
        factor, resized_w, resized_h = letterbox_geometry(pixels.shape, request.fit, request.max_upscale)
        area = shrinks_by_area(factor)
        if area and max(width / resized_w, height / resized_h) > MAX_SHRINK:
            raise ValueError(f"image {width}x{height} shrinks more than {MAX_SHRINK}x")
        return KernelCall("letterbox_normalise", _ints(width, height, pitch),
                          (*_ints(out_width, out_height, resized_w, resized_h, area), *normalise, np.int32(swap_rb)),
                          request.size)
    if isinstance(request, Crop):
        return KernelCall("crop_normalise", _ints(pitch, *request.box),
                          (*_ints(out_width, out_height, grey), *normalise, np.int32(swap_rb)), request.size)
    if isinstance(request, Warp):
        inverse = inverse_affine(request.matrix).astype(np.float32).reshape(-1)
        return KernelCall("warp_normalise", _ints(width, height, pitch),
                          (*_ints(out_width, out_height), *inverse, *normalise, *_ints(swap_rb, request.flip)),
                          request.size)
    raise TypeError(f"no kernel for {type(request).__name__}")
