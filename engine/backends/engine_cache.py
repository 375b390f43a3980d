"""The engine cache: plans on disk under a key of everything that makes an engine invalid elsewhere.

An engine only runs on the GPU model and TensorRT version that built it, for the exact ONNX bytes, precision,
shape profile and calibration; all of them are in the key, so a change is a miss and a rebuild, never a wrong engine.
Plain Python: no TensorRT needed to compute keys, list or fill the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

Shape = tuple[int, ...]
# (input name, min, opt, max) per input.
Profile = tuple[tuple[str, Shape, Shape, Shape], ...]


def batch_profile(sample_shapes: dict[str, Shape], max_batch: int, opt_batch: int | None = None,
                  min_sample_shapes: dict[str, Shape] | None = None) -> Profile:
    """Batch 1..max_batch for every input; the other axes from the input's smallest sample (`min_sample_shapes`,
    default: fixed) to its largest; TensorRT tunes its kernels for `opt_batch` of the largest."""
    if max_batch < 1:
        raise ValueError("max_batch must be at least 1")
    opt = min(max_batch, opt_batch or max_batch)
    smallest = min_sample_shapes or {}
    return tuple(
        (name, (1, *smallest.get(name, shape)), (opt, *shape), (max_batch, *shape))
        for name, shape in sorted(sample_shapes.items())
    )


@dataclass(frozen=True)
class EngineKey:
    onnx_sha256: str
    trt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]
    # Every Orin module reports the name "Orin": the SM count tells an Orin Nano from an AGX Orin.
    sm_count: int
    precision: str
    profile: Profile
    # The digest of the photos an implicitly calibrated INT8 engine measured its ranges on ("" otherwise: a
    # Q/DQ graph's ranges are in its bytes, hence in `onnx_sha256`).
    calibration: str = ""

    def digest(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def file_name(self, model: str) -> str:
        return f"{_slug(model)}-{self.precision}-{self.digest()[:16]}.engine"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-")


class EngineCache:
    """`<root>/<model>-<precision>-<digest>.engine` with a `.json` beside it saying what the key was."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: EngineKey, model: str) -> Path:
        return self.root / key.file_name(model)

    def load(self, key: EngineKey, model: str) -> bytes | None:
        path = self.path(key, model)
        return path.read_bytes() if path.exists() else None

    def store(self, key: EngineKey, model: str, plan: bytes) -> Path:
        """Written to a temporary name and renamed, so a crash mid-write never leaves a truncated engine."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path(key, model)
        for target, data in ((path.with_suffix(".json"), json.dumps({"model": model, **asdict(key)}, indent=1)
                              .encode()), (path, plan)):
            partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
            partial.write_bytes(data)
            partial.replace(target)
        return path

    def get_or_build(self, key: EngineKey, model: str, build: Callable[[], bytes]) -> tuple[bytes, bool]:
        """The cached plan, or a newly built and stored one; the flag says whether it was built now."""
        plan = self.load(key, model)
        if plan is not None:
            return plan, False
        plan = build()
        self.store(key, model, plan)
        return plan, True

    def entries(self) -> list[dict]:
        """What the cache holds, from the sidecars: for `facecompare doctor`."""
        found = []
        for sidecar in sorted(self.root.glob("*.json")):
            engine = sidecar.with_suffix(".engine")
            if engine.exists():
                found.append({**json.loads(sidecar.read_text()), "file": engine.name, "bytes": engine.stat().st_size})
        return found

    def timing_cache_path(self, trt_version: str, gpu_name: str, compute_capability: tuple[int, int]) -> Path:
        """One timing cache per GPU model and TensorRT version, shared by every model built there."""
        major, minor = compute_capability
        return self.root / f"timing-trt{_slug(trt_version)}-{_slug(gpu_name)}-sm{major}{minor}.cache"
