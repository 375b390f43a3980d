"""The backend interface: load an ONNX graph once, then `infer(batch) -> outputs`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.preprocess import ImageInput
from models.manifest import InputSpec


class BackendUnavailable(RuntimeError):
    """The backend cannot run on this machine (no GPU, no TensorRT, ...); the message says what to install."""


@dataclass(frozen=True)
class BackendInfo:
    """What `/v1/info` and `facecompare doctor` report about the engine in use."""

    name: str
    precision: str
    device: str


class Backend(Protocol):
    """One loaded model. Inputs and outputs are named as in the ONNX graph; axis 0 is the batch.

    `max_batch` rows per inference at most, and `max_batch_bytes` of input where set (`engine.backends.limits`).
    """

    info: BackendInfo
    input_names: list[str]
    output_names: list[str]
    max_batch: int
    max_batch_bytes: int | None

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch. Every input's first axis is the batch, at most `max_batch`."""
        ...

    def infer_images(self, spec: InputSpec, requests: list[ImageInput]) -> dict[str, np.ndarray]:
        """Run the model on stage inputs of one size (`engine.preprocess`), one row each: the backend makes
        the input tensor from the uint8 pixels and their geometry its own way."""
        ...

    def close(self) -> None:
        """Release what the model holds (device memory, sessions); the backend is unusable after."""
        ...


def create_backend(
    name: str, onnx_path: Path, *, precision: str = "fp32", max_batch: int = 32, threads: int = 0,
    sample_shapes: dict[str, tuple[int, ...]] | None = None,
    min_sample_shapes: dict[str, tuple[int, ...]] | None = None, calibration: str = "",
) -> Backend:
    """Build the backend called `name` for one model. GPU modules are imported only when asked for.

    `sample_shapes` (input name -> shape without the batch axis) fixes the axes an ONNX graph leaves free,
    which an engine's optimization profile must bound, and `min_sample_shapes` the smallest sample where an
    input varies in size (the detector's canvas); onnxruntime needs no such bound. `calibration` names the
    calibration an implicitly calibrated INT8 engine comes from (`engine.backends.int8`).
    """
    if name == "onnxruntime":
        from engine.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(onnx_path, precision=precision, max_batch=max_batch, threads=threads)
    if name == "tensorrt":
        from engine.backends.tensorrt import TensorRTBackend

        return TensorRTBackend(onnx_path, precision=precision, max_batch=max_batch, sample_shapes=sample_shapes,
                               min_sample_shapes=min_sample_shapes, calibration=calibration)
    raise ValueError(f"unknown backend {name!r}: use 'onnxruntime' or 'tensorrt'")
