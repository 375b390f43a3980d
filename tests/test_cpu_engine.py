"""The tuned CPU engine (ORT_ENABLE_ALL, PRelu unfolded, no spinning, denormals as zero) against the reference:
ONNX Runtime at basic optimisation on the prepared graph as stored, with the real models on real faces."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from engine.align import align_face
from engine.backends.denormals import SUPPORTED, denormals_as_zero
from engine.backends.onnxruntime import OnnxRuntimeBackend
from engine.pipeline import FacePipeline
from engine.preprocess import letterbox, to_blob
from models.store import PreparedModel, fetch_models
from models.surgery import flush_denormals, unfold_prelu
from tests.service_process import REPO


@pytest.fixture(scope="module")
def prepared() -> dict[str, PreparedModel]:
    return {model.spec.name: model for model in fetch_models()}


def reference(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def inputs(pipeline: FacePipeline, photo) -> dict[str, np.ndarray]:
    """Each model's real input: detector canvases, landmark patches, aligned crops of faces in photos."""
    images = [pipeline.decode(photo(name)).pixels for name in ("obama.jpg", "biden.jpg", "sample1.jpg")]
    found = pipeline.detector.detect(images)
    flat = [(image, face) for image, faces in zip(images, found, strict=True) for face in faces]
    points = pipeline.landmarks.points(flat)
    crops = [align_face(image, p, (112, 112)) for (image, _), p in zip(flat, points, strict=True)]
    spec = pipeline.detector.spec
    patches = [image[int(f.y1): int(f.y2), int(f.x1): int(f.x2)] for image, f in flat]
    return {
        "fr_detect": to_blob([letterbox(i, spec.input.size, 1.0)[0] for i in images], spec.input),
        "fr_landmark": to_blob(patches, pipeline.landmarks.spec.input),
        "fr_feature": to_blob(crops, pipeline.manifest.models["fr_feature"].input),
        "mobilefacenet": to_blob(crops, pipeline.manifest.models["mobilefacenet"].input),
    }


@pytest.mark.parametrize("name", ["fr_feature", "mobilefacenet"])
def test_unfold_prelu_leaves_no_prelu(prepared: dict[str, PreparedModel], name: str) -> None:
    model = onnx.load(str(prepared[name].prepared))
    before = Counter(node.op_type for node in model.graph.node)
    assert unfold_prelu(model) == before["PRelu"] > 0
    onnx.checker.check_model(model)
    after = Counter(node.op_type for node in model.graph.node)
    assert after["PRelu"] == 0
    assert after["Relu"] == before["Relu"] + before["PRelu"]


@pytest.mark.parametrize("name", ["fr_landmark", "fr_feature"])
def test_flush_denormals_leaves_only_normal_weights(prepared: dict[str, PreparedModel], name: str) -> None:
    model = onnx.load(str(prepared[name].prepared))
    weights = [onnx.numpy_helper.to_array(i) for i in model.graph.initializer]
    denormal = sum(int(((w != 0) & (np.abs(w) < np.finfo(np.float32).tiny)).sum()) for w in weights
                   if w.dtype == np.float32)
    assert flush_denormals(model) == denormal > 0
    onnx.checker.check_model(model)
    assert flush_denormals(model) == 0


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", ["fr_detect", "fr_landmark", "fr_feature", "mobilefacenet"])
def test_tuned_backend_matches_reference(prepared: dict[str, PreparedModel], inputs: dict[str, np.ndarray],
                                         name: str, threads: int) -> None:
    """One thread: the model computes on the caller's thread, with its DAZ/FTZ; two: on ORT's pool too."""
    batch = inputs[name]
    assert len(batch) >= 3
    expected_session = reference(prepared[name].prepared)
    expected = expected_session.run(None, {expected_session.get_inputs()[0].name: batch})
    tuned = OnnxRuntimeBackend(prepared[name].prepared, threads=threads)
    actual = list(tuned.infer({tuned.input_names[0]: batch}).values())
    for want, got in zip(expected, actual, strict=True):
        assert got.shape == want.shape
        scale = np.abs(want).max()
        assert np.abs(got - want).max() <= 1e-4 * scale + 1e-5
    if name in ("fr_feature", "mobilefacenet"):
        want, got = expected[0], actual[0]
        cosines = (want * got).sum(1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)
        assert cosines.min() > 0.99999


def _underflows() -> float:
    """A product of normal float32s that is denormal (about 1e-40) by IEEE rules, 0 with FTZ on this thread."""
    return float((np.array([1e-30], dtype=np.float32) * np.float32(1e-10))[0])


needs_mxcsr = pytest.mark.skipif(not SUPPORTED, reason="DAZ/FTZ are set on Linux x86-64 only")


@needs_mxcsr
def test_denormals_as_zero_holds_inside_only() -> None:
    assert _underflows() > 0
    with denormals_as_zero():
        assert _underflows() == 0
        assert float(np.array([1e-40], dtype=np.float32)[0] * np.float32(1e30)) == 0  # a denormal input reads as 0
    assert _underflows() > 0


FIRST_SESSION = """
import sys
import numpy as np
from engine.backends.onnxruntime import OnnxRuntimeBackend
backend = OnnxRuntimeBackend(sys.argv[1], threads=1)
before = float((np.array([1e-30], dtype=np.float32) * np.float32(1e-10))[0])
backend.infer({backend.input_names[0]: np.zeros((1, 1, 64, 64), dtype=np.float32)})
after = float((np.array([1e-30], dtype=np.float32) * np.float32(1e-10))[0])
print(before > 0, after > 0)
"""


@needs_mxcsr
def test_backend_leaves_the_callers_floating_point_environment(prepared: dict[str, PreparedModel]) -> None:
    """ORT's `session.set_denormal_as_zero` sets the flags for good on the thread that creates the process's
    first session, and the backend sets them on its caller for each inference: in a fresh process, the thread
    that did both still computes IEEE denormals after."""
    run = subprocess.run([sys.executable, "-c", FIRST_SESSION, str(prepared["fr_landmark"].prepared)],
                         capture_output=True, text=True, timeout=120, check=True, cwd=REPO)
    assert run.stdout.split() == ["True", "True"]


def test_zero_denormals_changes_no_embedding(prepared: dict[str, PreparedModel],
                                             inputs: dict[str, np.ndarray]) -> None:
    """What the flags change is below float32's normal range: fr_feature's embeddings of real faces, where its
    activations underflow, are the same with and without them."""
    batch = inputs["fr_feature"]
    flushed, kept = (OnnxRuntimeBackend(prepared["fr_feature"].prepared, threads=1, zero_denormals=zero)
                     for zero in (True, False))
    want = kept.infer({kept.input_names[0]: batch})
    got = flushed.infer({flushed.input_names[0]: batch})
    for name in want:
        assert np.abs(got[name] - want[name]).max() <= 1e-6 * np.abs(want[name]).max()
