"""Measure the cosine at FAR 1e-2 ... 1e-6 on every cross-identity pair of a photo folder, and write the
recognizer's similarity calibration next to its manifest entry.

    python -m bench.calibrate_similarity --images ../shared/data/lfw-dev/images
    FACECOMPARE_PROFILE=fast python -m bench.calibrate_similarity --images $L/images --pairs $L/pairsDevTrain.tsv

Identity is the photo's folder (the LFW layout); with `--pairs`, only the photos those pairs name (a train
split, so the test split stays unseen). The profile's recognizers get their own file (engine/profiles.py).

The file written is our own measurement: commit it.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from bench.accuracy import photos_of, read_pairs
from bench.embeddings import EmbeddedSet, cosine_at_far, embed_paths, impostor_cosines
from bench.profile import bench_config
from engine.pipeline import FacePipeline

FARS = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, required=True, help="folder of <person>/<photo> images")
    parser.add_argument("--pairs", type=Path, help="only the photos these pairs name (paths relative to --images)")
    parser.add_argument("--dataset", default="LFW development split (View 1), 150x150")
    args = parser.parse_args(argv)
    pipeline = FacePipeline(bench_config())
    photos = photos_of(read_pairs(args.images, args.pairs)) if args.pairs else args.images.rglob("*.jpg")
    embedded = embed_paths(pipeline, sorted(photos), progress=True)
    dataset = f"{args.dataset}, the photos of {args.pairs.name}" if args.pairs else args.dataset
    calibration = calibration_record(pipeline, embedded, dataset)
    target = pipeline.similarity_path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(calibration, indent=2) + "\n")
    print(json.dumps(calibration["cosine_at_far"]))
    print(f"wrote {target}")


def calibration_record(pipeline: FacePipeline, embedded: EmbeddedSet, dataset: str) -> dict:
    """What the calibration file holds: the cosine at each FAR and what it was measured on."""
    impostors = impostor_cosines(embedded)
    recognizers = [member.spec for member in pipeline.recognizer.members]
    return {
        "recognizers": [{"name": spec.name, "sha256": spec.sha256} for spec in recognizers],
        "pipeline": {"profile": pipeline.config.profile, "flip": pipeline.recognizer.flip,
                     "detector_input": list(pipeline.profile.canvas or pipeline.detector.spec.input.size)},
        "dataset": dataset,
        "photos": len(embedded.paths),
        "photos_without_face": int(embedded.no_face.sum()),
        "impostor_pairs": int(impostors.size),
        "measured": date.today().isoformat(),
        "mapping": "score = piecewise linear in cosine; FAR 1e-2 -> 60, 1e-3 -> 70, 1e-4 -> 80, 1e-5 -> 90, "
                   "1e-6 -> 100; cosine -1 -> 0; clamped to 0..100",
        "cosine_at_far": cosine_at_far(impostors, FARS),
    }


if __name__ == "__main__":
    main()
