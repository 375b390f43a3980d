"""Engine-cache keys and the cache itself: plain Python, so tested here for real without a GPU."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.backends import create_backend
from engine.backends.base import BackendUnavailable
from engine.backends.engine_cache import EngineCache, EngineKey, batch_profile
from engine.detector import CANVAS_STEP
from engine.pipeline import input_bounds, sample_shape
from models.manifest import load_manifest

SHA = "6c0256ccd3164f844736a401faf936ec2930764a87ae39442180887d0c5c8854"


def key(**changes: object) -> EngineKey:
    base = EngineKey(SHA, "10.3.0", "Orin", (8, 7), 8, "fp16", batch_profile({"input": (3, 480, 640)}, 8))
    return dataclasses.replace(base, **changes)


def test_batch_profile_spans_one_to_max_with_the_sample_shape_fixed() -> None:
    assert batch_profile({"input": (3, 112, 112)}, 16, opt_batch=4) == (
        ("input", (1, 3, 112, 112), (4, 3, 112, 112), (16, 3, 112, 112)),)
    assert batch_profile({"b": (1,), "a": (2,)}, 2)[0][0] == "a"
    with pytest.raises(ValueError):
        batch_profile({"input": (3,)}, 0)


def test_batch_profile_spans_the_smallest_sample_where_one_is_given() -> None:
    assert batch_profile({"input": (3, 480, 640), "other": (5,)}, 4, min_sample_shapes={"input": (3, 16, 16)}) == (
        ("input", (1, 3, 16, 16), (4, 3, 480, 640), (4, 3, 480, 640)),
        ("other", (1, 5), (4, 5), (4, 5)))


def test_only_the_detector_input_varies_in_size() -> None:
    manifest = load_manifest()
    for spec in manifest.models.values():
        bounds = input_bounds(spec)
        (largest,) = bounds["sample_shapes"].values()
        (smallest,) = bounds["min_sample_shapes"].values()
        assert largest == sample_shape(spec)
        assert smallest == ((largest[0], CANVAS_STEP, CANVAS_STEP) if spec.family == "ultraface" else largest)


def test_key_is_stable() -> None:
    assert key().digest() == key().digest()
    assert len(key().digest()) == 64


@pytest.mark.parametrize("change", [
    {"onnx_sha256": "0" * 64},
    {"trt_version": "8.6.2"},
    {"gpu_name": "Xavier"},
    {"compute_capability": (7, 2)},
    {"sm_count": 16},
    {"calibration": "1" * 64},
    {"precision": "int8"},
    {"profile": batch_profile({"input": (3, 480, 640)}, 16)},
    {"profile": batch_profile({"input": (3, 240, 320)}, 8)},
])
def test_every_field_changes_the_key(change: dict) -> None:
    assert key(**change).digest() != key().digest()
    assert key(**change).file_name("fr_detect") != key().file_name("fr_detect")


def test_file_name_says_model_and_precision() -> None:
    name = key().file_name("fr detect/x")
    assert name.startswith("fr-detect-x-fp16-") and name.endswith(".engine")


def test_cache_builds_once_then_loads(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path / "engines")
    builds: list[bytes] = []

    def build() -> bytes:
        builds.append(b"plan")
        return b"plan"

    assert cache.get_or_build(key(), "fr_detect", build) == (b"plan", True)
    assert cache.get_or_build(key(), "fr_detect", build) == (b"plan", False)
    assert len(builds) == 1
    assert cache.get_or_build(key(precision="int8"), "fr_detect", build) == (b"plan", True)
    entries = cache.entries()
    assert [e["precision"] for e in entries] == ["fp16", "int8"]
    assert entries[0]["model"] == "fr_detect" and entries[0]["compute_capability"] == [8, 7]
    assert not list((tmp_path / "engines").glob("*.partial"))


def test_timing_cache_is_per_gpu_and_version(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    orin = cache.timing_cache_path("10.3.0", "Orin", (8, 7))
    assert orin.name == "timing-trt10.3.0-Orin-sm87.cache"
    assert orin != cache.timing_cache_path("8.6.2", "Orin", (8, 7))
    assert orin != cache.timing_cache_path("10.3.0", "Xavier", (7, 2))


def test_without_a_gpu_the_backend_refuses_and_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="doctor"):
        create_backend("tensorrt", tmp_path / "model.onnx")
