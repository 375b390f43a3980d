"""The TensorRT Python API names the backend and calibrator use, per TensorRT series: one table, read by code.

`check_version` refuses a series the table does not support, naming what it lacks; tests parse the sources in
`SOURCES` and check every TensorRT name they touch against this table for every supported series. Checked
against the bindings of 8.6.1, 10.3.0 and 11.4.0 and the 8.5 API reference.
"""

from __future__ import annotations

import re

import numpy as np

SERIES = ("8.5", "8.6", "10", "11")
SUPPORTED = ("8.5", "8.6", "10")

_ALL = SERIES
_BEFORE_11 = ("8.5", "8.6", "10")
_FROM_10 = ("10", "11")

# Name -> the series that have it. `X` and `X.Y` are attributes of the `tensorrt` module; `Class.member` is a
# member of an object the code holds in a variable named as in RECEIVERS, or a method a subclass overrides.
API: dict[str, tuple[str, ...]] = {
    "__version__": _ALL,
    "Logger": _ALL,
    "Logger.WARNING": _ALL,
    "Builder": _ALL,
    "Builder.create_network": _ALL,
    "Builder.create_builder_config": _ALL,
    "Builder.create_optimization_profile": _ALL,
    "Builder.build_serialized_network": _ALL,
    # Deprecated (ignored) in 10, removed in 11; without it 8.x builds an implicit-batch network.
    "NetworkDefinitionCreationFlag.EXPLICIT_BATCH": _BEFORE_11,
    "OnnxParser": _ALL,
    "OnnxParser.parse_from_file": _ALL,
    "OnnxParser.num_errors": _ALL,
    "OnnxParser.get_error": _ALL,
    "MemoryPoolType.WORKSPACE": _ALL,
    "IBuilderConfig.set_memory_pool_limit": _ALL,
    "IBuilderConfig.add_optimization_profile": _ALL,
    "IBuilderConfig.set_flag": _ALL,
    "BuilderFlag.FP16": _BEFORE_11,
    "BuilderFlag.INT8": _BEFORE_11,
    "IBuilderConfig.int8_calibrator": _BEFORE_11,
    "IBuilderConfig.set_calibration_profile": _BEFORE_11,
    "IBuilderConfig.create_timing_cache": _ALL,
    "IBuilderConfig.set_timing_cache": _ALL,
    "IBuilderConfig.get_timing_cache": _ALL,
    "ITimingCache.serialize": _ALL,
    "IBuilderConfig.progress_monitor": _FROM_10,
    "IProgressMonitor": _FROM_10,
    "IProgressMonitor.phase_start": _FROM_10,
    "IProgressMonitor.step_complete": _FROM_10,
    "IProgressMonitor.phase_finish": _FROM_10,
    "IOptimizationProfile.set_shape": _ALL,
    "Runtime": _ALL,
    "Runtime.deserialize_cuda_engine": _ALL,
    "ICudaEngine.num_io_tensors": _ALL,
    "ICudaEngine.get_tensor_name": _ALL,
    "ICudaEngine.get_tensor_mode": _ALL,
    "ICudaEngine.get_tensor_dtype": _ALL,
    "ICudaEngine.create_execution_context": _ALL,
    "TensorIOMode.INPUT": _ALL,
    "IExecutionContext.set_input_shape": _ALL,
    "IExecutionContext.get_tensor_shape": _ALL,
    "IExecutionContext.set_tensor_address": _ALL,
    "IExecutionContext.execute_async_v3": _ALL,
    # Implicit INT8 calibration: deprecated from 10.1, removed in 11 (strongly typed networks only).
    "IInt8EntropyCalibrator2": _BEFORE_11,
    "IInt8EntropyCalibrator2.get_batch_size": _BEFORE_11,
    "IInt8EntropyCalibrator2.get_batch": _BEFORE_11,
    "IInt8EntropyCalibrator2.read_calibration_cache": _BEFORE_11,
    "IInt8EntropyCalibrator2.write_calibration_cache": _BEFORE_11,
}

# Variable (or `self._name` attribute) names the sources use for TensorRT objects, and their classes.
RECEIVERS = {
    "builder": "Builder",
    "parser": "OnnxParser",
    "config": "IBuilderConfig",
    "profile": "IOptimizationProfile",
    "timing": "ITimingCache",
    "runtime": "Runtime",
    "engine": "ICudaEngine",
    "context": "IExecutionContext",
}

# The files that touch TensorRT, relative to the repository root.
SOURCES = ("engine/backends/tensorrt.py", "calibration/trt_calibrator.py")


class UnsupportedTensorRT(RuntimeError):
    """This TensorRT cannot run the backend as written; the message says why and what to use."""


def series(version: str) -> str:
    """'8.6.1.6' -> '8.6', '10.3.0' -> '10': the granularity at which the API changed for us."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if not match:
        raise ValueError(f"not a TensorRT version: {version!r}")
    major, minor = int(match.group(1)), int(match.group(2))
    return f"{major}.{minor}" if major < 10 else str(major)


def missing_in(version_series: str) -> list[str]:
    return [name for name, present in API.items() if version_series not in present]


def check_version(version: str) -> str:
    """The series of `version` if the backend supports it, else UnsupportedTensorRT with the reason."""
    found = series(version)
    if found in SUPPORTED:
        return found
    if found == "11":
        raise UnsupportedTensorRT(
            f"TensorRT {version} is not supported: TensorRT 11 removed BuilderFlag.FP16 and BuilderFlag.INT8, "
            "the INT8 calibrators (IInt8EntropyCalibrator2, int8_calibrator, set_calibration_profile) and "
            "NetworkDefinitionCreationFlag.EXPLICIT_BATCH; it builds only strongly typed networks, whose "
            "precision comes from the ONNX graph (Q/DQ nodes for INT8). Use TensorRT 10.x (JetPack 6.1/6.2) "
            "or 8.5/8.6 (JetPack 5.1/6.0)."
        )
    raise UnsupportedTensorRT(
        f"TensorRT {version} is not supported: the backend needs the name-based I/O API of 8.5 or later "
        f"and supports the series {', '.join(SUPPORTED)} (JetPack 5.1 has 8.5, 6.0 has 8.6, 6.1/6.2 have 10.3)."
    )


# TensorRT DataType member name -> NumPy dtype. Our own table rather than `trt.nptype`: TensorRT 8.5's (JetPack
# 5.1) maps BOOL through `np.bool`, which NumPy 1.24 removed, so its first engine load raised AttributeError
# (NVIDIA/TensorRT issues 2557, 2701). Types NumPy lacks (BF16, FP8, INT4) are refused by name.
NUMPY_DTYPES: dict[str, np.dtype] = {
    "FLOAT": np.dtype(np.float32),
    "HALF": np.dtype(np.float16),
    "INT8": np.dtype(np.int8),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
}


def numpy_dtype(data_type: object) -> np.dtype:
    """The NumPy dtype of a `trt.DataType` member (or anything with its `name`)."""
    name = getattr(data_type, "name", str(data_type).rsplit(".", 1)[-1])
    if name not in NUMPY_DTYPES:
        raise TypeError(f"TensorRT tensor type {name} has no NumPy equivalent the backend supports")
    return NUMPY_DTYPES[name]
