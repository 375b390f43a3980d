"""The generic surgery passes on small hand-built graphs."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from models.surgery import apply_surgery


def _spelled_out_prelu(alpha: np.ndarray) -> onnx.ModelProto:
    """`a * (x - Abs(x)) + Relu(x)`: the operands in the other order from the converter's."""
    nodes = [
        helper.make_node("Relu", ["x"], ["pos"]),
        helper.make_node("Abs", ["x"], ["abs"]),
        helper.make_node("Sub", ["x", "abs"], ["sub"]),
        helper.make_node("Mul", ["sub", "alpha"], ["neg"]),
        helper.make_node("Add", ["neg", "pos"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4, 4])],
        [numpy_helper.from_array(alpha, "alpha")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_fuse_prelu_in_either_operand_order() -> None:
    alpha = np.array([0.25, -0.5, 1.5], dtype=np.float32).reshape(3, 1, 1)
    fused = apply_surgery(_spelled_out_prelu(alpha), {"fuse_prelu": True})
    assert [node.op_type for node in fused.graph.node] == ["PRelu"]
    assert [init.name for init in fused.graph.initializer] == ["y/prelu_slope"]
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    session = ort.InferenceSession(fused.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], np.where(x > 0, x, 2 * alpha * x))
