"""Calibrate and write the Q/DQ graph of every pipeline model: the one step both INT8 routes start from."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from calibration.dataset import CalibrationSet, build_calibration_set
from calibration.qdq import BlobReader, quantize
from engine.backends.int8 import DEFAULT_METHOD, Int8Route, write_route
from engine.pipeline import FacePipeline
from models import paths


def calibration_set(paths: list[Path], *, max_detector: int = 300, max_faces: int = 1500) -> CalibrationSet:
    """Calibration inputs made by the FP32 pipeline, whatever precision the caller will run."""
    return build_calibration_set(paths, FacePipeline(), max_detector=max_detector, max_faces=max_faces)


def write_qdq_models(calibration: CalibrationSet, digest: str, *, method: str = DEFAULT_METHOD,
                     roles: Collection[str] | None = None) -> dict[str, Path]:
    """Quantize each model the pipeline uses (or those in `roles` only: a benchmark of `int8-mixed` needs the
    detector and the landmarks) with calibration `method` and record the Q/DQ route with the calibration
    photos' `digest` and the method (`engine.backends.int8`); returns model name -> Q/DQ file."""
    pipeline = FacePipeline()
    written = {}
    roles_of = pipeline.manifest.pipeline.roles()
    for spec in pipeline.manifest.pipeline_models():
        if roles is not None and roles_of[spec.name] not in roles:
            continue
        if not calibration.images.get(spec.name):
            raise ValueError(f"no calibration data for {spec.name}: the photos held no detectable face")
        model = pipeline.models[spec.name]
        reader = BlobReader(spec.input.name, calibration.images[spec.name], spec.input)
        written[spec.name] = quantize(model.prepared, model.quantized, reader, method=method)
    write_route(paths.calibration_dir(), Int8Route("qdq", digest, method))
    return written
