"""The GPU path's defects, each held by a test that runs without a GPU: the parts are plain Python on purpose."""

from __future__ import annotations

import enum
import re
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from engine.backends.engine_cache import batch_profile
from engine.backends.gpu_memory import choose_strategy
from engine.backends.int8 import (
    Int8Route,
    Int8Unavailable,
    graph_for,
    has_ranges,
    photos_digest,
    read_route,
    require_ranges,
    write_route,
)
from engine.backends.limits import ONNXRUNTIME_MAX_BATCH_BYTES, tensorrt_limits
from engine.backends.teardown import CLOSE_ORDER, release_in_order
from engine.backends.trt_api import SOURCES, numpy_dtype
from engine.batcher import DynamicBatcher
from engine.cuda import nvrtc
from tests.test_tensorrt_api import ROOT, used_names

# The DataType members of TensorRT 8.5 (JetPack 5.1), whose own `trt.nptype` fails on BOOL with NumPy >= 1.24.
DataType = enum.Enum("DataType", "FLOAT HALF INT8 INT32 BOOL UINT8")


# 1. TensorRT 8.5 and NumPy 2: our own dtype table.

def test_every_tensorrt_85_type_has_a_numpy_dtype_on_this_numpy() -> None:
    assert [numpy_dtype(t) for t in DataType] == [np.float32, np.float16, np.int8, np.int32, np.bool_, np.uint8]


def test_a_type_numpy_lacks_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="BF16"):
        numpy_dtype(enum.Enum("DataType", "BF16").BF16)


def test_the_sources_never_call_trt_nptype() -> None:
    for source in SOURCES:
        assert "nptype" not in used_names((ROOT / source).read_text()), source


# 2. CUDA objects released in order, with the context current.

class Released:
    """Records, when the last reference goes, its name and whether the CUDA context was current."""

    def __init__(self, name: str, log: list[tuple[str, bool]], state: dict[str, bool]) -> None:
        weakref.finalize(self, lambda: log.append((name, state["current"])))


class Buffer(Released):
    def __init__(self, name: str, log: list[tuple[str, bool]], state: dict[str, bool]) -> None:
        super().__init__(name, log, state)
        self.freed = False
        self._log, self._name, self._state = log, name, state

    def free(self) -> None:
        self._log.append((f"{self._name} freed", self._state["current"]))


def test_close_releases_context_engine_runtime_buffers_stream_in_order_with_the_context_current() -> None:
    log: list[tuple[str, bool]] = []
    state = {"current": False}

    @contextmanager
    def active() -> Iterator[None]:
        state["current"] = True
        yield
        state["current"] = False

    class Owner:
        pass

    owner = Owner()
    owner._stream = Released("stream", log, state)
    owner._buffers = {"input": Buffer("input", log, state), "output": Buffer("output", log, state)}
    owner._runtime = Released("runtime", log, state)
    owner._engine = Released("engine", log, state)
    owner._context = Released("context", log, state)
    release_in_order(owner, active)
    assert log == [("context", True), ("engine", True), ("runtime", True), ("input freed", True),
                   ("output freed", True), ("input", True), ("output", True), ("stream", True)]
    release_in_order(owner, active)
    assert len(log) == 8 and not state["current"]


def test_the_tensorrt_backend_holds_exactly_what_close_releases() -> None:
    source = (ROOT / "engine/backends/tensorrt.py").read_text()
    held = set(re.findall(r"self\.(_\w+)(?:, self\.(_\w+))? = ", source)) - {("_lock", "")}
    names = {name for pair in held for name in pair if name}
    assert names == set(CLOSE_ORDER)
    assert "release_in_order(self, self.gpu.active)" in source


def test_closing_the_pipeline_closes_every_model_through_its_batcher() -> None:
    from engine.pipeline import PipelineConfig
    from service.runtime import BatchedPipeline

    pipeline = BatchedPipeline(PipelineConfig(threads=1), max_wait_ms=1, queue_size=4)
    inner = [batcher.backend for batcher in pipeline.backends.values()]
    pipeline.close()
    assert all(backend._session is None for backend in inner)
    with pytest.raises(RuntimeError, match="closed"):
        inner[0].infer({})


# 3. INT8: one request, one route; no engine without ranges; keyed by the calibration photos.

def test_one_int8_route_per_request(tmp_path: Path) -> None:
    prepared, quantized = tmp_path / "m.prepared.onnx", tmp_path / "m.int8.onnx"
    qdq, calibrator = Int8Route("qdq", "a" * 64), Int8Route("calibrator", "b" * 64)
    with pytest.raises(Int8Unavailable, match="--calibration DIR --onnx-only"):
        graph_for("onnxruntime", qdq, prepared, quantized, "m")
    with pytest.raises(Int8Unavailable, match="--calibration DIR'"):
        graph_for("tensorrt", qdq, prepared, quantized, "m")
    quantized.touch()
    assert graph_for("onnxruntime", qdq, prepared, quantized, "m") == quantized
    assert graph_for("tensorrt", qdq, prepared, quantized, "m") == quantized
    # The calibrator route never loads the Q/DQ graph, even where one exists.
    assert graph_for("tensorrt", calibrator, prepared, quantized, "m") == prepared
    with pytest.raises(Int8Unavailable, match="--onnx-only"):
        graph_for("onnxruntime", calibrator, prepared, quantized, "m")


