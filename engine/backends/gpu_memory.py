"""Where an engine's inputs and outputs live, chosen per device (CUDA for Tegra application note, "Memory
Management" and "Memory Selection").

- "mapped" (zero copy): page-locked host memory mapped into the GPU, no copy at all. On a Jetson with I/O
  coherency (Xavier and Orin: compute capability 7.2 and later) pinned memory stays cached for the CPU and the
  GPU reads it coherently, so this is the note's choice there for buffers both sides touch once per inference.
- "device": device buffers, copied from and to ordinary (pageable, CPU-cached) host arrays. On a Jetson
  without I/O coherency (TX2, Nano) pinned memory is not cached for the CPU, so the CPU's work on mapped or
  pinned buffers is slow: the note advises device memory there.
- "pinned": device buffers with page-locked host staging, for a discrete GPU, whose memory is across PCIe:
  page-locked staging makes the copies asynchronous on the engine's stream.
`FACECOMPARE_GPU_MEMORY` overrides the choice; `facecompare doctor --self-test` times all three.
"""

from __future__ import annotations

import os

STRATEGIES = ("mapped", "device", "pinned")
IO_COHERENT_FROM = (7, 2)  # Xavier (sm_72) and Orin (sm_87); TX2 (sm_62) and Nano (sm_53) are not


def choose_strategy(integrated: bool, compute_capability: tuple[int, int], override: str | None = None) -> str:
    """The memory strategy for a device; `override` (default `$FACECOMPARE_GPU_MEMORY`) wins when set."""
    override = override if override is not None else os.environ.get("FACECOMPARE_GPU_MEMORY", "")
    if override:
        if override not in STRATEGIES:
            raise ValueError(f"FACECOMPARE_GPU_MEMORY={override!r}: use one of {', '.join(STRATEGIES)}")
        return override
    if not integrated:
        return "pinned"
    return "mapped" if tuple(compute_capability) >= IO_COHERENT_FROM else "device"
