"""How many rows one inference takes, per backend: the CPU and the GPU gain from batching differently.

onnxruntime on the CPU gains nothing past a few rows while its arena keeps each batch's peak, so its
batches are capped at 1 MiB of input (one canvas, 6 aligned crops, each crop 6.4 MB of the arena): at 2 MB
(13 crops) eight compares in flight peaked 64-96 MiB higher, at the same answers (docs/PERFORMANCE.md,
"Seventh round: memory").

TensorRT gains from every row, but its profile reserves activation memory for the largest batch, out of the
memory a Jetson shares with the CPU. The smallest board the backend supports is the Jetson Orin Nano 4 GB
(JetPack 5.1.1+; Nano and TX2 stop at JetPack 4, without TensorRT 8.5). A profile's batch is bounded so its
input stays within `TENSORRT_MAX_INPUT_BYTES`: 8 detector canvases of 640x480 (3.7 MB each), 32 of anything
smaller. The activations are about 5x the detector's input (20 MB per canvas in onnxruntime's FP32 arena), so
the detector's profile needs ~160 MB at FP16-FP32, the recognizers' ~200 MB each at 32 crops: under 0.6 GB
for the pipeline, a seventh of the 4 GB board. TensorRT tunes its kernels for the profile's opt batch: the
batch one compare makes (two images, two faces), which is what a kiosk or gate sees nearly always.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ONNXRUNTIME_MAX_BATCH_BYTES = 1 << 20
TENSORRT_MAX_INPUT_BYTES = 30 << 20
TENSORRT_OPT_BATCH = 2


@dataclass(frozen=True)
class BatchLimits:
    """`max_batch` rows at most; `max_batch_bytes` of float32 input at most where set; TensorRT tunes for
    `opt_batch`."""

    max_batch: int
    opt_batch: int
    max_batch_bytes: int | None


def onnxruntime_limits(max_batch: int) -> BatchLimits:
    return BatchLimits(max_batch, max_batch, ONNXRUNTIME_MAX_BATCH_BYTES)


def tensorrt_limits(sample_shapes: dict[str, tuple[int, ...]], max_batch: int) -> BatchLimits:
    """The requested `max_batch`, lowered until the largest sample's batch fits the memory bound."""
    sample_bytes = max(int(np.prod(shape)) * 4 for shape in sample_shapes.values())
    largest = max(1, min(max_batch, TENSORRT_MAX_INPUT_BYTES // sample_bytes))
    return BatchLimits(largest, min(largest, TENSORRT_OPT_BATCH), None)
