"""File names of INT8 artefacts: a cache is only valid for the model bytes and TensorRT version it came from."""

from __future__ import annotations

import re


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-")


def calibration_cache_name(model_name: str, model_sha256: str, trt_version: str) -> str:
    """TensorRT's calibration cache for one model: `fr_feature-87aacdfe5751-trt10.3.0.calib`.

    TensorRT rejects (or worse, misreads) a cache written by another version or for other weights, so both
    are in the name and a mismatch is simply a miss.
    """
    if not re.fullmatch(r"[0-9a-f]{64}", model_sha256):
        raise ValueError(f"not a sha256: {model_sha256!r}")
    return f"{_slug(model_name)}-{model_sha256[:12]}-trt{_slug(trt_version)}.calib"
