"""Prometheus metrics in the service's own registry, so tests and several apps in one process never collide.

The batcher reports through the `BatchObserver` methods, the callback deliverer through `callback_delivered`
and `callback_retry` (the `CallbackMetrics` protocol of service/jobs.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from engine.pipeline import CompareResult

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = CONTENT_TYPE_LATEST
LIVENESS_OUTCOMES = ("live", "not_live", "no_face")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("facecompare_requests", "HTTP requests answered, by route, status and errorCode",
                                ["route", "status", "error_code"], registry=self.registry)
        self.request_seconds = Histogram("facecompare_request_seconds", "HTTP request latency by route",
                                         ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.stage_seconds = Histogram("facecompare_stage_seconds",
                                       "Latency per pipeline stage (decode, detector, landmarks, recognizer, "
                                       "queue wait per model, whole compare)",
                                       ["stage"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("facecompare_queue_depth", "Inference requests waiting per model", ["model"],
                                 registry=self.registry)
        self.batch_rows = Histogram("facecompare_batch_rows", "Rows per inference batch, per model", ["model"],
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.inflight = Gauge("facecompare_inflight_compares", "Compares admitted and not finished",
                              registry=self.registry)
        self.callback_deliveries = Counter("facecompare_callback_deliveries",
                                           "Callback deliveries ended, by outcome: delivered (a 2xx) or "
                                           "failed (gave up after the retry window)", ["outcome"],
                                           registry=self.registry)
        self.liveness_checks = Counter("facecompare_liveness_checks",
                                       "Liveness checks of a target face, by outcome: live, not_live or no_face "
                                       "(never a score)", ["outcome"], registry=self.registry)
        self.liveness_refusals = Counter("facecompare_liveness_refusals",
                                         "Compares answered isMatch false because the workspace requires liveness "
                                         "and the target was not live", registry=self.registry)
        self.callback_retries = Counter("facecompare_callback_retries", "Callback deliveries retried",
                                        registry=self.registry)
        for outcome in ("delivered", "failed"):
            self.callback_deliveries.labels(outcome=outcome)
        for outcome in LIVENESS_OUTCOMES:
            self.liveness_checks.labels(outcome=outcome)

    def stage(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(stage=stage).observe(seconds)

    def batch(self, model: str, rows: int, seconds: float) -> None:
        self.batch_rows.labels(model=model).observe(rows)
        self.stage(model, seconds)

    def waited(self, model: str, seconds: float) -> None:
        self.stage_seconds.labels(stage=f"queue_{model}").observe(seconds)

    def depth(self, model: str, depth: int) -> None:
        self.queue_depth.labels(model=model).set(depth)

    def liveness_checked(self, result: CompareResult) -> None:
        """Count a compare's liveness check, if it had one: its outcome and whether it refused the match."""
        if result.liveness_check is None:
            return
        outcome = "no_face" if result.liveness is None else "live" if result.is_live else "not_live"
        self.liveness_checks.labels(outcome=outcome).inc()
        if outcome == "not_live" and result.liveness_check.required:
            self.liveness_refusals.inc()

    def callback_delivered(self, outcome: str) -> None:
        self.callback_deliveries.labels(outcome=outcome).inc()

    def callback_retry(self) -> None:
        self.callback_retries.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
