"""ONNX Runtime on the CPU: the default backend and the reference every other one is compared with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from engine.backends.base import BackendInfo


class OnnxRuntimeBackend:
    """One InferenceSession per model, created once; ORT sessions are safe to run from several threads."""

    def __init__(self, onnx_path: Path, *, precision: str = "fp32", max_batch: int = 32, threads: int = 0) -> None:
        options = ort.SessionOptions()
        # Q/DQ pairs become integer kernels only at the extended level; below it INT8 is float maths in disguise.
        options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED if precision == "int8"
                                            else ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self._session.get_inputs()]
        self.output_names = [o.name for o in self._session.get_outputs()]
        self.max_batch = max_batch
        self.info = BackendInfo(name="onnxruntime", precision=precision, device="cpu")

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._session.run(self.output_names, inputs)
        return dict(zip(self.output_names, outputs, strict=True))
