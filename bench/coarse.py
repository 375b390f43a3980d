"""Coarse-to-fine detection against the fine pass alone: the same answers, and what it saves, in one run.

    python -m bench.coarse [--repeat 5] [--lfw-root DIR --pairs FILE (--train FILE | --threshold T)
                           [--rows N] [--limit N]] [--windows [--lfw-root DIR --limit N]] [--nonfaces] [--json]

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
Windows (`--windows`): every face the coarse pass finds and `refine` boxes again on its window, against the
fine pass's box of that face (the most overlapping), in the test photos, the Full HD portraits and
`bench.small_faces`' scenes (a face pasted into a Full HD scene at `WINDOW_FACES` px, large enough for the
coarse pass; with `--lfw-root`, the photos of its first `--limit` genuine DevTest pairs as well): how many
are boxed exactly as the fine pass boxes them, the lowest IoU and the largest corner difference in pixels.
Non-faces (`--nonfaces`): a Full HD portrait against each photo of the non-face set (bench/nonface_set.py),
both ways round, by the shipped pipeline: how many answers report a face in the non-face photo, and a
digest of every answer (sha256 of their JSON) to tell whether a change moved any.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
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
from bench.nonface_set import nonface_photos
from bench.photos import full_hd_jpeg, on_full_hd
from bench.small_faces import background, pair_bytes, scene_with_face
from engine.coarse import iou, refine
from engine.decode import DecodedImage, decode_image
from engine.pipeline import ChosenFace, CompareResult, FacePipeline, PipelineConfig
from tests.assets import asset_path, fetch_all


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


WINDOW_FACES = (120, 160, 240, 400)


def window_photos(pipeline: FacePipeline, lfw_root: Path | None, limit: int | None) -> dict[str, list[bytes]]:
    """The photos `windows` measures, by set."""
    pairs = pair_bytes(lfw_root / "images" if lfw_root else None, lfw_root / "pairsDevTest.tsv" if lfw_root else None,
                       limit)
    faces = [photo for _, a, b in pairs for photo in (a, b)]
    scene, rng = background(), np.random.default_rng(1)
    return {
        "test photos": [path.read_bytes() for path in sorted(fetch_all(), key=lambda p: p.name)
                        if path.suffix.lower() in (".jpg", ".jpeg", ".png")],
        "Full HD portraits": [full_hd_jpeg(name) for name in PORTRAITS],
        **{f"scenes, {side} px faces": [pasted for pasted in (scene_with_face(pipeline, photo, side, scene, rng)
                                                               for photo in faces) if pasted is not None]
           for side in WINDOW_FACES},
    }


def windows(pipeline: FacePipeline, photos: dict[str, list[bytes]]) -> dict:
    """How close `refine`'s boxes are to the fine pass's, per set of photos."""
    rule = pipeline.config.coarse
    report = {}
    for name, datas in photos.items():
        ious, corners = [], []
        for data in datas:
            pixels = pipeline.decode(data).pixels
            (coarse,) = pipeline.detector.detect([pixels], rule.canvas)
            (fine,) = pipeline.detector.detect([pixels])
            for found in coarse:
                box = refine(pipeline.detector, pixels, found, rule.context) if rule.safe(
                    pipeline.detector, pixels, found) else None
                if box is None or not fine:
                    continue
                same = max(fine, key=lambda d: iou(d, box))
                ious.append(iou(same, box))
                corners.append(max(abs(a - b) for a, b in zip((box.x1, box.y1, box.x2, box.y2),
                                                              (same.x1, same.y1, same.x2, same.y2), strict=True)))
        report[name] = {"photos": len(datas), "refined": len(ious),
                        "exact": sum(c < 1e-3 for c in corners),
                        "lowest_iou": round(min(ious, default=1.0), 5),
                        "largest_corner_px": round(max(corners, default=0.0), 4),
                        "mean_corner_px": round(float(np.mean(corners)) if corners else 0.0, 4)}
    return report


def nonfaces(pipeline: FacePipeline) -> dict:
    portrait = full_hd_jpeg("obama.jpg")
    photos = nonface_photos()
    digest = hashlib.sha256()
    as_target = as_origin = 0
    for photo in photos:
        target = pipeline.compare(portrait, photo.data)
        origin = pipeline.compare(photo.data, portrait)
        as_target += target.match is not None
        as_origin += origin.face is not None
        digest.update(json.dumps([dataclasses.asdict(target), dataclasses.asdict(origin)]).encode())
    return {"photos": len(photos), "face_in_target": as_target, "face_in_origin": as_origin,
            "answers_sha256": digest.hexdigest()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--lfw-root", type=Path)
    parser.add_argument("--train", type=Path)
    parser.add_argument("--pairs", type=Path)
    parser.add_argument("--threshold", type=float, help="the API's threshold (0-100) instead of --train's")
    parser.add_argument("--rows", type=int, help="each LFW photo scaled to this many rows on a 1920x1080 canvas")
    parser.add_argument("--limit", type=int, help="test pairs at most")
    parser.add_argument("--windows", action="store_true", help="refine's boxes against the fine pass's")
    parser.add_argument("--nonfaces", action="store_true", help="a portrait against the non-face set")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    coarse = FacePipeline(PipelineConfig())
    fine = copy.copy(coarse)
    fine.config = replace(coarse.config, coarse=None)
    pipelines = {"fine": fine, "coarse-to-fine": coarse}
    result: dict = {"rule": str(coarse.config.coarse)}
    if args.repeat:
        result["timing"] = timing(pipelines, args.repeat)
    if args.nonfaces:
        result["nonfaces"] = nonfaces(coarse)
    if args.windows:
        result["windows"] = windows(coarse, window_photos(coarse, args.lfw_root, args.limit))
    if args.lfw_root and args.pairs and (args.train or args.threshold is not None):
        result["lfw"] = accuracy(pipelines, args.lfw_root, args.pairs, args.train, args.threshold, args.rows,
                                 args.limit)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
