"""MobileFaceNet, converted from TFLite at fetch time: PReLU fused back, a free batch axis, batch-invariant."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from engine.backends.onnxruntime import OnnxRuntimeBackend
from models.convert import to_onnx
from models.store import PreparedModel, fetch_models


@pytest.fixture(scope="module")
def prepared() -> PreparedModel:
    return next(model for model in fetch_models() if model.spec.name == "mobilefacenet")


@pytest.fixture(scope="module")
def backend(prepared: PreparedModel) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend(prepared.prepared, threads=1)


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    """Eight random crops, normalised as the manifest says: (x - 127.5) / 128."""
    pixels = np.random.default_rng(0).integers(0, 256, size=(8, 3, 112, 112))
    return ((pixels - 127.5) * 0.0078125).astype(np.float32)


def _embed(backend: OnnxRuntimeBackend, batch: np.ndarray) -> np.ndarray:
    return backend.infer({"input": batch})["embeddings"]


def test_prelu_fused_with_no_leftover_pattern(prepared: PreparedModel) -> None:
    converted = Counter(node.op_type for node in to_onnx(prepared.original, "tflite").graph.node)
    fused = Counter(node.op_type for node in onnx.load(str(prepared.prepared)).graph.node)
    assert converted["Relu"] > 0
    assert fused["PRelu"] == converted["Relu"]
    assert not {"Relu", "Abs", "Sub", "Mul"} & set(fused)


def test_batch_axis_is_free(prepared: PreparedModel, backend: OnnxRuntimeBackend, crops: np.ndarray) -> None:
    graph = onnx.load(str(prepared.prepared)).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    for size in (1, 2, 3, 8):
        assert _embed(backend, crops[:size]).shape == (size, 192)


def test_batch_n_equals_batch_1(backend: OnnxRuntimeBackend, crops: np.ndarray) -> None:
    one_by_one = np.concatenate([_embed(backend, crops[i : i + 1]) for i in range(len(crops))])
    np.testing.assert_allclose(_embed(backend, crops), one_by_one, rtol=0, atol=1e-5)


def test_fused_graph_matches_the_converted_one(prepared: PreparedModel, crops: np.ndarray, tmp_path: Path) -> None:
    """The converted graph runs a fixed batch of two, as the TFLite model does. Both graphs run as stored
    (basic optimisation, PRelu kept), so only the surgery can make them differ."""
    path = tmp_path / "converted.onnx"
    onnx.save(to_onnx(prepared.original, "tflite"), str(path))
    as_stored = {"threads": 1, "optimisation": "basic", "unfold": False}
    fused, reference = OnnxRuntimeBackend(prepared.prepared, **as_stored), OnnxRuntimeBackend(path, **as_stored)
    for start in range(0, len(crops), 2):
        pair = crops[start : start + 2]
        np.testing.assert_allclose(_embed(fused, pair), _embed(reference, pair), rtol=0, atol=1e-5)
