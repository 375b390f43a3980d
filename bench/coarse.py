"""Coarse-to-fine detection against the fine pass alone: the same answers, and what it saves, in one run.

    python -m bench.coarse [--repeat 5] [--lfw-root DIR --pairs FILE (--train FILE | --threshold T)
                           [--rows N] [--limit N]] [--json]

Time: the two pipelines (sharing their models) compare the same pairs alternately, in wall and CPU ms per
compare: 1920x1080 portraits against each other, a portrait against each group photo, and a portrait
against a 1920x1080 scene holding the same person's face at 50 px (both ways round), with whether each
answer (isMatch, faces, similarity) agrees. Accuracy (with `--lfw-*`): the threshold is chosen on the
train pairs with the fine pass (cosines of the largest faces, as bench.accuracy), or given (`--threshold`,
the API's 0-100), then every test pair is compared by both pipelines at it: errors, decisions that differ,
the largest similarity difference. `--rows N` places each LFW photo, scaled to N rows, on a 1920x1080
canvas first: LFW's own 150x150 photos fit the coarse canvas whole (both passes see the same pixels),
and at 1080 rows the faces are so large that their windows cost more than the fine pass (which then runs);
about 450 rows gives faces of 150-200 px in the Full HD frame, as a kiosk camera sees them.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from bench.accuracy import best_threshold, pair_cosines, photos_of, read_pairs
from bench.embeddings import EmbeddedSet
from bench.latency import GROUPS, PORTRAITS
from bench.photos import full_hd_jpeg, on_full_hd
from engine.coarse import iou
from engine.decode import DecodedImage, decode_image
from engine.pipeline import ChosenFace, CompareResult, FacePipeline, PipelineConfig
from tests.assets import asset_path


def small_face_scene(pipeline: FacePipeline, name: str, side: int = 50, background: np.ndarray | None = None) -> bytes:
    """A 1920x1080 JPEG with the photo's face shrunk to `side` px at the lower right, on `background` (1920x1080
    RGB pixels) or a plain grey."""
    source = pipeline.decode(asset_path(name).read_bytes())
    face = pipeline.detector.detect([source.pixels])[0][0]
    half = max(face.width, face.height) * 0.65
    cx, cy = (face.x1 + face.x2) / 2, (face.y1 + face.y2) / 2
    patch = source.pixels[max(0, int(cy - half)): int(cy + half), max(0, int(cx - half)): int(cx + half)]
    size = round(patch.shape[0] * side / max(face.width, face.height))
    small = np.asarray(Image.fromarray(np.ascontiguousarray(patch)).resize((size, size), Image.LANCZOS))
    scene = np.full((1080, 1920, 3), 120, dtype=np.uint8) if background is None else background.copy()
    scene[700: 700 + size, 1400: 1400 + small.shape[1]] = small
    return on_full_hd(scene)


def scenes(pipeline: FacePipeline) -> dict[str, list[tuple[bytes, bytes]]]:
    portraits = {name: full_hd_jpeg(name) for name in PORTRAITS}
    small = small_face_scene(pipeline, "obama2.jpg")
    return {
        "portrait": [(portraits[a], portraits[b]) for a, b in itertools.combinations(PORTRAITS, 2)],
        "group": [(portraits[PORTRAITS[i % len(PORTRAITS)]], asset_path(g).read_bytes()) for i, g in enumerate(GROUPS)],
        "small face": [(portraits["obama.jpg"], small), (small, portraits["obama.jpg"])],
    }


def same_face(a: ChosenFace | None, b: ChosenFace | None) -> bool:
    """Both none, or boxes of one face (IoU >= 0.7: a coarse box is a few pixels off the fine one)."""
    return (a is None) == (b is None) and (a is None or iou(a.detection, b.detection) >= 0.7)


def same_answer(a: CompareResult, b: CompareResult) -> bool:
    """The same decision on the same faces; a non-match may name another target face scoring within a hair."""
    return (a.is_match == b.is_match and same_face(a.face, b.face)
            and (not a.is_match or same_face(a.match, b.match)))


def timing(pipelines: dict[str, FacePipeline], repeat: int) -> dict:
    report = {}
    for kind, pairs in scenes(pipelines["fine"]).items():
        wall: dict[str, list[float]] = {name: [] for name in pipelines}
        cpu: dict[str, list[float]] = {name: [] for name in pipelines}
        agree, same_target, diff = [], [], []
        for _ in range(repeat):
            for origin, target in pairs:
                answers = {}
                for name, pipeline in pipelines.items():
                    started, cpu_started = time.perf_counter(), time.process_time()
                    answers[name] = pipeline.compare(origin, target)
                    wall[name].append((time.perf_counter() - started) * 1000)
                    cpu[name].append((time.process_time() - cpu_started) * 1000)
                fine, coarse = answers["fine"], answers["coarse-to-fine"]
                agree.append(same_answer(fine, coarse))
                same_target.append(same_face(fine.match, coarse.match))
                if fine.match and coarse.match:
                    diff.append(abs(fine.match.similarity - coarse.match.similarity))
        report[kind] = {name: {"wall_ms": round(statistics.median(wall[name]), 2),
                               "cpu_ms": round(statistics.fmean(cpu[name]), 2)} for name in pipelines}
        report[kind]["same_answers"] = f"{sum(agree)}/{len(agree)}"
        report[kind]["same_target_face"] = f"{sum(same_target)}/{len(same_target)}"
        report[kind]["max_similarity_diff"] = round(max(diff, default=0.0), 2)
    return report


def accuracy(pipelines: dict[str, FacePipeline], root: Path, test_file: Path, train_file: Path | None,
             threshold: float | None, rows: int | None, limit: int | None) -> dict:
    fine = pipelines["fine"]
    threshold_from = "given" if threshold is not None else "train pairs"
    test = read_pairs(root, test_file)
    if limit:
        test = replace(test, a=test.a[:limit], b=test.b[:limit], same=test.same[:limit], folds=test.folds[:limit])

    def load(path: Path) -> DecodedImage:
        data = path.read_bytes()
        return fine.decode(on_full_hd(decode_image(data).pixels, rows=rows) if rows else data)

    if threshold is None:
        assert train_file is not None
        train = read_pairs(root, train_file)
        photos = photos_of(train)
        embedded = EmbeddedSet(paths=photos, faces=[fine.embed_all(load(path)) for path in photos],
                               seconds_per_image=0.0)
        threshold = fine.calibration.similarity(best_threshold(pair_cosines(train, embedded), train.same))
    errors = {name: 0 for name in pipelines}
    differ, diffs, seconds = 0, [], {name: 0.0 for name in pipelines}
    for a, b, same in zip(test.a, test.b, test.same, strict=True):
        origin, target = load(a), load(b)
        answers = {}
        for name, pipeline in pipelines.items():
            started = time.process_time()
            answers[name] = pipeline.compare_images(origin, target, threshold)
            seconds[name] += time.process_time() - started
            errors[name] += answers[name].is_match != bool(same)
        differ += answers["fine"].is_match != answers["coarse-to-fine"].is_match
        if answers["fine"].match and answers["coarse-to-fine"].match:
            diffs.append(abs(answers["fine"].match.similarity - answers["coarse-to-fine"].match.similarity))
    return {"pairs": len(test.a), "rows_on_full_hd": rows, "threshold": threshold,
            "threshold_from": threshold_from,
            "errors": errors, "decisions_that_differ": differ,
            "similarity_diff_p99": round(float(np.percentile(diffs, 99)), 2) if diffs else None,
            "similarity_diff_max": round(max(diffs, default=0.0), 2),
            "cpu_ms_per_compare": {n: round(s * 1000 / max(len(test.a), 1), 2) for n, s in seconds.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--lfw-root", type=Path)
    parser.add_argument("--train", type=Path)
    parser.add_argument("--pairs", type=Path)
    parser.add_argument("--threshold", type=float, help="the API's threshold (0-100) instead of --train's")
    parser.add_argument("--rows", type=int, help="each LFW photo scaled to this many rows on a 1920x1080 canvas")
    parser.add_argument("--limit", type=int, help="test pairs at most")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    coarse = FacePipeline(PipelineConfig())
    fine = copy.copy(coarse)
    fine.config = replace(coarse.config, coarse=None)
    pipelines = {"fine": fine, "coarse-to-fine": coarse}
    result: dict = {"rule": str(coarse.config.coarse)}
    if args.repeat:
        result["timing"] = timing(pipelines, args.repeat)
    if args.lfw_root and args.pairs and (args.train or args.threshold is not None):
        result["lfw"] = accuracy(pipelines, args.lfw_root, args.pairs, args.train, args.threshold, args.rows,
                                 args.limit)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
