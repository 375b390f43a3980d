"""TensorRT on an NVIDIA GPU: engines built from the ONNX graphs, cached on disk, run with pycuda.

Every TensorRT name used here is listed per version in `engine.backends.trt_api`, which a test checks this
file against. Where inputs and outputs live is chosen per device (`engine.backends.gpu_memory`); everything
runs in the device's primary context, the one the CUDA runtime and so TensorRT use, and `close()` releases
it all in order with that context current (`engine.backends.teardown`).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from engine.backends.base import BackendInfo, BackendUnavailable
from engine.backends.engine_cache import EngineCache, EngineKey, Profile, batch_profile
from engine.backends.gpu_memory import choose_strategy
from engine.backends.int8 import require_ranges
from engine.backends.limits import tensorrt_limits
from engine.backends.teardown import release_in_order
from engine.backends.trt_api import check_version, numpy_dtype
from engine.cuda.launch import CudaPreprocessor
from engine.preprocess import ImageInput, tensor_shape
from models import paths
from models.manifest import InputSpec
from models.registry import sha256_of

try:
    import pycuda.driver as cuda
    import tensorrt as trt
except ImportError as exc:
    raise BackendUnavailable(
        f"the TensorRT backend needs tensorrt and pycuda ({exc.name} is missing): on a Jetson use JetPack's "
        "python3-libnvinfer in a venv made with --system-site-packages and build pycuda against JetPack's CUDA; "
        "elsewhere pip install '.[gpu]'. See docs/JETSON.md, or run 'facecompare doctor'."
    ) from exc

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_WORKSPACE_MB = 512


def workspace_bytes() -> int:
    """Builder scratch memory: `$FACECOMPARE_TRT_WORKSPACE_MB`, small enough for a 4 GB Jetson by default."""
    return int(os.environ.get("FACECOMPARE_TRT_WORKSPACE_MB", DEFAULT_WORKSPACE_MB)) * (1 << 20)


CU_CTX_SCHED_BLOCKING_SYNC = 0x04


def _prefer_blocking_sync(ordinal: int) -> None:
    """Wait for the GPU by sleeping, not spinning: a Jetson's few CPU cores decode and serve meanwhile. Set on
    the primary context before it is first used; if TensorRT already made it active the driver keeps its flags."""
    try:
        result = ctypes.CDLL("libcuda.so.1").cuDevicePrimaryCtxSetFlags_v2(ctypes.c_int(ordinal),
                                                                          ctypes.c_uint(CU_CTX_SCHED_BLOCKING_SYNC))
    except (OSError, AttributeError) as exc:
        result = str(exc)
    if result:
        log.info("primary context keeps its scheduling flags (%s)", result)


class CudaDevice:
    """The device's primary context, retained once per process and pushed by whichever thread uses it.

    The primary context is the CUDA runtime's, which TensorRT allocates in: a context of our own would cost a
    second set of per-context memory (shared with the CPU on a Jetson) and leave TensorRT's allocations in a
    context we do not control. It always supports mapped page-locked memory.
    """

    def __init__(self, ordinal: int = 0) -> None:
        cuda.init()
        self.device = cuda.Device(ordinal)
        _prefer_blocking_sync(ordinal)
        self.cuda_context = self.device.retain_primary_context()
        self.name = self.device.name()
        self.compute_capability: tuple[int, int] = tuple(self.device.compute_capability())
        self.sm_count = int(self.device.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT))
        self.integrated = bool(self.device.get_attribute(cuda.device_attribute.INTEGRATED))
        self.memory = choose_strategy(self.integrated, self.compute_capability)

    @contextmanager
    def active(self) -> Iterator[None]:
        self.cuda_context.push()
        try:
            yield
        finally:
            cuda.Context.pop()


@lru_cache(maxsize=1)
def trt_logger() -> Any:
    """One logger per process: TensorRT warns when a second one is passed to a builder or runtime."""
    return trt.Logger(trt.Logger.WARNING)


@lru_cache(maxsize=1)
def cuda_device() -> CudaDevice:
    try:
        return CudaDevice()
    except cuda.Error as exc:
        raise BackendUnavailable(f"no usable CUDA device: {exc}") from exc


def _attach_progress_monitor(config: Any, label: str) -> Any:
    """Report build phases (TensorRT 10+; before, log lines at start and end must do). The monitor returned
    must outlive the build."""
    if not hasattr(trt, "IProgressMonitor"):
        return None

    class Progress(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._steps: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self._steps[phase_name] = num_steps
            log.info("%s: %s (%d steps)", label, phase_name, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            log.debug("%s: %s %d/%d", label, phase_name, step + 1, self._steps.get(phase_name, 0))
            return True

        def phase_finish(self, phase_name: str) -> None:
            log.debug("%s: %s done", label, phase_name)

    monitor = Progress()
    config.progress_monitor = monitor
    return monitor


@contextmanager
def _heartbeat(label: str, start: float, *, enabled: bool, every: float = 30.0) -> Iterator[None]:
    """Without a progress monitor (TensorRT 8.x), a line every `every` seconds shows the build is alive."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(every):
            log.info("%s: still building (%.0f s)", label, time.monotonic() - start)

    thread = threading.Thread(target=beat, daemon=True) if enabled else None
    if thread:
        thread.start()
    try:
        yield
    finally:
        done.set()


