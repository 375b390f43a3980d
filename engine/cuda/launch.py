"""The preprocessing kernels launched with pycuda, writing straight into an engine's input buffer (GPU only).

Uploads are uint8 pixels (4x fewer bytes than float32), each image once per batch however many of its faces
the batch holds; the kernels resize/crop/warp, normalise and lay out NCHW on the engine's own stream. Call
inside the CUDA context the engine uses; pycuda is imported only here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from engine.cuda.calls import kernel_call
from engine.cuda.kernels import KERNELS, compile_kernel, source
from engine.preprocess import ImageInput, tensor_shape
from models.manifest import InputSpec

BLOCK = (16, 16, 1)


@cache
def _functions(compute_capability: tuple[int, int]) -> dict[str, Any]:
    """Every kernel compiled once per process for the device (NVRTC from its own CUDA toolkit first)."""
    import pycuda.driver as cuda

    arch = "sm_{}{}".format(*compute_capability)
    functions = {}
    for file, names in KERNELS.items():
        module = cuda.module_from_buffer(compile_kernel(file, source(file), arch, toolkit_first=True))
        functions.update({name: module.get_function(name) for name in names})
    return functions


class CudaPreprocessor:
    """Prepares a batch of stage inputs on the device; upload buffers (page-locked staging and device
    memory) are kept per slot and reused, so one instance belongs to one stream."""

    def __init__(self, compute_capability: tuple[int, int]) -> None:
        import pycuda.driver as cuda

        self._cuda = cuda
        self._functions = _functions(tuple(compute_capability))
        self._uploads: dict[int, tuple[Any, Any]] = {}

    def _upload(self, slot: int, pixels: np.ndarray, stream: Any) -> Any:
        """The pixels on the device, through page-locked staging so the copy is truly asynchronous."""
        cuda = self._cuda
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        staging, device = self._uploads.get(slot, (None, None))
        if staging is None or staging.nbytes < pixels.nbytes:
            if device is not None:
                device.free()
                staging.base.free()
            staging = cuda.pagelocked_empty(pixels.nbytes, np.uint8)
            device = cuda.mem_alloc(pixels.nbytes)
            self._uploads[slot] = (staging, device)
        staging[: pixels.nbytes] = pixels.reshape(-1)
        cuda.memcpy_htod_async(device, staging[: pixels.nbytes], stream)
        return device

    def prepare(self, spec: InputSpec, requests: list[ImageInput], destination: int, stream: Any) -> None:
        """Write the model input of `requests` (one size) at `destination`, row after row, on `stream`."""
        row_bytes = int(np.prod(tensor_shape(requests[0], spec))) * 4
        uploaded: dict[int, Any] = {}
        for row, request in enumerate(requests):
            call = kernel_call(request, spec)
            key = id(request.pixels)
            if key not in uploaded:
                uploaded[key] = self._upload(len(uploaded), request.pixels, stream)
            width, height = call.size
            self._functions[call.kernel](
                uploaded[key], *call.source, np.uintp(destination + row * row_bytes), *call.destination,
                block=BLOCK, grid=((width + BLOCK[0] - 1) // BLOCK[0], (height + BLOCK[1] - 1) // BLOCK[1]),
                stream=stream)

    def free(self) -> None:
        """Free the upload buffers (with the context current, as the backend's close does)."""
        for staging, device in self._uploads.values():
            device.free()
            staging.base.free()
        self._uploads.clear()
