"""The dynamic batcher around the real ONNX Runtime models: batch N gives batch 1's outputs; a full queue is 503."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from engine.backends import create_backend
from engine.batcher import DynamicBatcher
from engine.decode import decode_image
from engine.errors import NotReady
from engine.pipeline import FacePipeline, PipelineConfig
from engine.preprocess import to_blob
from models.manifest import load_manifest
from models.store import prepared_models
from tests.assets import asset_path

PHOTOS = ["obama.jpg", "obama2.jpg", "biden.jpg", "sample1.jpg", "sample2.jpg", "sample3.jpg"]


class Recorder:
    """A BatchObserver that keeps what it was told."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def batch(self, model: str, rows: int, seconds: float) -> None:
        self.batches.append(rows)

    def waited(self, model: str, seconds: float) -> None:
        pass

    def depth(self, model: str, depth: int) -> None:
        pass


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [decode_image(asset_path(name).read_bytes()).pixels for name in PHOTOS]


def _model_inputs(role: str, photos: list[np.ndarray]) -> tuple[str, object, list[np.ndarray]]:
    """One input row per photo for the model in `role`, through its own preprocessing."""
    manifest = load_manifest()
    spec = manifest.for_role(role)[0]
    model = prepared_models(manifest)[spec.name]
    rows = [to_blob([p], spec.input) for p in photos]
    return spec.input.name, create_backend("onnxruntime", model.prepared, max_batch=32, threads=1), rows


@pytest.mark.parametrize("role", ["detector", "landmarks", "recognizer"])
def test_batch_of_concurrent_callers_equals_batch_of_one(role: str, photos: list[np.ndarray]) -> None:
    name, backend, rows = _model_inputs(role, photos)
    alone = [backend.infer({name: row}) for row in rows]
    recorder = Recorder()
    # A long wait, so every caller lands in one batch however the threads are scheduled.
    batcher = DynamicBatcher(backend, name=role, max_batch=len(rows), max_wait_ms=2000, observer=recorder,
                             max_batch_bytes=sum(row.nbytes for row in rows))
    try:
        with ThreadPoolExecutor(len(rows)) as pool:
            together = list(pool.map(lambda row: batcher.infer({name: row}), rows))
    finally:
        batcher.close()
    assert max(recorder.batches) > 1, "callers were never batched together"
    for single, batched in zip(alone, together, strict=True):
        assert single.keys() == batched.keys()
        for key in single:
            assert batched[key].shape == single[key].shape
            np.testing.assert_allclose(batched[key], single[key], rtol=1e-4, atol=1e-4)


def test_a_batch_waits_only_for_callers_that_can_still_join(photos: list[np.ndarray]) -> None:
    """Once every caller that could join is in, the batch runs: a lone compare never waits out `max_wait_ms`
    (ten minutes here, past the per-test timeout that would fail it)."""
    name, backend, rows = _model_inputs("landmarks", photos)
    recorder = Recorder()
    callers = [3]
    batcher = DynamicBatcher(backend, name="landmarks", max_batch=32, max_wait_ms=600_000, observer=recorder,
                             callers=lambda: callers[0])
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda row: batcher.infer({name: row}), rows[:3]))
        callers[0] = 1
        batcher.infer({name: rows[0]})
    finally:
        batcher.close()
    assert recorder.batches == [3, 1]


