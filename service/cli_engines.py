"""`facecompare engines build` and `facecompare doctor`: build TensorRT engines ahead of serving (first builds
take minutes on a Jetson), and say what the GPU path has, lacks, and how to fix it."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from engine.backends.base import BackendUnavailable
from engine.backends.int8 import CALIBRATION_METHODS, CALIBRATOR_METHOD, DEFAULT_METHOD
from models.manifest import ModelSpec


def _calibration(args: argparse.Namespace) -> tuple[Any, str] | None:
    """The calibration set from --calibration DIR, made once for every model, and the digest of its photos."""
    from calibration.build import calibration_set
    from calibration.dataset import photo_paths
    from engine.backends.int8 import photos_digest

    photos = photo_paths(Path(args.calibration))
    if not photos:
        print(f"no photos (jpg, png, bmp) under {args.calibration}")
        return None
    calibration = calibration_set(photos, max_detector=args.photos, max_faces=args.faces)
    print(f"calibration set from {len(photos)} photos: {calibration.counts()}")
    return calibration, photos_digest(photos, args.photos, args.faces)


def _engines_build(args: argparse.Namespace) -> int:
    """One route per request (docs/INT8.md): fp16; int8 from Q/DQ models; int8 by TensorRT's calibrator."""
    from engine.backends.int8 import Int8Route, Int8Unavailable, read_route, write_route
    from engine.backends.trt_api import UnsupportedTensorRT
    from engine.pipeline import input_bounds
    from models import paths
    from models.manifest import load_manifest
    from models.store import prepared_models

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.workspace_mb:
        os.environ["FACECOMPARE_TRT_WORKSPACE_MB"] = str(args.workspace_mb)
    if args.implicit and (args.precision != "int8" or args.onnx_only):
        print("--implicit is TensorRT's INT8 calibrator: it needs --precision int8 and builds engines")
        return 2
    if args.method and not (args.precision == "int8" and args.calibration):
        print("--method is how INT8 ranges are calibrated: it needs --precision int8 and --calibration DIR")
        return 2
    if args.implicit and args.method not in (None, CALIBRATOR_METHOD):
        print(f"--implicit calibrates with TensorRT's {CALIBRATOR_METHOD} calibrator: --method {args.method} is "
              "for the Q/DQ models (drop --implicit)")
        return 2
    manifest, models = load_manifest(), prepared_models()
    specs = manifest.pipeline_models()
    implicit = args.precision == "int8" and args.implicit
    backend = None
    if implicit or not args.onnx_only:
        try:
            from engine.backends import tensorrt as backend
        except BackendUnavailable as exc:
            print(f"TensorRT engines not built: {exc}")
            return 1
    calibration, route = None, read_route(paths.calibration_dir())
    if args.precision == "int8" and args.calibration:
        made = _calibration(args)
        if made is None:
            return 2
        calibration, digest = made
        route = Int8Route("calibrator", digest, CALIBRATOR_METHOD) if implicit else \
            Int8Route("qdq", digest, args.method or DEFAULT_METHOD)
        if not implicit:
            from calibration.build import write_qdq_models

            print(f"calibration method: {route.method}")
            for name, path in write_qdq_models(calibration, digest, method=route.method).items():
                print(f"{name}: {path}")
    elif implicit and route.name != "calibrator":
        print("--implicit needs --calibration DIR (a folder of photos with faces, a few hundred)")
        return 2
    if args.onnx_only:
        return 0
    try:
        for spec in specs:
            model = models[spec.name]
            onnx_path = model.prepared if args.precision != "int8" or implicit else model.quantized
            if args.precision == "int8" and not implicit and not onnx_path.exists():
                raise Int8Unavailable(f"{spec.name}: no Q/DQ model at {onnx_path}; add --calibration DIR "
                                      "(a folder of photos with faces, a few hundred)")
            calibrator = _calibrator(spec, onnx_path, backend, route, calibration, args.max_batch) if implicit \
                else None
            engine = backend.TensorRTBackend(onnx_path, precision=args.precision, max_batch=args.max_batch,
                                             calibrator=calibrator, calibration=route.calibration if implicit else "",
                                             **input_bounds(spec))
            print(f"{spec.name}: {args.precision} engine ready on {engine.info.device} (batch up to "
                  f"{engine.max_batch}, tuned for {engine.limits.opt_batch})")
            engine.close()
    except (UnsupportedTensorRT, Int8Unavailable) as exc:
        print(f"TensorRT engines not built: {exc}")
        return 1
    if implicit:
        write_route(paths.calibration_dir(), route)
    return 0


def _calibrator(spec: ModelSpec, onnx_path: Path, backend: Any, route: Any, calibration: Any, max_batch: int
                ) -> Any:
    """TensorRT's entropy calibrator (8.x/10.x) on the calibration set, fed at the profile's opt batch (where
    TensorRT calibrates); its cache is named after the model, TensorRT version and calibration digest."""
    from calibration.naming import calibration_cache_name
    from calibration.trt_calibrator import entropy_calibrator
    from engine.backends.int8 import Int8Unavailable
    from engine.backends.limits import tensorrt_limits
    from engine.pipeline import input_bounds
    from models import paths
    from models.registry import sha256_of

    trt_version = backend.trt.__version__
    cache = paths.calibration_dir() / calibration_cache_name(spec.name, sha256_of(onnx_path), trt_version,
                                                             route.calibration)
    if calibration is None and not cache.exists():
        raise Int8Unavailable(f"no calibration cache at {cache}: run 'facecompare engines build --precision int8 "
                              "--implicit --calibration DIR'")
    batch = tensorrt_limits(input_bounds(spec)["sample_shapes"], max_batch).opt_batch
    batches = calibration.batches(spec.name, spec.input, batch) if calibration is not None else iter(())
    return entropy_calibrator(batches, batch, cache)


def _doctor(args: argparse.Namespace) -> int:
    if args.self_test:
        from service.self_test import main

        return main(args.json)
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
    build.add_argument("--calibration", metavar="DIR",
                       help="photos to calibrate INT8 with (writes the Q/DQ models, or with --implicit the "
                       "calibrator's cache)")
    build.add_argument("--implicit", action="store_true",
                       help="INT8 by TensorRT's entropy calibrator instead of Q/DQ models (TensorRT 8.x/10.x); "
                       "no Q/DQ models are written")
    build.add_argument("--method", choices=CALIBRATION_METHODS,
                       help=f"how the Q/DQ models' INT8 ranges are calibrated from --calibration's photos (default "
                       f"{DEFAULT_METHOD}; recorded with the route; --implicit is always {CALIBRATOR_METHOD})")
    build.add_argument("--onnx-only", action="store_true", help="write the INT8 Q/DQ models, build no engine")
    build.add_argument("--max-batch", type=int, default=32, help="largest batch the engines accept")
    build.add_argument("--workspace-mb", type=int, default=None, help="builder scratch memory (default 512)")
    build.add_argument("--photos", type=int, default=300, help="calibration photos for the detector")
    build.add_argument("--faces", type=int, default=1500, help="calibration faces for landmarks and recognizer")
    build.set_defaults(handler=_engines_build)
    doctor = commands.add_parser("doctor", help="GPU, driver, CUDA, TensorRT, pycuda, engine cache: what is missing")
    doctor.add_argument("--self-test", action="store_true",
                        help="run the GPU path here: kernels, memory strategies, engines vs onnxruntime, timings")
    doctor.add_argument("--json", action="store_true", help="with --self-test: the last line is one JSON object")
    doctor.set_defaults(handler=_doctor)