def build_plan(onnx_path: Path, *, precision: str, profile_shapes: Profile, timing_cache: Path,
               workspace: int, calibrator: Any = None, label: str = "") -> bytes:
    """Parse the ONNX graph and build a serialized engine; the timing cache is read first and saved after."""
    logger = trt_logger()
    builder = trt.Builder(logger)
    # Explicit batch is a flag before 10, the only mode in 10 (flag ignored) and the flag is gone in 11.
    explicit = check_version(trt.__version__) in ("8.5", "8.6")
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) if explicit else 0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    profile = builder.create_optimization_profile()
    for name, smallest, typical, largest in profile_shapes:
        profile.set_shape(name, smallest, typical, largest)
    config.add_optimization_profile(profile)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        # With Q/DQ nodes the graph carries its scales; without them the calibrator measures them.
        require_ranges(onnx_path, calibrator)
        config.set_flag(trt.BuilderFlag.INT8)
        if calibrator is not None:
            config.int8_calibrator = calibrator
            config.set_calibration_profile(profile)
    config.set_timing_cache(config.create_timing_cache(timing_cache.read_bytes() if timing_cache.exists() else b""),
                            False)
    monitor = _attach_progress_monitor(config, label)
    log.info("%s: building a %s engine; minutes on a Jetson, once (it is cached)", label, precision)
    start = time.monotonic()
    with _heartbeat(label, start, enabled=monitor is None):
        plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"TensorRT could not build {onnx_path.name} ({precision}); see the log above")
    del monitor  # referenced until here: TensorRT calls it during the build
    timing = config.get_timing_cache()
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    timing_cache.write_bytes(bytes(timing.serialize()))
    log.info("%s: built in %.0f s", label, time.monotonic() - start)
    return bytes(plan)