class ThreadRecorder:
    """The real backend, noting which thread ran each inference."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.max_batch, self.max_batch_bytes = backend.max_batch, backend.max_batch_bytes
        self.info, self.input_names, self.output_names = backend.info, backend.input_names, backend.output_names
        self.threads: list[str] = []

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.threads.append(threading.current_thread().name)
        return self.backend.infer(inputs)

    def close(self) -> None:
        """Kept open: the test compares with the backend itself after the batcher closes."""


def test_a_lone_caller_runs_on_its_own_thread_and_others_on_the_worker(photos: list[np.ndarray]) -> None:
    """No batch can form for a lone caller: no hand-off to the worker and back. With other callers, the
    worker batches as before."""
    name, backend, rows = _model_inputs("landmarks", photos)
    recording = ThreadRecorder(backend)
    callers = [1]
    batcher = DynamicBatcher(recording, name="landmarks", max_batch=32, max_wait_ms=600_000,
                             callers=lambda: callers[0])
    try:
        alone = batcher.infer({name: rows[0]})
        callers[0] = 2
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda row: batcher.infer({name: row}), rows[:2]))
    finally:
        batcher.close()
    assert recording.threads == [threading.current_thread().name, "batcher-landmarks"]
    np.testing.assert_allclose(alone[next(iter(alone))], backend.infer({name: rows[0]})[next(iter(alone))],
                               rtol=1e-4, atol=1e-4)


def test_caller_over_max_batch_runs_in_chunks(photos: list[np.ndarray]) -> None:
    name, backend, rows = _model_inputs("recognizer", photos)
    recorder = Recorder()
    batcher = DynamicBatcher(backend, name="recognizer", max_batch=4, max_wait_ms=0, observer=recorder)
    _assert_one_call_matches_direct(batcher, backend, name, rows)
    assert recorder.batches == [len(rows)]


def _assert_one_call_matches_direct(batcher: DynamicBatcher, backend, name: str, rows: list[np.ndarray]) -> None:
    """All rows in one call through the batcher (which closes after, the backend with it) give what the backend
    gives directly."""
    direct = backend.infer({name: np.concatenate(rows)})
    try:
        batched = batcher.infer({name: np.concatenate(rows)})
    finally:
        batcher.close()
    for key in direct:
        np.testing.assert_allclose(batched[key], direct[key], rtol=1e-4, atol=1e-4)


def test_full_queue_raises_not_ready(photos: list[np.ndarray]) -> None:
    name, backend, rows = _model_inputs("detector", photos)
    batcher = DynamicBatcher(backend, name="detector", max_batch=1, max_wait_ms=0, queue_size=1)
    # A long first job keeps the worker busy while the queue's one place is taken.
    long_job = {name: np.concatenate(rows * 8)}
    errors: list[BaseException] = []

    def call(inputs: dict) -> None:
        try:
            batcher.infer(inputs)
        except BaseException as exc:  # kept for the assertion below
            errors.append(exc)

    first = threading.Thread(target=call, args=(long_job,))
    first.start()
    deadline = time.monotonic() + 10
    while batcher.depth and time.monotonic() < deadline:
        time.sleep(0.001)
    second = threading.Thread(target=call, args=({name: rows[0]},))
    second.start()
    while batcher.depth == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    try:
        with pytest.raises(NotReady) as refused:
            batcher.infer({name: rows[0]})
        assert refused.value.http_status == 503 and refused.value.retry_after >= 1
    finally:
        first.join()
        second.join()
        batcher.close()
    assert errors == []


def test_closed_batcher_refuses(photos: list[np.ndarray]) -> None:
    name, backend, rows = _model_inputs("landmarks", photos)
    batcher = DynamicBatcher(backend, name="landmarks")
    batcher.close()
    with pytest.raises(NotReady):
        batcher.infer({name: rows[0]})


def test_batches_are_capped_in_bytes(photos: list[np.ndarray]) -> None:
    """Six 640x480 canvases in one call, 8 MB of input allowed: runs of two (3.7 MB each), same outputs."""
    name, backend, rows = _model_inputs("detector", photos)
    recorder = Recorder()
    batcher = DynamicBatcher(backend, name="detector", max_wait_ms=0, observer=recorder, max_batch_bytes=8 << 20)
    assert batcher._row_limit({name: rows[0]}) == 2
    _assert_one_call_matches_direct(batcher, backend, name, rows)


def test_stage_inputs_batch_by_canvas_size_and_equal_batch_of_one(photos: list[np.ndarray]) -> None:
    """Detector inputs as uint8 images with geometry: callers with one canvas size share an inference, another
    size runs apart, and every caller gets what the backend gives it alone."""
    pipeline = FacePipeline(PipelineConfig(threads=1))
    detector, backend = pipeline.detector, pipeline.detector.backend
    requests = [detector.inputs([photo], size)[0] for photo in photos
                for size in (detector.canvas_size(photo), detector.spec.input.size)]
    sizes = Counter(request.canvas for request in requests)
    alone = [backend.infer_images(detector.spec.input, [request]) for request in requests]
    recorder = Recorder()
    batcher = DynamicBatcher(backend, name="detector", max_wait_ms=2000, observer=recorder, max_batch_bytes=64 << 20,
                             callers=lambda: len(requests))
    try:
        with ThreadPoolExecutor(len(requests)) as pool:
            together = list(pool.map(lambda r: batcher.infer_images(detector.spec.input, [r]), requests))
    finally:
        batcher.close()
    assert sorted(recorder.batches) == sorted(sizes.values()) and max(sizes.values()) > 1
    for single, batched in zip(alone, together, strict=True):
        for key in single:
            np.testing.assert_allclose(batched[key], single[key], rtol=1e-4, atol=1e-4)


def test_a_follower_behind_another_size_joins_and_every_caller_is_answered(photos: list[np.ndarray]) -> None:
    """Queued: a full canvas (taken by the worker), a smaller canvas, another full canvas. The worker takes the
    second full canvas from behind the smaller one; the small one runs next. Under load this happened every
    few seconds, and taking the follower out of the queue must not look at any other request's pixels."""
    name, backend, rows = _model_inputs("detector", photos)
    small = np.ascontiguousarray(rows[1][:, :, :240, :320])
    calls = [{name: rows[0]}, {name: small}, {name: rows[2]}]
    direct = [backend.infer(inputs) for inputs in calls]
    recorder = Recorder()
    batcher = DynamicBatcher(backend, name="detector", max_wait_ms=5000, observer=recorder,
                             max_batch_bytes=64 << 20, callers=lambda: len(calls))
    results: dict[int, dict[str, np.ndarray]] = {}
    threads = [threading.Thread(target=lambda i=i: results.update({i: batcher.infer(calls[i])}), daemon=True)
               for i in range(len(calls))]
    try:
        deadline = time.monotonic() + 10
        for index, thread in enumerate(threads):
            thread.start()
            # The first is taken by the worker at once (depth 0); each later one waits in the queue.
            while batcher.depth != index and time.monotonic() < deadline:
                time.sleep(0.001)
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(results) == [0, 1, 2], "a caller was never answered"
    finally:
        batcher.close()
    assert recorder.batches == [2, 1]
    for index, single in enumerate(direct):
        for key in single:
            np.testing.assert_allclose(results[index][key], single[key], rtol=1e-4, atol=1e-4)


