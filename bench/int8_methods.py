"""Which calibration method the INT8 Q/DQ models are made with: chosen on DevTrain, DevTest read afterwards.

    FACECOMPARE_HOME=SCRATCH python -m bench.int8_methods --lfw ../shared/data/lfw-dev --method M >> FILE
    python -m bench.int8_methods --choose FILE

The first form, once per method, each in its own scratch FACECOMPARE_HOME (a copy of `models/`, so no Q/DQ
model or route is left in the real cache): calibrates with method M on the DevTrain photos
(`calibration.parity --calibrate`; for int8-mixed the detector and the landmarks only, the models it
loads in INT8), embeds every DevTrain and DevTest photo with `--precision` (int8-mixed by
default) and prints one JSON line: DevTrain figures (10-fold, errors at its own threshold, photos without a
face) and DevTest figures (`bench.accuracy --pairs DevTest --train DevTrain`, the same photos embedded).
`--choose` applies `choose` to the DevTrain figures only and prints the chosen method's line last.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.accuracy import evaluate, photos_of, read_pairs
from bench.embeddings import embed_paths
from bench.profile import bench_config
from calibration.parity import calibrate_on_devtrain
from engine.backends.int8 import CALIBRATION_METHODS, DEFAULT_METHOD
from engine.pipeline import MIXED_INT8, FacePipeline

# The stages `int8-mixed` runs in INT8 (engine.pipeline): only their Q/DQ models are calibrated for it.
MIXED_INT8_ROLES = ("detector", "landmarks")


def choose(devtrain: dict[str, dict]) -> str:
    """The rule, fixed before any method was measured: fewest DevTrain 10-fold errors, then fewest DevTrain
    photos without a face, then fewest DevTrain errors at the DevTrain threshold, then the current default,
    then the order of CALIBRATION_METHODS."""
    def key(method: str) -> tuple:
        figures = devtrain[method]
        return (figures["tenfold_errors"], figures["no_face"], figures["train_threshold"]["errors"],
                method != DEFAULT_METHOD, CALIBRATION_METHODS.index(method))

    return min(devtrain, key=key)


def measure(lfw: Path, method: str, precision: str) -> dict:
    calibrate_on_devtrain(lfw, method, roles=MIXED_INT8_ROLES if precision == MIXED_INT8 else None)
    root = lfw / "images"
    devtrain, devtest = read_pairs(root, lfw / "pairsDevTrain.tsv"), read_pairs(root, lfw / "pairsDevTest.tsv")
    pipeline = FacePipeline(bench_config(precision=precision))
    embedded = embed_paths(pipeline, photos_of(devtest, devtrain))
    train_report = evaluate(embedded, devtrain, devtrain, None)
    train_report["tenfold_errors"] = int(round((100 - train_report["accuracy"]) / 100 * train_report["pairs"]))
    train_photos = set(photos_of(devtrain))
    train_report["no_face"] = int(sum(f for p, f in zip(embedded.paths, embedded.no_face, strict=True)
                                      if p in train_photos))
    return {"method": method, "precision": precision, "devtrain": train_report,
            "devtest": evaluate(embedded, devtest, devtrain, None)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.int8_methods", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, help="pairsDevTrain.tsv, pairsDevTest.tsv, images/")
    parser.add_argument("--method", choices=CALIBRATION_METHODS)
    parser.add_argument("--precision", default="int8-mixed", choices=["int8", "int8-mixed"])
    parser.add_argument("--choose", type=Path, metavar="FILE", help="the lines of the first form, one per method")
    args = parser.parse_args(argv)
    if args.choose:
        lines = [json.loads(line) for line in args.choose.read_text().splitlines() if line.startswith("{")]
        by_method = {line["method"]: line for line in lines if "method" in line and "devtrain" in line}
        chosen = choose({method: line["devtrain"] for method, line in by_method.items()})
        print(json.dumps({"chosen": chosen, "rule": choose.__doc__.split(": ", 1)[1].replace("\n    ", " "),
                          "devtest_errors": {m: line["devtest"]["train_threshold"]["errors"]
                                             for m, line in by_method.items()}}))
        return 0
    if not (args.lfw and args.method):
        parser.error("--lfw and --method, or --choose FILE")
    print(json.dumps(measure(args.lfw, args.method, args.precision)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
