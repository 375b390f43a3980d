"""The preprocessing kernels launched with pycuda, writing straight into an engine's input buffer (GPU only).

Uploads are uint8 pixels (4x fewer bytes than float32); the kernels resize/warp, normalise and lay out NCHW on
the engine's own stream. Call inside the CUDA context the engine uses; pycuda is imported only here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.cuda.kernels import compile_kernel, source
from engine.cuda.reference import inverse_affine
from engine.preprocess import letterbox_geometry, shrinks_by_area

BLOCK = (16, 16, 1)
MAX_SHRINK = 62  # area taps per axis the letterbox kernel holds (MAX_AREA_TAPS - 2)


class CudaPreprocessor:
    """Compiled once for the device's architecture; one upload buffer per batch slot, reused."""

    def __init__(self, compute_capability: tuple[int, int]) -> None:
        import pycuda.driver as cuda

        self._cuda = cuda
        arch = "sm_{}{}".format(*compute_capability)
        letterbox = cuda.module_from_buffer(compile_kernel("letterbox.cu", source("letterbox.cu"), arch, True))
        warp = cuda.module_from_buffer(compile_kernel("warp.cu", source("warp.cu"), arch, True))
        self._letterbox = letterbox.get_function("letterbox_normalise")
        self._warp = warp.get_function("warp_normalise")
        self._uploads: dict[int, tuple[Any, Any]] = {}

    def _upload(self, slot: int, pixels: np.ndarray, stream: Any) -> Any:
        """The pixels on the device, through page-locked staging so the copy is truly asynchronous."""
        cuda = self._cuda
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        staging, device = self._uploads.get(slot, (None, None))
        if staging is None or staging.nbytes < pixels.nbytes:
            staging = cuda.pagelocked_empty(pixels.nbytes, np.uint8)
            device = cuda.mem_alloc(pixels.nbytes)
            self._uploads[slot] = (staging, device)
        staging[: pixels.nbytes] = pixels.reshape(-1)
        cuda.memcpy_htod_async(device, staging[: pixels.nbytes], stream)
        return device

    def letterbox(self, images: list[np.ndarray], destination: int, size: tuple[int, int], max_upscale: float,
                  mean: float, scale: float, stream: Any, swap_rb: bool = False) -> list[float]:
        """Detector inputs for a batch of HWC uint8 images at `destination`; returns each image's scale."""
        width, height = size
        scales = []
        for slot, pixels in enumerate(images):
            factor, resized_w, resized_h = letterbox_geometry(pixels.shape, size, max_upscale)
            area = shrinks_by_area(factor)
            if area and max(pixels.shape[1] / resized_w, pixels.shape[0] / resized_h) > MAX_SHRINK:
                raise ValueError(f"image {pixels.shape[1]}x{pixels.shape[0]} shrinks more than {MAX_SHRINK}x")
            source_pixels = self._upload(slot, pixels, stream)
            self._letterbox(
                source_pixels, np.int32(pixels.shape[1]), np.int32(pixels.shape[0]), np.int32(pixels.shape[1] * 3),
                np.uintp(destination + slot * 3 * width * height * 4), np.int32(width), np.int32(height),
                np.int32(resized_w), np.int32(resized_h), np.int32(area),
                np.float32(mean), np.float32(scale), np.int32(swap_rb),
                block=BLOCK, grid=((width + 15) // 16, (height + 15) // 16), stream=stream)
            scales.append(factor)
        return scales

    def warp(self, crops: list[tuple[np.ndarray, np.ndarray]], destination: int, size: tuple[int, int],
             mean: float, scale: float, stream: Any, swap_rb: bool = False) -> None:
        """Aligned-crop inputs for a batch of (image, 2x3 image->crop matrix) at `destination`."""
        width, height = size
        for slot, (pixels, matrix) in enumerate(crops):
            inverse = inverse_affine(matrix).astype(np.float32).reshape(-1)
            source_pixels = self._upload(slot, pixels, stream)
            self._warp(
                source_pixels, np.int32(pixels.shape[1]), np.int32(pixels.shape[0]), np.int32(pixels.shape[1] * 3),
                np.uintp(destination + slot * 3 * width * height * 4), np.int32(width), np.int32(height),
                *inverse, np.float32(mean), np.float32(scale), np.int32(swap_rb),
                block=BLOCK, grid=((width + 15) // 16, (height + 15) // 16), stream=stream)
