"""The explicit INT8 route: post-training quantization to a Q/DQ ONNX graph.

TensorRT 8.x, 10.x and 11.x all build such a graph (11 accepts nothing else for INT8), and onnxruntime runs it
on the CPU, which is how its accuracy is measured here. The choices are TensorRT's requirements: symmetric
INT8 (zero point 0) for activations and weights, per-channel weights, float bias, Q/DQ pairs on the weights.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import version_converter
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from engine.backends.int8 import DEFAULT_METHOD
from engine.preprocess import to_blob
from models.manifest import InputSpec

TENSORRT_OPTIONS = {
    "ActivationSymmetric": True,
    "WeightSymmetric": True,
    "QuantizeBias": False,
    "AddQDQPairToWeight": True,
}
METHODS = {"percentile": CalibrationMethod.Percentile, "entropy": CalibrationMethod.Entropy,
           "minmax": CalibrationMethod.MinMax}
METHOD_KEY = "facecompare.calibration_method"
# Per-channel QuantizeLinear (its `axis`) needs opset 13; TensorRT's Q/DQ support assumes it too.
QDQ_OPSET = 13


class BlobReader(CalibrationDataReader):
    """Feeds onnxruntime's calibrator one model's calibration images, one sample per run, in strides.

    onnxruntime keeps every intermediate tensor of every run until a stride ends (a 640x480 detector image
    holds ~80 MB of them), so `quantize` calibrates stride by stride; a remainder shorter than a stride is
    left out. One sample per run because its histogram calibrators cannot merge batches of unequal size.
    """

    def __init__(self, input_name: str, images: list[np.ndarray], spec: InputSpec, stride: int = 16) -> None:
        self.input_name = input_name
        self.stride = max(1, min(stride, len(images)))
        self._images = images[: len(images) - len(images) % self.stride]
        self._spec = spec
        self.set_range(0, len(self._images))

    def __len__(self) -> int:
        return len(self._images)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._next, self._end = start_index, end_index

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= self._end:
            return None
        blob = to_blob([self._images[self._next]], self._spec)
        self._next += 1
        return {self.input_name: blob}


def with_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """The model converted up to `opset` of the default domain (unchanged when already there)."""
    current = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return model if current >= opset else version_converter.convert_version(model, opset)


def end_nodes(model: onnx.ModelProto) -> list[str]:
    """The nodes between the input and the first convolution, and between the last convolutions and the
    outputs, convolutions included: where INT8 hurts most (box and score heads, the embedding layer)."""
    nodes = model.graph.node
    producer = {out: node for node in nodes for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    chosen: dict[str, None] = {}

    def walk(tensor: str, step: Callable[[str], list[onnx.NodeProto]], ends: Callable[[onnx.NodeProto], list[str]]
             ) -> None:
        for node in step(tensor):
            if node.name in chosen:
                continue
            chosen[node.name] = None
            if node.op_type not in ("Conv", "Gemm", "MatMul"):
                for following in ends(node):
                    walk(following, step, ends)

    initializers = {i.name for i in model.graph.initializer}
    for graph_input in model.graph.input:
        if graph_input.name not in initializers:
            walk(graph_input.name, lambda t: consumers.get(t, []), lambda n: list(n.output))
    for graph_output in model.graph.output:
        walk(graph_output.name, lambda t: [producer[t]] if t in producer else [], lambda n: list(n.input))
    return list(chosen)


def recorded_method(int8: Path) -> str:
    """The calibration method written into a Q/DQ model's metadata ("" for models quantized before it was)."""
    props = onnx.load(str(int8), load_external_data=False).metadata_props
    return next((p.value for p in props if p.key == METHOD_KEY), "")


def quantize(fp32: Path, int8: Path, reader: BlobReader, *, method: str = DEFAULT_METHOD,
             float_ends: bool = True) -> Path:
    """Write the Q/DQ graph of `fp32` to `int8`, calibrated with `method` on what `reader` yields; with
    `float_ends`, the `end_nodes` stay in float. The method goes into the model's metadata, so two methods
    never give the same file (a TensorRT engine is cached by the Q/DQ file's sha256)."""
    with tempfile.TemporaryDirectory() as scratch:
        upgraded, preprocessed = Path(scratch) / "opset.onnx", Path(scratch) / "pre.onnx"
        onnx.save(with_opset(onnx.load(str(fp32)), QDQ_OPSET), str(upgraded))
        # Shape inference and folding first, as onnxruntime's quantization guide asks.
        quant_pre_process(str(upgraded), str(preprocessed), skip_symbolic_shape=True)
        partial = int8.with_suffix(".partial")
        quantize_static(
            str(preprocessed), str(partial), reader, quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=METHODS[method],
            nodes_to_exclude=end_nodes(onnx.load(str(preprocessed))) if float_ends else [],
            extra_options={**TENSORRT_OPTIONS, "CalibPercentile": 99.999, "CalibStridedMinMax": reader.stride},
        )
        quantized = onnx.load(str(partial))
        onnx.helper.set_model_props(quantized, {METHOD_KEY: method})
        onnx.save(quantized, str(partial))
        partial.replace(int8)
    return int8
