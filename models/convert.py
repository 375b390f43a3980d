"""Models shipped in another format, converted to ONNX once at fetch time, before the surgery."""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
import tflite
import tflite2onnx
from onnx import helper
from tflite2onnx.op.binary import Binary
from tflite2onnx.op.common import OpFactory
from tflite2onnx.op.reduce import Reduce
from tflite2onnx.op.unary import Unary

_OPS = tflite.BuiltinOperator


class _MoreUnary(Unary):
    """Element-wise operators tflite2onnx 0.4 lacks (MTCNN's ONet spells PReLU with NEG, softmax with EXP)."""

    TypeMapping = {_OPS.NEG: "Neg", _OPS.EXP: "Exp"}


class _Division(Binary):
    TypeMapping = {_OPS.DIV: "Div"}
    OptionMapping = {_OPS.DIV: tflite.DivOptions}


class _MoreReduce(Reduce):
    TypeMapping = {_OPS.REDUCE_MAX: "ReduceMax", _OPS.SUM: "ReduceSum"}


class _FlatBroadcast(Binary):
    """tflite2onnx reshapes a lower-rank operand so it still broadcasts after NHWC becomes NCHW, and needs a
    layout for that; a fully connected layer's (N, C) output has none. ONNX broadcasts it as TFLite does."""

    def fakeBroadcast(self) -> None:  # noqa: N802 (tflite2onnx's name)
        if len(self.outputs[0].shape) > 2:
            super().fakeBroadcast()


for _converter in (_MoreUnary, _Division, _MoreReduce):
    OpFactory.register(_converter)
for _code in Binary.TypeMapping:
    OpFactory.registry[_code] = _FlatBroadcast


def _flatten_fully_connected(model: onnx.ModelProto) -> None:
    """TFLite's FULLY_CONNECTED flattens its input (NHWC order) itself; ONNX's Gemm takes rank 2. The converter
    hands it the NCHW activations: put them back in NHWC order and flatten."""
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in model.graph.value_info}
    nodes = []
    for node in model.graph.node:
        if node.op_type == "Gemm" and ranks.get(node.input[0], 2) == 4:
            source = node.input[0]
            nodes += [helper.make_node("Transpose", [source], [f"{source}/nhwc"], perm=[0, 2, 3, 1]),
                      helper.make_node("Flatten", [f"{source}/nhwc"], [f"{source}/flat"], axis=1)]
            node.input[0] = f"{source}/flat"
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def _from_tflite(path: Path) -> onnx.ModelProto:
    """tflite2onnx only writes files: convert into a scratch folder and read the graph back.

    Its initializers and value infos come in set order, different each run: sorted by name, one model
    always converts to the same bytes.
    """
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"{path.stem}.onnx"
        tflite2onnx.convert(str(path), str(target))
        model = onnx.load(str(target))
    _flatten_fully_connected(model)
    for entries in (model.graph.initializer, model.graph.value_info):
        ordered = sorted(entries, key=lambda entry: entry.name)
        del entries[:]
        entries.extend(ordered)
    return model


CONVERTERS = {"tflite": _from_tflite}


def to_onnx(path: Path, fmt: str) -> onnx.ModelProto:
    """The ONNX graph of the `fmt` model at `path` (the manifest's `convert`)."""
    if fmt not in CONVERTERS:
        raise ValueError(f"no converter from {fmt!r}; known: {', '.join(sorted(CONVERTERS))}")
    return CONVERTERS[fmt](path)