class GatedBackend(ThreadRecorder):
    """The real backend; its first inference waits until the test opens the gate."""

    def __init__(self, backend) -> None:
        super().__init__(backend)
        self.entered, self.gate = threading.Event(), threading.Event()

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self.entered.is_set():
            self.entered.set()
            assert self.gate.wait(60)
        return super().infer(inputs)


def _voluntary_switches(thread: threading.Thread) -> int:
    """How often `thread` has gone to sleep (Linux): each wake-up of a waiting thread adds one."""
    status = f"/proc/self/task/{thread.native_id}/status"
    return next(int(line.split()[1]) for line in open(status) if line.startswith("voluntary_ctxt_switches"))


def test_lone_callers_leave_the_worker_asleep(photos: list[np.ndarray]) -> None:
    """A lone caller's inference does not wake the worker when nothing is queued: before, each one cost the
    worker a wake-up and a sleep (two thread switches per model call, five calls a compare)."""
    name, backend, rows = _model_inputs("landmarks", photos)
    batcher = DynamicBatcher(backend, name="landmarks", max_batch=32, max_wait_ms=600_000, callers=lambda: 1)
    try:
        batcher.infer({name: rows[0]})
        time.sleep(0.2)
        before = _voluntary_switches(batcher._thread)
        for _ in range(20):
            batcher.infer({name: rows[0]})
        woken = _voluntary_switches(batcher._thread) - before
    finally:
        batcher.close()
    assert woken < 5, woken


def test_a_request_queued_behind_a_lone_caller_is_taken_when_it_ends(photos: list[np.ndarray]) -> None:
    """The worker sleeps through lone runs, but one that ends with a request queued behind it wakes it."""
    name, backend, rows = _model_inputs("landmarks", photos)
    gated = GatedBackend(backend)
    callers = [1]
    batcher = DynamicBatcher(gated, name="landmarks", max_batch=32, max_wait_ms=50, callers=lambda: callers[0])
    try:
        with ThreadPoolExecutor(2) as pool:
            lone = pool.submit(batcher.infer, {name: rows[0]})
            assert gated.entered.wait(60)
            callers[0] = 2
            queued = pool.submit(batcher.infer, {name: rows[1]})
            while batcher.depth == 0:
                time.sleep(0.01)
            gated.gate.set()
            lone.result(60)
            queued.result(60)
    finally:
        batcher.close()
    assert gated.threads[-1] == "batcher-landmarks"


def test_two_calls_of_one_caller_run_at_once(photos: list[np.ndarray]) -> None:
    """A compare working on its two photos at once (engine/pipeline.py) is one caller on two threads: its
    second call runs beside the first, not queued behind it for the worker."""
    name, backend, rows = _model_inputs("landmarks", photos)
    gated = GatedBackend(backend)
    batcher = DynamicBatcher(gated, name="landmarks", max_batch=32, max_wait_ms=600_000, callers=lambda: 1)
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(batcher.infer, {name: rows[0]})
            assert gated.entered.wait(60)
            second = pool.submit(batcher.infer, {name: rows[1]}).result(10)
            gated.gate.set()
            first.result(60)
    finally:
        batcher.close()
    assert "batcher-landmarks" not in gated.threads
    np.testing.assert_allclose(second[next(iter(second))], backend.infer({name: rows[1]})[next(iter(second))],
                               rtol=1e-4, atol=1e-4)
