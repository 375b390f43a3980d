"""Whether this machine can run the GPU tests; they are marked `gpu` and skipped with this reason otherwise."""

from __future__ import annotations

from functools import cache

import pytest


@cache
def gpu_missing() -> str | None:
    """None when tensorrt, pycuda and a CUDA device are all here, else what is missing."""
    try:
        import pycuda.driver as cuda
        import tensorrt  # noqa: F401
    except ImportError as exc:
        return f"needs an NVIDIA GPU with TensorRT and pycuda ({exc.name} is not installed here)"
    try:
        cuda.init()
        if cuda.Device.count() == 0:
            return "needs an NVIDIA GPU: CUDA sees no device"
    except cuda.Error as exc:
        return f"needs an NVIDIA GPU: {exc}"
    return None


requires_gpu = pytest.mark.skipif(gpu_missing() is not None, reason=str(gpu_missing()))