def test_the_route_is_what_the_last_calibration_recorded(tmp_path: Path) -> None:
    assert read_route(tmp_path) == Int8Route("qdq", "", "")
    write_route(tmp_path, Int8Route("calibrator", "c" * 64, "entropy"))
    assert read_route(tmp_path) == Int8Route("calibrator", "c" * 64, "entropy")
    # A record from before the method was recorded still reads: its method is unknown, not guessed.
    (tmp_path / "int8-route.json").write_text('{"name": "qdq", "calibration": "' + "d" * 64 + '"}')
    assert read_route(tmp_path) == Int8Route("qdq", "d" * 64, "")
    for refused in (Int8Route("guess", "", "entropy"), Int8Route("qdq", "", ""), Int8Route("qdq", "", "kl")):
        with pytest.raises(ValueError):
            write_route(tmp_path, refused)


def test_the_calibration_digest_follows_the_photos_and_limits(tmp_path: Path) -> None:
    photos = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    for index, photo in enumerate(photos):
        photo.write_bytes(bytes([index]) * 10)
    first = photos_digest(photos, 300, 1500)
    assert first == photos_digest(list(reversed(photos)), 300, 1500)
    assert first != photos_digest(photos, 300, 100)
    photos[1].write_bytes(b"another photo")
    assert first != photos_digest(photos, 300, 1500)


def _tiny_graph(path: Path, quantized: bool) -> Path:
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    initializers = []
    if quantized:
        initializers = [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
                        helper.make_tensor("z", TensorProto.INT8, [], [0])]
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
                 helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]), helper.make_node("Relu", ["d"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_no_int8_engine_without_ranges(tmp_path: Path) -> None:
    plain, qdq = _tiny_graph(tmp_path / "plain.onnx", False), _tiny_graph(tmp_path / "qdq.onnx", True)
    assert not has_ranges(plain) and has_ranges(qdq)
    with pytest.raises(Int8Unavailable, match="engines build --precision int8 --calibration DIR"):
        require_ranges(plain, None)
    require_ranges(plain, object())
    require_ranges(qdq, None)


def test_the_shipped_fp32_graphs_carry_no_ranges() -> None:
    from models.store import prepared_models

    assert not any(has_ranges(model.prepared) for model in prepared_models().values())


# 4. Batch limits per backend.

def test_onnxruntime_keeps_its_1mib_cap_and_the_batcher_takes_it_from_the_backend() -> None:
    from engine.backends.onnxruntime import OnnxRuntimeBackend
    from models.store import prepared_models

    model = next(iter(prepared_models().values()))
    batcher = DynamicBatcher(OnnxRuntimeBackend(model.prepared, threads=1), name="x")
    try:
        assert batcher.max_batch_bytes == ONNXRUNTIME_MAX_BATCH_BYTES == 1 << 20
        canvas = {"input": np.zeros((1, 3, 480, 640), np.float32)}
        assert batcher._row_limit(canvas) == 1
    finally:
        batcher.close()


class Rows:
    """A backend without a byte cap (as TensorRT's) that reports each batch's size: the batcher is under test."""

    info = None
    input_names = ["input"]
    output_names = ["rows"]
    max_batch_bytes = None

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch
        self.batches: list[int] = []

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.batches.append(len(inputs["input"]))
        return {"rows": np.arange(len(inputs["input"]))}

    def close(self) -> None:
        pass


def test_tensorrt_batches_detector_canvases_by_count_and_memory() -> None:
    detector = tensorrt_limits({"input": (3, 480, 640)}, 32)
    assert (detector.max_batch, detector.opt_batch, detector.max_batch_bytes) == (8, 2, None)
    assert tensorrt_limits({"input": (3, 112, 112)}, 32).max_batch == 32
    assert tensorrt_limits({"input": (3, 112, 112)}, 1).opt_batch == 1
    profile = batch_profile({"input": (3, 480, 640)}, detector.max_batch, detector.opt_batch)
    assert profile[0][2][0] == 2 and profile[0][3][0] == 8
    backend = Rows(detector.max_batch)
    batcher = DynamicBatcher(backend, name="detector")
    try:
        batcher.infer({"input": np.zeros((8, 3, 480, 640), np.float32)})
    finally:
        batcher.close()
    assert backend.batches == [8]


# 5. Memory strategy per device.

@pytest.mark.parametrize(("integrated", "capability", "expected"), [
    (True, (8, 7), "mapped"), (True, (7, 2), "mapped"), (True, (6, 2), "device"), (True, (5, 3), "device"),
    (False, (9, 0), "pinned"), (False, (8, 6), "pinned")])
def test_memory_strategy_follows_the_tegra_note(integrated: bool, capability: tuple[int, int], expected: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACECOMPARE_GPU_MEMORY", raising=False)
    assert choose_strategy(integrated, capability) == expected


def test_memory_strategy_is_selectable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACECOMPARE_GPU_MEMORY", "device")
    assert choose_strategy(True, (8, 7)) == "device"
    monkeypatch.setenv("FACECOMPARE_GPU_MEMORY", "zero")
    with pytest.raises(ValueError, match="mapped, device, pinned"):
        choose_strategy(True, (8, 7))


# 6. NVRTC: the device's toolkit first at run time, the pinned wheel first for the kernel check.

def test_nvrtc_from_the_device_toolkit_first_at_run_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lib64").mkdir()
    toolkit = tmp_path / "lib64" / "libnvrtc.so.12"
    toolkit.touch()
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    assert nvrtc.library_candidates(toolkit_first=True)[0] == toolkit
    wheel_first = nvrtc.library_candidates()
    if len(wheel_first) > 1 and "nvidia" in str(wheel_first[0]):
        assert wheel_first[0] != toolkit
