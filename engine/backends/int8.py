"""INT8: one precision request, one route (docs/INT8.md has the table), and never an engine without ranges.

INT8 needs each activation's range. Either the ONNX graph carries them (Q/DQ nodes, written by
`facecompare engines build --precision int8 --calibration DIR`: the "qdq" route, which onnxruntime and every
TensorRT run) or TensorRT's entropy calibrator measures them while building (`--implicit`: the "calibrator"
route, TensorRT 8.x/10.x only). The last calibration says which route is in use, recorded beside its outputs
with the digest of the photos it used, so serving never mixes the two and a new set of photos is a new
calibration, never a stale cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx

ROUTES = ("qdq", "calibrator")
# How the Q/DQ route's activation ranges are calibrated (onnxruntime's CalibrationMethod, by name); the default
# is the one chosen on DevTrain (docs/INT8.md, "Which calibration method"). TensorRT's calibrator is entropy.
CALIBRATION_METHODS = ("percentile", "entropy", "minmax")
DEFAULT_METHOD = "entropy"
CALIBRATOR_METHOD = "entropy"
RECORD = "int8-route.json"
QUANTIZE_OPS = {"QuantizeLinear", "DequantizeLinear"}


class Int8Unavailable(FileNotFoundError):
    """INT8 was asked for but its ranges are not there; the message says what to run."""


@dataclass(frozen=True)
class Int8Route:
    """`name` in ROUTES; `calibration`: the digest of the photos calibrated on; `method`: how the ranges were
    calibrated, in CALIBRATION_METHODS ("" when not recorded: calibrations older than the method choice)."""

    name: str = "qdq"
    calibration: str = ""
    method: str = ""


def read_route(folder: Path) -> Int8Route:
    """The route of the last calibration; Q/DQ when none was recorded (models quantized by `calibration.parity`)."""
    path = folder / RECORD
    return Int8Route(**json.loads(path.read_text())) if path.exists() else Int8Route()


def write_route(folder: Path, route: Int8Route) -> None:
    if route.name not in ROUTES:
        raise ValueError(f"INT8 route {route.name!r}: use one of {', '.join(ROUTES)}")
    if route.method not in CALIBRATION_METHODS:
        raise ValueError(f"INT8 calibration method {route.method!r}: use one of {', '.join(CALIBRATION_METHODS)}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RECORD).write_text(json.dumps(asdict(route)))


def photos_digest(photos: list[Path], *limits: int) -> str:
    """sha256 over the photos' names and bytes and the set's limits: what a calibration was made from."""
    digest = hashlib.sha256(json.dumps(limits).encode())
    for photo in sorted(photos):
        digest.update(photo.name.encode() + b"\0" + hashlib.sha256(photo.read_bytes()).digest())
    return digest.hexdigest()


def graph_for(backend: str, route: Int8Route, prepared: Path, quantized: Path, model: str) -> Path:
    """The ONNX graph an INT8 request loads for one model; Int8Unavailable saying what to run if none can."""
    calibrate = "facecompare engines build --precision int8 --calibration DIR"
    if route.name == "calibrator":
        if backend == "tensorrt":
            return prepared
        raise Int8Unavailable(f"{model}: the last INT8 calibration was TensorRT's calibrator (--implicit), which "
                              f"{backend} cannot use; run '{calibrate} --onnx-only' for Q/DQ models")
    if quantized.exists():
        return quantized
    raise Int8Unavailable(f"{model}: no INT8 model at {quantized}; run "
                          f"'{calibrate}{' --onnx-only' if backend != 'tensorrt' else ''}'")


def has_ranges(onnx_path: Path) -> bool:
    """Whether the graph carries its INT8 ranges (Q/DQ nodes)."""
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return any(node.op_type in QUANTIZE_OPS for node in graph.node)


def require_ranges(onnx_path: Path, calibrator: object) -> None:
    """Refuse to build an INT8 engine with neither Q/DQ ranges nor a calibrator: TensorRT would quietly run
    those layers in FP16/FP32 and the engine would be cached as INT8."""
    if calibrator is None and not has_ranges(onnx_path):
        raise Int8Unavailable(
            f"{onnx_path.name} has no INT8 ranges and no calibrator was given, so no INT8 engine is built: run "
            "'facecompare engines build --precision int8 --calibration DIR' (add --implicit for TensorRT's "
            "calibrator), or use precision fp16")
