"""Dynamic batching: callers on many threads share one inference per model, through a bounded queue.

`DynamicBatcher` is itself a `Backend`, wrapped around a real one, so the pipeline and its adapters
do not know it is there. It batches tensors (`infer`) and stage inputs (`infer_images`: uint8 pixels with
their geometry, one row each, batched by output size, so the detector's canvases of one size go together).
One worker thread per model owns the wrapped backend: it takes the oldest waiting request and whatever
compatible requests follow it, up to `max_batch` rows (and, where the backend caps it, `max_batch_bytes` of
input) or until the oldest has waited `max_wait_ms`, runs one inference, and hands each caller its own rows
of the outputs.

Why `callers`: a batch stops waiting as soon as every thread that could join it has. With one compare
in flight, each of the four models would otherwise wait out `max_wait_ms` for nobody: 12 of the 44 ms
of a compare over HTTP (docs/PERFORMANCE.md). And for the same reason a lone caller (nothing
queued, no other compare computing) runs its inference on its own thread: no batch can form, and the two
thread hand-offs per model call cost more than the wait, most on a busy machine. Such runs may overlap (a
compare's two photos worked on at once); ONNX Runtime's sessions run concurrent calls.

Why a cap in bytes, on onnxruntime only (`engine.backends.limits`): on a CPU a batch gains nothing past a
few rows (the recognizer takes 3.0 ms a crop alone, 3.9 ms a crop in a batch of 32), while the memory of one
inference grows with it and the arena keeps its peak: 20 MB per 640x480 detector canvas, 6.4 MB per aligned
crop. 1 MiB of input is one canvas or 6 crops (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from engine.backends.base import Backend
from engine.errors import NotReady
from engine.preprocess import ImageInput, tensor_shape
from models.manifest import InputSpec


class BatchObserver(Protocol):
    """Where the batcher reports what the metrics show; every method is called from the worker or a caller."""

    def batch(self, model: str, rows: int, seconds: float) -> None: ...

    def waited(self, model: str, seconds: float) -> None: ...

    def depth(self, model: str, depth: int) -> None: ...


@dataclass(frozen=True)
class _Images:
    """Stage inputs for one model: `infer_images`'s arguments, batched as rows."""

    spec: InputSpec
    requests: list[ImageInput]


Inputs = dict[str, np.ndarray] | _Images


@dataclass(eq=False)
class _Request:
    """One caller's call. Compared by identity: the queue removes a follower from anywhere in it, and comparing
    two requests by value would compare their pixels (and raise, killing the worker, for arrays)."""

    inputs: Inputs
    rows: int
    signature: tuple
    enqueued: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    error: BaseException | None = None


def _signature(inputs: Inputs) -> tuple:
    """Requests batch together only when every input matches in name, dtype and per-row shape."""
    if isinstance(inputs, _Images):
        shapes = {(type(r).__name__, tensor_shape(r, inputs.spec)) for r in inputs.requests}
        if len(shapes) != 1:
            raise ValueError(f"stage inputs of one call must share kind and size: {sorted(shapes)}")
        return (inputs.spec.name, *shapes.pop())
    return tuple(sorted((name, array.dtype.str, array.shape[1:]) for name, array in inputs.items()))


def _row_bytes(inputs: Inputs) -> int:
    """Bytes of model input per row: float32 for stage inputs, which the backend turns into tensors."""
    if isinstance(inputs, _Images):
        return int(np.prod(tensor_shape(inputs.requests[0], inputs.spec))) * 4
    return sum(array[:1].nbytes for array in inputs.values())


def _join(parts: list[Inputs]) -> Inputs:
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], _Images):
        return _Images(parts[0].spec, [r for part in parts for r in part.requests])
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _slice(inputs: Inputs, start: int, stop: int) -> Inputs:
    if isinstance(inputs, _Images):
        return _Images(inputs.spec, inputs.requests[start:stop])
    return {k: v[start:stop] for k, v in inputs.items()}


def _rows(inputs: Inputs) -> int:
    if isinstance(inputs, _Images):
        return len(inputs.requests)
    counts = {array.shape[0] for array in inputs.values()}
    if len(counts) != 1:
        raise ValueError(f"inputs disagree on the batch size: {sorted(counts)}")
    return counts.pop()