class _Buffer:
    """One tensor's host array and its device address: the same memory when mapped, else a device allocation
    copied to and from page-locked ("pinned") or ordinary ("device") host memory."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, strategy: str) -> None:
        size = int(np.prod(shape))
        if strategy == "mapped":
            self.host = cuda.pagelocked_empty(size, dtype, mem_flags=cuda.host_alloc_flags.DEVICEMAP)
            self.device = None
            self.address = int(self.host.base.get_device_pointer())
        else:
            self.host = cuda.pagelocked_empty(size, dtype) if strategy == "pinned" else np.empty(size, dtype)
            self.device = cuda.mem_alloc(self.host.nbytes)
            self.address = int(self.device)

    def view(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.host[: int(np.prod(shape))].reshape(shape)

    def free(self) -> None:
        if self.device is not None:
            self.device.free()
        if hasattr(self.host.base, "free"):  # page-locked: pycuda's host allocation
            self.host.base.free()


class TensorRTBackend:
    """One engine, one execution context, one CUDA stream; `infer` is serialised by a lock; `close()` frees it.

    `calibration` is the digest of the photos an implicitly calibrated INT8 engine was built from (part of
    its cache key); such an engine is built only by `engines build --implicit`, which passes the calibrator.
    """

    def __init__(self, onnx_path: Path, *, precision: str = "fp16", max_batch: int = 32,
                 sample_shapes: dict[str, tuple[int, ...]] | None = None,
                 min_sample_shapes: dict[str, tuple[int, ...]] | None = None, calibrator: Any = None,
                 calibration: str = "", cache: EngineCache | None = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
        version = trt.__version__
        check_version(version)
        self.gpu = cuda_device()
        shapes = sample_shapes or _onnx_sample_shapes(onnx_path)
        self.limits = tensorrt_limits(shapes, max_batch)
        self.max_batch = self.limits.max_batch
        self.max_batch_bytes = self.limits.max_batch_bytes
        self.info = BackendInfo(name="tensorrt", precision=precision, device=self.gpu.name)
        profile_shapes = batch_profile(shapes, self.max_batch, self.limits.opt_batch, min_sample_shapes)
        cache = cache or EngineCache(paths.engines_dir())
        key = EngineKey(sha256_of(onnx_path), version, self.gpu.name, self.gpu.compute_capability, self.gpu.sm_count,
                        precision, profile_shapes, calibration)
        label = onnx_path.name.split(".")[0]
        with self.gpu.active():
            plan, built = cache.get_or_build(key, label, lambda: build_plan(
                onnx_path, precision=precision, profile_shapes=profile_shapes,
                timing_cache=cache.timing_cache_path(version, self.gpu.name, self.gpu.compute_capability),
                workspace=workspace_bytes(), calibrator=calibrator, label=label))
            if not built:
                log.info("%s: engine from the cache (%s)", label, cache.path(key, label).name)
            self._load(plan, shapes)
        self._lock = threading.Lock()

    def _load(self, plan: bytes, shapes: dict[str, tuple[int, ...]]) -> None:
        self._runtime = trt.Runtime(trt_logger())
        engine = self._runtime.deserialize_cuda_engine(plan)
        if engine is None:
            raise RuntimeError("TensorRT could not load the cached engine; delete it to rebuild")
        context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.input_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if n not in self.input_names]
        for name in self.input_names:
            _set_input_shape(context, name, (self.max_batch, *shapes[name]))
        self._buffers = {
            name: _Buffer(tuple(context.get_tensor_shape(name)), numpy_dtype(engine.get_tensor_dtype(name)),
                          self.gpu.memory)
            for name in names
        }
        for name, buffer in self._buffers.items():
            context.set_tensor_address(name, buffer.address)
        self._engine, self._context = engine, context
        self._preprocessor = CudaPreprocessor(self.gpu.compute_capability)
        self._stream = cuda.Stream()

    def close(self) -> None:
        """Execution context, engine, runtime, buffers, stream: released in that order, the context current."""
        with self._lock:
            release_in_order(self, self.gpu.active)

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One batch; a batch over the profile's maximum (the recognizer's flip doubles it) runs in chunks."""
        size = len(next(iter(inputs.values())))
        if size > self.max_batch:
            parts = [self.infer({name: array[start : start + self.max_batch] for name, array in inputs.items()})
                     for start in range(0, size, self.max_batch)]
            return {name: np.concatenate([part[name] for part in parts]) for name in self.output_names}
        with self._lock, self.gpu.active():
            for name, array in inputs.items():
                buffer = self._buffers[name]
                host = buffer.view(array.shape)
                np.copyto(host, array, casting="same_kind")
                if buffer.device is not None:
                    cuda.memcpy_htod_async(buffer.device, host, self._stream)
            return self._run({name: array.shape for name, array in inputs.items()})

    def infer_images(self, spec: InputSpec, requests: list[ImageInput]) -> dict[str, np.ndarray]:
        """The CUDA kernels write the input straight into the engine's input buffer on its stream: only uint8
        pixels cross to the device, each image once per batch."""
        if len(requests) > self.max_batch:
            parts = [self.infer_images(spec, requests[start : start + self.max_batch])
                     for start in range(0, len(requests), self.max_batch)]
            return {name: np.concatenate([part[name] for part in parts]) for name in self.output_names}
        shape = (len(requests), *tensor_shape(requests[0], spec))
        with self._lock, self.gpu.active():
            self._preprocessor.prepare(spec, requests, self._buffers[spec.name].address, self._stream)
            return self._run({spec.name: shape})

    def _run(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        context = self._context
        for name, shape in shapes.items():
            if shape[0] > self.max_batch:
                raise ValueError(f"batch of {shape[0]} is over max_batch {self.max_batch}")
            _set_input_shape(context, name, shape)
        if not context.execute_async_v3(self._stream.handle):
            raise RuntimeError("TensorRT execution failed")
        outputs = {}
        for name in self.output_names:
            buffer = self._buffers[name]
            outputs[name] = buffer.view(tuple(context.get_tensor_shape(name)))
            if buffer.device is not None:
                cuda.memcpy_dtoh_async(outputs[name], buffer.device, self._stream)
        self._stream.synchronize()
        return {name: array.copy() for name, array in outputs.items()}


def _set_input_shape(context: Any, name: str, shape: tuple[int, ...]) -> None:
    """`set_input_shape` returns False (and only logs) for a shape outside the profile: say which one."""
    if not context.set_input_shape(name, shape):
        raise ValueError(f"input {name} of shape {tuple(shape)} is outside the engine's optimization profile; "
                         "rebuild the engines with the service's max_batch (facecompare engines build --max-batch)")


def _onnx_sample_shapes(onnx_path: Path) -> dict[str, tuple[int, ...]]:
    """Per-sample input shapes from the graph itself; refuses free axes, which a profile must bound."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    shapes = {}
    for graph_input in graph.input:
        if graph_input.name in initializers:
            continue
        dims = graph_input.type.tensor_type.shape.dim[1:]
        if any(not d.dim_value for d in dims):
            raise ValueError(f"{onnx_path.name}: input {graph_input.name} has free axes; pass sample_shapes")
        shapes[graph_input.name] = tuple(d.dim_value for d in dims)
    return shapes
