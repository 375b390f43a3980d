"""The pipeline as the service runs it: loaded in the background, warmed up, batched, and off the event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any, TypeVar

import numpy as np

from engine.backends import Backend
from engine.batcher import BatchObserver, DynamicBatcher
from engine.errors import NotReady
from engine.liveness import LivenessCheck
from engine.pipeline import CompareResult, FacePipeline, PipelineConfig
from engine.preprocess import Crop
from models.manifest import MANIFEST_PATH, ModelSpec
from models.registry import sha256_of
from service.config import ServiceConfig
from service.metrics import Metrics
from service.worker_pool import LastIdleFirstPool

log = logging.getLogger(__name__)

LOADING_RETRY_AFTER = 5
T = TypeVar("T")


class BatchedPipeline(FacePipeline):
    """The unchanged pipeline, each of its backends wrapped in a dynamic batcher named after its role."""

    def __init__(self, config: PipelineConfig, *, max_wait_ms: float, queue_size: int,
                 observer: BatchObserver | None = None, count_callers: bool = False) -> None:
        """`count_callers`: a batch waits only for the compares in flight (else always `max_wait_ms`)."""
        self._batching = {"max_wait_ms": max_wait_ms, "queue_size": queue_size, "observer": observer,
                          "callers": (lambda: self.compares_in_flight) if count_callers else None}
        super().__init__(config)

    def _backend(self, spec: ModelSpec) -> Backend:
        role = self.manifest.pipeline.roles()[spec.name]
        return DynamicBatcher(super()._backend(spec), name=role, max_batch=self.config.max_batch, **self._batching)


def warm_up(pipeline: FacePipeline) -> None:
    """One dummy inference per backend, through the backend's own preparation of stage inputs (the CUDA kernels
    on TensorRT): a blank image at the model's size."""
    for name, backend in pipeline.backends.items():
        spec = pipeline.manifest.models[name]
        width, height = spec.input.size
        blank = np.zeros((height, width, 3), dtype=np.uint8)
        started = time.monotonic()
        backend.infer_images(spec.input, [Crop(blank, (0, 0, width, height), spec.input.size)])
        log.info("warmed up", extra={"fields": {"model": name, "seconds": round(time.monotonic() - started, 3)}})


def describe(pipeline: FacePipeline) -> dict[str, Any]:
    """What `/v1/info` reports: engine, the models actually loaded with their hashes, the calibration."""
    roles = pipeline.manifest.pipeline.roles()
    info = pipeline.backend_info
    models = []
    for name in pipeline.backends:
        spec = pipeline.manifest.models[name]
        models.append({"name": name, "role": roles[name], "family": spec.family,
                       "sha256": sha256_of(pipeline.models[name].prepared), "manifestSha256": spec.sha256})
    return {
        "version": metadata.version("facecompare-edge"),
        "backend": info.name,
        "precision": info.precision,
        "device": info.device,
        "models": models,
        "manifest": {"sha256": sha256_of(MANIFEST_PATH)},
        "calibration": pipeline.calibration.details,
    }


class Runtime:
    """Readiness, admission and execution of compares; the event loop never runs inference itself."""

    def __init__(self, config: ServiceConfig, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.executor = LastIdleFirstPool(max_workers=config.workers, thread_name_prefix="compare")
        self.info: dict[str, Any] = {}
        self.state = "loading"
        self._pipeline: BatchedPipeline | None = None
        self._inflight = 0
        self._loader: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self._pipeline is not None

    def start_loading(self) -> None:
        """Load and warm up in a thread, so the server listens (and answers /readyz 503) at once."""
        self._loader = threading.Thread(target=self._load, name="model-loader", daemon=True)
        self._loader.start()

    def _load(self) -> None:
        started = time.monotonic()
        try:
            pipeline = BatchedPipeline(self.config.pipeline_config(), max_wait_ms=self.config.max_wait_ms,
                                       queue_size=self.config.queue_size, observer=self.metrics,
                                       count_callers=True)
            warm_up(pipeline)
            self.info = describe(pipeline)
        except Exception as exc:
            self.state = f"failed: {exc}"
            log.exception("models failed to load")
            return
        self._pipeline = pipeline
        self.state = "ready"
        log.info("ready", extra={"fields": {"seconds": round(time.monotonic() - started, 3)}})

    def check_ready(self) -> None:
        if self._pipeline is None:
            raise NotReady("models are loading" if self.state == "loading" else "models failed to load",
                           retry_after=LOADING_RETRY_AFTER)

    async def compare(self, origin: bytes, target: bytes, threshold: float,
                      liveness: LivenessCheck | None = None,
                      then: Callable[[CompareResult], T] = lambda result: result) -> T:
        """Decode and compare in the bounded pool, and `then` on the result in the same thread (one hop
        from the event loop and back, not two); 503 when not ready or when too many are already admitted."""
        self.check_ready()
        if self._inflight >= self.config.max_inflight:
            raise NotReady("overloaded")
        self._inflight += 1
        self.metrics.inflight.set(self._inflight)
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self.executor, lambda: then(self._compare(origin, target, threshold, liveness)))
        finally:
            self._inflight -= 1
            self.metrics.inflight.set(self._inflight)

    def _compare(self, origin: bytes, target: bytes, threshold: float,
                 liveness: LivenessCheck | None) -> CompareResult:
        """The pipeline counts the compare while it runs: its batchers wait for followers only while other
        compares are running."""
        pipeline = self._pipeline
        if pipeline is None:
            raise NotReady("shutting down")
        result = pipeline.compare(origin, target, threshold, liveness, timed=self.metrics.stage)
        self.metrics.liveness_checked(result)
        return result

    def close(self) -> None:
        """Finish what is running, then stop the batchers' workers."""
        self.executor.shutdown(wait=True)
        if self._loader is not None:
            self._loader.join()
        if self._pipeline is not None:
            self._pipeline.close()
