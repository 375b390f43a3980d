"""ONNX Runtime on the CPU: the default backend and the reference every other one is compared with."""

from __future__ import annotations

from contextlib import nullcontext
from functools import cache
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from engine.backends.base import BackendInfo
from engine.backends.denormals import denormals_as_zero
from engine.backends.limits import onnxruntime_limits
from engine.preprocess import ImageInput, cpu_blob
from models.manifest import InputSpec
from models.surgery import flush_denormals, unfold_prelu

# Measured per model on this hardware (docs/PERFORMANCE.md): "all" beats "basic" for every model we run,
# 2.9x for the detector, 3.3x for the recognizers once their PRelu is unfolded.
OPTIMISATION = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


@cache
def shared_cpu_arena() -> None:
    """One CPU arena for every session of the process, not one per session.

    Why: each session's arena keeps the largest working set its model ever had, and the four models' peaks
    added up: with four compares in flight the arenas held 281 MiB of mappings against 33 after the warm-up,
    grown in doublings. One arena serves the models in turn from the same memory (129 MiB at four in flight).
    Extending by the request instead of by doubling (kSameAsRequested) held more, not less: many regions of
    exact sizes, none reusable for a larger request (docs/PERFORMANCE.md, "Seventh round: memory").
    Registered once per process, before the first session.
    """
    memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(memory, ort.OrtArenaCfg({}))


def session_options(threads: int, optimisation: str = "all", spin: bool = False,
                    zero_denormals: bool = True) -> ort.SessionOptions:
    """Explicit threads, no spin-waiting, no per-shape memory plans, one arena for all sessions
    (`shared_cpu_arena`): several models' pools, the compare threads and other processes share a few cores,
    and a pool spinning for work only takes the cores from them.
    `zero_denormals` sets DAZ/FTZ on the intra-op pool's threads (the caller's: `denormals_as_zero`)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = OPTIMISATION[optimisation]
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.add_session_config_entry("session.set_denormal_as_zero", "1" if zero_denormals else "0")
    options.log_severity_level = 3
    # A memory pattern is planned and kept per input shape; the detector's canvas fits each image, so its
    # shapes vary and the kept plans raised peak RSS by 60 MB or more at no gain in speed (docs/PERFORMANCE.md).
    options.enable_mem_pattern = False
    shared_cpu_arena()
    options.add_session_config_entry("session.use_env_allocators", "1")
    return options


class OnnxRuntimeBackend:
    """One InferenceSession per model, created once; ORT sessions are safe to run from several threads.

    `optimisation`, `unfold`, `spin`, `flush` (denormal weights) and `zero_denormals` (denormal activations)
    are the measured best by default; the benchmarks set them to compare.
    """

    def __init__(self, onnx_path: Path, *, precision: str = "fp32", max_batch: int = 32, threads: int = 0,
                 optimisation: str = "all", unfold: bool = True, spin: bool = False, flush: bool = True,
                 zero_denormals: bool = True) -> None:
        model = onnx.load(str(onnx_path))
        if unfold:
            unfold_prelu(model)
        if flush:
            flush_denormals(model)
        self.zero_denormals = zero_denormals
        options = session_options(threads, optimisation, spin, zero_denormals)
        # The process's first session sets its option's flags on the thread creating it, for good: put them back.
        with denormals_as_zero():
            self._session = ort.InferenceSession(model.SerializeToString(), options,
                                                 providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self._session.get_inputs()]
        self.output_names = [o.name for o in self._session.get_outputs()]
        limits = onnxruntime_limits(max_batch)
        self.max_batch = limits.max_batch
        self.max_batch_bytes = limits.max_batch_bytes
        self.info = BackendInfo(name="onnxruntime", precision=precision, device="cpu")

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._session is None:
            raise RuntimeError("the model was closed")
        with denormals_as_zero() if self.zero_denormals else nullcontext():
            outputs = self._session.run(self.output_names, inputs)
        return dict(zip(self.output_names, outputs, strict=True))

    def infer_images(self, spec: InputSpec, requests: list[ImageInput]) -> dict[str, np.ndarray]:
        """The input made with OpenCV (`engine.preprocess.cpu_blob`)."""
        return self.infer({spec.name: cpu_blob(spec, requests)})

    def close(self) -> None:
        self._session = None
