"""Graph surgery done once at fetch time: outputs cut before baked-in decoding, a dynamic batch axis,
fused activations that converters spell out op by op; and `unfold_prelu` and `flush_denormals`, done by the
CPU backend at load."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _constant(name: str, producers: dict[str, onnx.NodeProto],
              initializers: dict[str, onnx.TensorProto]) -> np.ndarray | None:
    """An initializer, or a Reshape of one to a plain shape (how converters broadcast a per-channel slope)."""
    if name in initializers:
        return numpy_helper.to_array(initializers[name])
    node = producers.get(name)
    if node is None or node.op_type != "Reshape" or not all(i in initializers for i in node.input):
        return None
    data, shape = (numpy_helper.to_array(initializers[i]) for i in node.input)
    return data.reshape(shape) if (shape > 0).all() else None


def _prelu_match(add: onnx.NodeProto, producers: dict[str, onnx.NodeProto],
                 initializers: dict[str, onnx.TensorProto]) -> tuple[str, np.ndarray] | None:
    """`Relu(x) + a * (x - Abs(x))`, either operand order: x and the PRelu slope 2a, else None."""
    first, second = add.input
    for relu_out, mul_out in ((first, second), (second, first)):
        relu, mul = producers.get(relu_out), producers.get(mul_out)
        if relu is None or mul is None or relu.op_type != "Relu" or mul.op_type != "Mul":
            continue
        x = relu.input[0]
        left, right = mul.input
        for alpha_name, sub_out in ((left, right), (right, left)):
            sub = producers.get(sub_out)
            if sub is None or sub.op_type != "Sub" or sub.input[0] != x:
                continue
            absolute = producers.get(sub.input[1])
            if absolute is None or absolute.op_type != "Abs" or absolute.input[0] != x:
                continue
            alpha = _constant(alpha_name, producers, initializers)
            if alpha is not None:
                return x, 2 * alpha
    return None


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Remove the nodes and initializers nothing reads any more (what a fusion leaves behind)."""
    needed = {v.name for v in [*graph.input, *graph.output]}
    for index in reversed(range(len(graph.node))):
        node = graph.node[index]
        if needed.isdisjoint(node.output):
            del graph.node[index]
        else:
            needed.update(node.input)
    for index in reversed(range(len(graph.initializer))):
        if graph.initializer[index].name not in needed:
            del graph.initializer[index]


def _fuse_prelu(model: onnx.ModelProto) -> None:
    """TFLite converters spell PReLU as `Relu(x) + a * (x - Abs(x))`, five ops where one does:
    for x < 0, x - |x| is 2x, so this is PRelu(x) with slope 2a."""
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    initializers = {init.name: init for init in graph.initializer}
    for node in graph.node:
        match = _prelu_match(node, producers, initializers) if node.op_type == "Add" else None
        if match is None:
            continue
        x, slope = match
        slope_name = f"{node.output[0]}/prelu_slope"
        graph.initializer.append(numpy_helper.from_array(slope, slope_name))
        node.CopyFrom(helper.make_node("PRelu", [x, slope_name], list(node.output), name=node.name))
    _drop_unused(graph)


def unfold_prelu(model: onnx.ModelProto) -> int:
    """Spell each PRelu with a constant slope s as `s*x + (1-s)*Relu(x)`; returns how many were unfolded.

    The same function, but ONNX Runtime's CPU PRelu kernel is slow and breaks its NCHWc layout: the Mul,
    Relu, Mul, Add run about 3x faster under ORT_ENABLE_ALL (docs/PERFORMANCE.md). TensorRT fuses PRelu
    itself, so this is applied in memory by the CPU backend, never to the prepared file.
    """
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    unfolded = 0
    for node in graph.node:
        if node.op_type != "PRelu" or node.input[1] not in initializers:
            nodes.append(node)
            continue
        x, slope_name = node.input
        slope = numpy_helper.to_array(initializers[slope_name]).astype(np.float32)
        out = node.output[0]
        stem = f"{out}/unfolded"
        graph.initializer.extend([numpy_helper.from_array(slope, f"{stem}/slope"),
                                  numpy_helper.from_array(1 - slope, f"{stem}/one_minus_slope")])
        nodes += [helper.make_node("Mul", [x, f"{stem}/slope"], [f"{stem}/sx"]),
                  helper.make_node("Relu", [x], [f"{stem}/relu"]),
                  helper.make_node("Mul", [f"{stem}/relu", f"{stem}/one_minus_slope"], [f"{stem}/rest"]),
                  helper.make_node("Add", [f"{stem}/sx", f"{stem}/rest"], [out], name=node.name)]
        unfolded += 1
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused(graph)
    return unfolded


def flush_denormals(model: onnx.ModelProto) -> int:
    """Set the float32 weights too small to be normal numbers (|w| < 1.2e-38) to zero; returns how many.

    They add nothing a float32 result can hold, but an x86 core multiplies a denormal operand through a
    microcode assist, up to a hundred times slower: fr_feature carries 8938 of them, and on a Xeon with
    AVX-512 its 1x1 convolutions ran 4x slower for it, the outputs bit for bit the same once they are zero
    (docs/PERFORMANCE.md). Applied in memory by the CPU backend, like `unfold_prelu`.
    """
    tiny = np.finfo(np.float32).tiny
    flushed = 0
    for index, initializer in enumerate(model.graph.initializer):
        if initializer.data_type != onnx.TensorProto.FLOAT:
            continue
        weights = numpy_helper.to_array(initializer)
        denormal = (weights != 0) & (np.abs(weights) < tiny)
        if denormal.any():
            flushed += int(denormal.sum())
            model.graph.initializer[index].CopyFrom(
                numpy_helper.from_array(np.where(denormal, np.float32(0), weights), initializer.name))
    return flushed


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
    """A Reshape of activations to a constant shape starting with the graph's fixed batch (1 if none) pins
    it; 0 copies the input's axis instead. A Reshape of a constant (a broadcast slope) has no batch."""
    batch = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value or 1
    initializers = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.input[0] in initializers or node.input[1] not in initializers:
            continue
        init = initializers[node.input[1]]
        shape = numpy_helper.to_array(init).copy()
        if shape.size and shape[0] == batch:
            shape[0] = 0
            init.CopyFrom(numpy_helper.from_array(shape.astype(np.int64), init.name))


def apply_surgery(model: onnx.ModelProto, surgery: dict[str, Any]) -> onnx.ModelProto:
    """Apply the manifest's `surgery` table for one model and check the result."""
    if surgery.get("fuse_prelu"):
        _fuse_prelu(model)
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
