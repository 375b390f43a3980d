"""Graph surgery done once at fetch time: outputs cut before baked-in decoding, a dynamic batch axis."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper


def _cut(model: onnx.ModelProto, outputs: list[str]) -> onnx.ModelProto:
    """Keep only what computes `outputs`; shapes are re-inferred for the new outputs."""
    inputs = [i.name for i in model.graph.input]
    inferred = onnx.shape_inference.infer_shapes(model)
    return onnx.utils.Extractor(inferred).extract_model(inputs, outputs)


def _rename(model: onnx.ModelProto, renames: dict[str, str]) -> None:
    for node in model.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    for value in [*model.graph.output, *model.graph.value_info]:
        value.name = renames.get(value.name, value.name)


def _set_shapes(model: onnx.ModelProto, shapes: dict[str, list[int | str]]) -> None:
    """Declare the graph's input and output shapes: a name is a free axis (batch, image size, anchors).

    Inner shapes inferred for the old fixed sizes are dropped, so nothing inside pins them.
    """
    values = {v.name: v for v in [*model.graph.input, *model.graph.output]}
    unknown = set(shapes) - set(values)
    if unknown:
        raise ValueError(f"surgery: no graph input or output named {sorted(unknown)}")
    for name, dims in shapes.items():
        shape = values[name].type.tensor_type.shape
        shape.ClearField("dim")
        for dim in dims:
            if isinstance(dim, str):
                shape.dim.add().dim_param = dim
            else:
                shape.dim.add().dim_value = dim
    del model.graph.value_info[:]


def _unpin_reshapes(model: onnx.ModelProto) -> None:
    """A Reshape to a constant shape starting with 1 pins the batch; 0 copies the input's axis instead."""
    initializers = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.input[1] not in initializers:
            continue
        init = initializers[node.input[1]]
        shape = numpy_helper.to_array(init).copy()
        if shape.size and shape[0] == 1:
            shape[0] = 0
            init.CopyFrom(numpy_helper.from_array(shape.astype(np.int64), init.name))


def apply_surgery(model: onnx.ModelProto, surgery: dict[str, Any]) -> onnx.ModelProto:
    """Apply the manifest's `surgery` table for one model and check the result."""
    if surgery.get("cut_outputs"):
        model = _cut(model, list(surgery["cut_outputs"]))
    if surgery.get("rename"):
        _rename(model, dict(surgery["rename"]))
    if surgery.get("reshape_batch"):
        _unpin_reshapes(model)
    if surgery.get("shapes"):
        _set_shapes(model, dict(surgery["shapes"]))
    onnx.checker.check_model(model)
    return model
