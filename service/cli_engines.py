"""`facecompare engines build` and `facecompare doctor`: build TensorRT engines ahead of serving (first builds
take minutes on a Jetson), and say what the GPU path has, lacks, and how to fix it."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from engine.backends.base import BackendUnavailable
from models.manifest import ModelSpec


def _quantize(folder: Path, photos: int, faces: int) -> int:
    from calibration.build import calibration_set, write_qdq_models
    from calibration.dataset import photo_paths

    paths = photo_paths(folder)
    if not paths:
        print(f"no photos (jpg, png, bmp) under {folder}")
        return 2
    calibration = calibration_set(paths, max_detector=photos, max_faces=faces)
    print(f"calibration set from {len(paths)} photos: {calibration.counts()}")
    for name, path in write_qdq_models(calibration).items():
        print(f"{name}: {path}")
    return 0


def _engines_build(args: argparse.Namespace) -> int:
    from engine.pipeline import input_bounds
    from models.manifest import load_manifest
    from models.store import prepared_models

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.workspace_mb:
        os.environ["FACECOMPARE_TRT_WORKSPACE_MB"] = str(args.workspace_mb)
    manifest, models = load_manifest(), prepared_models()
    specs = manifest.pipeline_models()
    int8 = args.precision == "int8"
    if int8 and args.calibration:
        status = _quantize(Path(args.calibration), args.photos, args.faces)
        if status:
            return status
    if int8 and not args.implicit and not all(models[s.name].quantized.exists() for s in specs):
        print("INT8 needs calibration: add --calibration DIR (a folder of photos with faces, a few hundred)")
        return 2
    if args.onnx_only:
        return 0
    try:
        from engine.backends import tensorrt as backend
    except BackendUnavailable as exc:
        print(f"TensorRT engines not built: {exc}")
        return 1
    for spec in specs:
        model = models[spec.name]
        onnx_path = model.quantized if int8 and not args.implicit else model.prepared
        calibrator = _calibrator(args, spec, onnx_path, backend.trt.__version__) if int8 and args.implicit else None
        engine = backend.TensorRTBackend(onnx_path, precision=args.precision, max_batch=args.max_batch,
                                         calibrator=calibrator, **input_bounds(spec))
        print(f"{spec.name}: {args.precision} engine ready on {engine.info.device}")
    return 0


def _calibrator(args: argparse.Namespace, spec: ModelSpec, onnx_path: Path, trt_version: str) -> Any:
    """The implicit route: TensorRT's entropy calibrator on the same calibration set (TensorRT 8.x/10.x)."""
    from calibration.build import calibration_set
    from calibration.dataset import photo_paths
    from calibration.naming import calibration_cache_name
    from calibration.trt_calibrator import entropy_calibrator
    from models import paths
    from models.registry import sha256_of

    cache = paths.calibration_dir() / calibration_cache_name(spec.name, sha256_of(onnx_path), trt_version)
    if not args.calibration and not cache.exists():
        raise SystemExit(f"--implicit needs --calibration DIR (no calibration cache yet at {cache})")
    calibration = calibration_set(photo_paths(Path(args.calibration)), max_detector=args.photos,
                                  max_faces=args.faces) if args.calibration else None
    batches = calibration.batches(spec.name, spec.input, args.max_batch) if calibration else iter(())
    return entropy_calibrator(batches, args.max_batch, cache)


def _doctor(args: argparse.Namespace) -> int:
    from engine.doctor import findings

    report = findings()
    width = max(len(f.what) for f in report)
    for finding in report:
        print(f"{finding.what:<{width}}  {finding.value}")
    fixes = [f for f in report if f.fix]
    if fixes:
        print("\nmissing, and the fix:")
        for finding in fixes:
            print(f"- {finding.what}: {finding.fix}")
    ready = any(f.what == "TensorRT backend" and f.value == "ready" for f in report)
    print("\nTensorRT backend: ready" if ready else
          "\nTensorRT backend: NOT available here (no usable NVIDIA GPU stack); the onnxruntime CPU backend works")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    engines = commands.add_parser("engines", help="TensorRT engines and INT8 models").add_subparsers(
        dest="engines_command", required=True)
    build = engines.add_parser("build", help="build (or find cached) TensorRT engines for the pipeline's models")
    build.add_argument("--precision", choices=["fp16", "int8"], default="fp16")
    build.add_argument("--calibration", metavar="DIR", help="photos to calibrate INT8 with (writes the Q/DQ models)")
    build.add_argument("--implicit", action="store_true",
                       help="INT8 by TensorRT's entropy calibrator instead of the Q/DQ models (TensorRT 8.x/10.x)")
    build.add_argument("--onnx-only", action="store_true", help="write the INT8 Q/DQ models, build no engine")
    build.add_argument("--max-batch", type=int, default=32, help="largest batch the engines accept")
    build.add_argument("--workspace-mb", type=int, default=None, help="builder scratch memory (default 512)")
    build.add_argument("--photos", type=int, default=300, help="calibration photos for the detector")
    build.add_argument("--faces", type=int, default=1500, help="calibration faces for landmarks and recognizer")
    build.set_defaults(handler=_engines_build)
    doctor = commands.add_parser("doctor", help="GPU, driver, CUDA, TensorRT, pycuda, engine cache: what is missing")
    doctor.set_defaults(handler=_doctor)
