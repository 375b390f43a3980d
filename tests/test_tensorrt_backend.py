"""The TensorRT backend on a real GPU against onnxruntime on the same inputs (skipped without a GPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.backends.engine_cache import EngineCache
from engine.backends.onnxruntime import OnnxRuntimeBackend
from engine.pipeline import input_bounds, sample_shape
from tests.gpu import requires_gpu

pytestmark = [pytest.mark.gpu, requires_gpu]


def model_for(role: str):
    from models.manifest import load_manifest
    from models.store import prepared_models

    (spec, *_) = load_manifest().for_role(role)
    return spec, prepared_models()[spec.name].prepared


@pytest.fixture(scope="module")
def landmarks():
    return model_for("landmarks")


@pytest.fixture
def engines():
    """Makes TensorRT backends and closes each after the test, its CUDA context current (in order)."""
    from engine.backends.tensorrt import TensorRTBackend

    made = []

    def make(*args, **kwargs):
        made.append(TensorRTBackend(*args, **kwargs))
        return made[-1]

    yield make
    for backend in made:
        backend.close()


def test_fp16_engine_matches_onnxruntime_and_is_built_once(landmarks, engines, tmp_path: Path) -> None:
    spec, onnx_path = landmarks
    cache = EngineCache(tmp_path)
    shapes = {spec.input.name: sample_shape(spec)}
    backend = engines(onnx_path, precision="fp16", max_batch=8, sample_shapes=shapes, cache=cache)
    (entry,) = cache.entries()
    engine_file = tmp_path / entry["file"]
    built_at = engine_file.stat().st_mtime_ns
    batch = np.random.default_rng(0).random((5, *sample_shape(spec)), dtype=np.float32)
    expected = OnnxRuntimeBackend(onnx_path).infer({spec.input.name: batch})
    got = backend.infer({spec.input.name: batch})
    for name, value in expected.items():
        assert got[name].shape == value.shape
        np.testing.assert_allclose(got[name], value, atol=2e-2)
    again = engines(onnx_path, precision="fp16", max_batch=8, sample_shapes=shapes, cache=cache)
    assert engine_file.stat().st_mtime_ns == built_at and len(cache.entries()) == 1
    reloaded = again.infer({spec.input.name: batch})
    for name, value in got.items():
        np.testing.assert_array_equal(reloaded[name], value)
    assert list(tmp_path.glob("timing-*.cache"))


def test_batch_over_the_profile_runs_in_chunks(landmarks, engines, tmp_path: Path) -> None:
    spec, onnx_path = landmarks
    backend = engines(onnx_path, precision="fp16", max_batch=2,
                              sample_shapes={spec.input.name: sample_shape(spec)}, cache=EngineCache(tmp_path))
    batch = np.random.default_rng(1).random((5, *sample_shape(spec)), dtype=np.float32)
    whole = backend.infer({spec.input.name: batch})
    for index in range(5):
        single = backend.infer({spec.input.name: batch[index : index + 1]})
        for name, value in single.items():
            np.testing.assert_allclose(whole[name][index : index + 1], value, atol=1e-3)
    with pytest.raises(ValueError, match="max_batch"):
        backend._run({spec.input.name: (3, *sample_shape(spec))})


def test_detector_engine_runs_every_canvas_size_the_detector_sends(engines, tmp_path: Path) -> None:
    """The detector's canvas fits its images: one engine, its profile spanning those sizes, matches onnxruntime."""
    spec, onnx_path = model_for("detector")
    backend = engines(onnx_path, precision="fp16", max_batch=2, cache=EngineCache(tmp_path),
                              **input_bounds(spec))
    reference = OnnxRuntimeBackend(onnx_path)
    rng = np.random.default_rng(2)
    for height, width in [(480, 640), (368, 640), (160, 160), (16, 16)]:
        batch = rng.random((2, 3, height, width), dtype=np.float32)
        expected = reference.infer({spec.input.name: batch})
        got = backend.infer({spec.input.name: batch})
        for name, value in expected.items():
            assert got[name].shape == value.shape
            np.testing.assert_allclose(got[name], value, atol=5e-2)