class DynamicBatcher:
    """A `Backend` that batches concurrent `infer` calls into one call of the backend it wraps."""

    def __init__(self, backend: Backend, *, name: str, max_batch: int | None = None, max_wait_ms: float = 2.0,
                 queue_size: int = 64, observer: BatchObserver | None = None, retry_after: int = 1,
                 max_batch_bytes: int | None = None, callers: Callable[[], int] | None = None) -> None:
        self.backend = backend
        self.name = name
        self.info = backend.info
        self.input_names = backend.input_names
        self.output_names = backend.output_names
        self.max_batch = min(max_batch or backend.max_batch, backend.max_batch)
        self.max_batch_bytes = backend.max_batch_bytes if max_batch_bytes is None else max_batch_bytes
        self.max_wait = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self.callers = callers
        self.retry_after = retry_after
        self._observer = observer
        self._queue: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._closed = False
        # Inferences running, on the worker or on lone callers' threads. A compare working on its two photos at
        # once (engine/pipeline.py) is one caller on two threads: both of its calls run at once, not in turn.
        self._running = 0
        self._thread = threading.Thread(target=self._work, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Requests waiting, not counting the batch being run."""
        return len(self._queue)

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Queue the caller's batch and block until its outputs are back; NotReady when the queue is full."""
        return self._submit(inputs)

    def infer_images(self, spec: InputSpec, requests: list[ImageInput]) -> dict[str, np.ndarray]:
        return self._submit(_Images(spec, requests))

    def _submit(self, inputs: Inputs) -> dict[str, np.ndarray]:
        request = _Request(inputs=inputs, rows=_rows(inputs), signature=_signature(inputs))
        with self._cond:
            if self._closed:
                raise NotReady("shutting down", retry_after=self.retry_after)
            if len(self._queue) >= self.queue_size:
                raise NotReady("inference queue is full", retry_after=self.retry_after)
            alone = not self._queue and self._everyone_joined(1)
            if alone:
                self._running += 1
            else:
                self._queue.append(request)
                self._cond.notify_all()
            self._report_depth()
        if alone:
            try:
                self._run_batch([request])
            finally:
                self._release()
        else:
            request.done.wait()
        if request.error is not None:
            raise request.error
        return request.outputs

    def close(self) -> None:
        """Refuse new requests, finish the queued ones, stop the worker, then close the backend it wraps."""
        with self._cond:
            already, self._closed = self._closed, True
            self._cond.notify_all()
        self._thread.join()
        if not already:
            self.backend.close()

    def _row_limit(self, inputs: Inputs) -> int:
        """Rows per inference for inputs shaped like these: `max_batch`, fewer if their bytes would pass the cap."""
        if self.max_batch_bytes is None:
            return self.max_batch
        return max(1, min(self.max_batch, self.max_batch_bytes // max(1, _row_bytes(inputs))))

    def _report_depth(self) -> None:
        if self._observer is not None:
            self._observer.depth(self.name, len(self._queue))

    def _everyone_joined(self, requests: int) -> bool:
        """No one else can join: each caller has at most one request here, and all that could are in."""
        return self.callers is not None and requests >= self.callers()

    def _release(self) -> None:
        """A lone caller's run is over: the worker may take what queued meanwhile. With nothing queued (and not
        closing) the worker has nothing to do, so it is not woken: waking it for nothing cost two thread
        switches per model call, 4% of the server's samples at concurrency 1 (docs/PERFORMANCE.md)."""
        with self._cond:
            self._running -= 1
            if self._queue or self._closed:
                self._cond.notify_all()

    def _take(self) -> list[_Request]:
        """The next batch: the oldest request, then the compatible ones queued after it (another canvas size
        waits for its own batch) until full, or out of time."""
        with self._cond:
            while (not self._queue or self._running) and not (self._closed and not self._running):
                self._cond.wait()
            if not self._queue:
                return []
            self._running += 1
            batch = [self._queue.popleft()]
            rows = batch[0].rows
            limit = self._row_limit(batch[0].inputs)
            deadline = batch[0].enqueued + self.max_wait
            while rows < limit:
                follower = next((r for r in self._queue if r.signature == batch[0].signature), None)
                if follower is not None:
                    if rows + follower.rows > limit:
                        break
                    self._queue.remove(follower)
                    batch.append(follower)
                    rows += follower.rows
                    continue
                remaining = deadline - time.monotonic()
                # Each caller has at most one request in the batch or the queue: with all of them in, none can join.
                if remaining <= 0 or self._closed or self._everyone_joined(len(batch) + len(self._queue)):
                    break
                self._cond.wait(remaining)
            self._report_depth()
            return batch

    def _work(self) -> None:
        while batch := self._take():
            self._run_batch(batch)
            with self._cond:
                self._running -= 1
            for request in batch:
                request.done.set()

    def _run_batch(self, batch: list[_Request]) -> None:
        """One inference for the batch; each request gets its rows of the outputs or the error."""
        started = time.monotonic()
        if self._observer is not None:
            for request in batch:
                self._observer.waited(self.name, started - request.enqueued)
        try:
            outputs = self._run([r.inputs for r in batch])
        except Exception as exc:  # handed to every caller, who raises it in its own thread
            for request in batch:
                request.error = exc
        else:
            offset = 0
            for request in batch:
                request.outputs = {k: v[offset: offset + request.rows] for k, v in outputs.items()}
                offset += request.rows
        if self._observer is not None:
            self._observer.batch(self.name, sum(r.rows for r in batch), time.monotonic() - started)

    def _run(self, parts: list[Inputs]) -> dict[str, np.ndarray]:
        """One inference for several callers; a single caller over the row limit runs in chunks."""
        inputs = _join(parts)
        rows, limit = _rows(inputs), self._row_limit(inputs)
        chunks = [self._call(_slice(inputs, i, i + limit)) for i in range(0, rows, limit)]
        return chunks[0] if len(chunks) == 1 else {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}

    def _call(self, inputs: Inputs) -> dict[str, np.ndarray]:
        if isinstance(inputs, _Images):
            return self.backend.infer_images(inputs.spec, inputs.requests)
        return self.backend.infer(inputs)
