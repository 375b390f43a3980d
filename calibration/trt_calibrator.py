"""The implicit INT8 route: TensorRT measures activation ranges itself (8.x and 10.x; TensorRT 11 has no
calibrators, use the Q/DQ route there). tensorrt and pycuda are imported only when a calibrator is made."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def full_batches(batches: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """TensorRT calibrates at the profile's batch size exactly: re-chunk, dropping a short last batch."""
    pending: list[np.ndarray] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += len(batch)
        while count >= size:
            joined = np.concatenate(pending)
            yield np.ascontiguousarray(joined[:size], dtype=np.float32)
            pending, count = [joined[size:]], count - size


def entropy_calibrator(batches: Iterator[np.ndarray], batch_size: int, cache_path: Path) -> Any:
    """An IInt8EntropyCalibrator2 fed from `batches` (NCHW float32, as inference makes them); the scales it
    finds are kept in `cache_path`, whose name must carry the model hash and TensorRT version
    (`calibration.naming.calibration_cache_name`)."""
    import pycuda.driver as cuda
    import tensorrt as trt

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = full_batches(batches, batch_size)
            self._device: Any = None

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self._batches, None)
            if batch is None:
                return None
            if self._device is None:
                self._device = cuda.mem_alloc(batch.nbytes)
            cuda.memcpy_htod(self._device, batch)
            return [int(self._device)]

        def read_calibration_cache(self) -> bytes | None:
            return cache_path.read_bytes() if cache_path.exists() else None

        def write_calibration_cache(self, cache: Any) -> None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cache_path.write_bytes(bytes(cache))

    return EntropyCalibrator()
