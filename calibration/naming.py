"""File names of INT8 artefacts: a cache is only valid for the model bytes, TensorRT version and photos it came from."""

from __future__ import annotations

import re


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-")


def _check_sha256(text: str) -> None:
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise ValueError(f"not a sha256: {text!r}")


def calibration_cache_name(model_name: str, model_sha256: str, trt_version: str, calibration: str) -> str:
    """TensorRT's calibration cache for one model: `fr_feature-87aacdfe5751-trt10.3.0-c1f2e3d4a5b6.calib`.

    TensorRT rejects (or worse, misreads) a cache written by another version or for other weights, and a cache
    from other photos would silently win over new ones: all three are in the name, a mismatch is a miss.
    `calibration` is the digest of the calibration photos (`engine.backends.int8.photos_digest`).
    """
    _check_sha256(model_sha256)
    _check_sha256(calibration)
    return f"{_slug(model_name)}-{model_sha256[:12]}-trt{_slug(trt_version)}-{calibration[:12]}.calib"
