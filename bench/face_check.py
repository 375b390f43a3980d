"""Refusing non-faces: one row of measurements per detector box over non-face and face photos, and the
candidate rules read from that table: photos without a face that still get one, face photos that lose theirs.

    python -m bench.face_check table --lfw DIR --nuaa DIR [--lfw-every N] --out FILE.jsonl
    python -m bench.face_check rules FILE.jsonl [--json]
    python -m bench.face_check opinions --lfw DIR --nuaa DIR [--lfw-every N] --out FILE.jsonl
    python -m bench.face_check verdict FILE.jsonl [--threshold P]
    python -m bench.face_check cost --before CHECKOUT [--rounds N]

Non-face photos: bench/nonface_set.py (registry sample images, rescaled and cropped). Face photos: the test
photos, LFW dev (every N-th photo), the NUAA frames (live and printed-photo attacks: both show a face), and
every other of those LFW photos pasted with a 50, 64 and 80 px face into Full HD scenes
(bench/small_faces.py). Every box the detector reports is measured (before any check), each as the pipeline
would see it: the second look on the decoded pixels (session 3) and on the pixels its crops come from
(shipped), the landmarks' agreement with the box, both recognizers' embedding lengths before normalising,
the liveness score. A non-face photo counts if any box passes a rule; a face photo if none does; and the
face photos' boxes that the shipped check keeps and a rule drops. Every set is split into halves
(non-faces by source image, LFW and scenes by person, NUAA by subject, test photos alternately):
choose on "tune", read "check". The table holds numbers only: no pixels, no embeddings, no file names.

`opinions`: the shipped check box by box, as engine/face_check.py runs it: the second look's score and the
classifier's face probability of every detector box, and how many boxes the check keeps. `verdict` reads it per
set and half: photos left with a face, and the margins (the lowest best box of face photos, the highest of
non-face photos) that the classifier's threshold was chosen in, on the tune half.

`cost`: ms per compare in process, this checkout against another (e.g. a worktree of main) in turns, one
compare each, for two Full HD portraits, a portrait and a 50 px face in a Full HD scene, a portrait and the
cat photo (no face) at Full HD, a portrait and the Hubble deep field (a box the second look keeps and the
classifier refuses), a portrait and a group photo.
"""

from __future__ import annotations

import argparse
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.latency import InProcess, pair
from bench.nonface_set import nonface_photos
from bench.photos import full_hd_jpeg
from bench.small_faces import SIZES, background, scene_with_face
from engine.align import ARCFACE_TEMPLATE, similarity_matrix
from engine.faces import Detection
from engine.landmarks import five_points
from engine.pipeline import FacePipeline, PipelineConfig
from models.manifest import load_manifest
from tests.assets import asset_path
from tests.service_process import REPO

TEST_PHOTOS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama_partial_face.jpg",
               "obama_partial_face2.jpg", "32bit.png", *(f"sample{i}.jpg" for i in range(1, 7))]
NONFACES = "non-face photos"


@dataclass(frozen=True)
class Box:
    """What the candidate rules read of one detector box."""

    score: float
    aspect: float
    width: float  # in the decoded pixels the detector saw
    second_look: float  # session 3: on the decoded pixels; 0 when not found again
    second_look_sharp: float  # shipped: on the pixels the crops come from (the file decoded larger if small)
    template_error: float  # RMS px (of 112) of the five points from the ArcFace template after alignment
    landmark_spread: float  # the 68 points' horizontal extent / box width
    landmark_offset: float  # the 68 points' centre from the box's centre / box width
    landmark_repeat: float  # RMS shift of the 68 points, landmarks run again on the box re-centred on them / width
    norm_first: float  # first recognizer's embedding length before normalising, as the pipeline embeds
    norm_second: float
    liveness: float  # 0-100


def lengths(pipeline: FacePipeline, pixels: np.ndarray, matrices: list[np.ndarray]) -> list[np.ndarray]:
    """Each recognizer's embedding lengths before normalising, as the pipeline embeds."""
    return [member.embed_measured([(pixels, m) for m in matrices])[1] for member in pipeline.recognizer.members]


def recentred(detection: Detection, points: np.ndarray) -> Detection:
    """The box moved so its centre is the landmarks' centre."""
    dx, dy = points.mean(axis=0) - ((detection.x1 + detection.x2) / 2, (detection.y1 + detection.y2) / 2)
    return Detection(detection.x1 + dx, detection.y1 + dy, detection.x2 + dx, detection.y2 + dy, detection.score)


def boxes_of(pipeline: FacePipeline, data: bytes) -> list[Box]:
    image = pipeline.decode(data)
    (found,) = pipeline.detector.detect([image.pixels])
    if not found:
        return []
    (looks,) = pipeline.face_check.second_look([image.pixels], [found])
    pixels, in_pixels = pipeline.crop_source(image, found)
    (looks_sharp,) = pipeline.face_check.second_look([pixels], [in_pixels])
    landmarks = pipeline.landmarks.landmarks68([(pixels, d) for d in in_pixels])
    again = pipeline.landmarks.landmarks68([(pixels, recentred(d, p)) for d, p in zip(in_pixels, landmarks,
                                                                                        strict=True)])
    points = five_points(landmarks)
    matrices = [similarity_matrix(p) for p in points]
    errors = [float(np.sqrt(np.mean(np.sum((p @ m[:, :2].T + m[:, 2] - ARCFACE_TEMPLATE) ** 2, axis=1))))
              for p, m in zip(points, matrices, strict=True)]
    first, second = lengths(pipeline, pixels, matrices)
    liveness = pipeline.liveness_scores([(pixels, d) for d in in_pixels])
    rows = []
    for i, (d, d_px) in enumerate(zip(found, in_pixels, strict=True)):
        lm, lm_again = landmarks[i], again[i]
        centre = np.array([(d_px.x1 + d_px.x2) / 2, (d_px.y1 + d_px.y2) / 2])
        rows.append(Box(
            score=d.score, aspect=d.width / d.height, width=d.width, second_look=looks[i],
            second_look_sharp=looks_sharp[i], template_error=errors[i],
            landmark_spread=float(np.ptp(lm[:, 0]) / d_px.width),
            landmark_offset=float(np.linalg.norm(lm.mean(axis=0) - centre) / d_px.width),
            landmark_repeat=float(np.sqrt(np.mean(np.sum((lm_again - lm) ** 2, axis=1))) / d_px.width),
            norm_first=float(first[i]), norm_second=float(second[i]), liveness=liveness[i]))
    return rows


def half_by(key: str) -> str:
    return "tune" if zlib.crc32(key.encode()) % 2 == 0 else "check"


def face_photos(pipeline: FacePipeline, lfw: Path, nuaa: Path, every: int) -> Iterator[tuple[str, str, bytes]]:
    """(set, half, bytes) of every face photo."""
    for i, name in enumerate(TEST_PHOTOS):
        yield "test photos", "tune" if i % 2 == 0 else "check", asset_path(name).read_bytes()
    lfw_photos = sorted((lfw / "images").glob("*/*.jpg"))[::every]
    for path in lfw_photos:
        yield "LFW dev", half_by(path.parent.name), path.read_bytes()
    for path in sorted(nuaa.glob("*/*/*.jpg")):
        yield "NUAA frames", "tune" if path.parent.name <= "0004" else "check", path.read_bytes()
    scene = background()
    for size in SIZES:
        rng = np.random.default_rng(2)
        for path in lfw_photos[::2]:
            data = scene_with_face(pipeline, path.read_bytes(), size, scene, rng)
            if data is not None:
                yield f"{size} px faces in Full HD scenes", half_by(path.parent.name), data


def write_table(pipeline: FacePipeline, lfw: Path, nuaa: Path, every: int, out: Path) -> None:
    """One JSON line per photo: its set, half and the measurements of each of its boxes."""
    photos = [(NONFACES, p.half, p.data) for p in nonface_photos()]
    with out.open("w") as f:
        for kind, half, data in [*photos, *face_photos(pipeline, lfw, nuaa, every)]:
            # Nine significant digits hold every float32 measurement exactly and keep the table small.
            boxes = [{name: float(f"{value:.9g}") if isinstance(value, float) else value
                      for name, value in asdict(b).items()} for b in boxes_of(pipeline, data)]
            f.write(json.dumps({"set": kind, "half": half, "boxes": boxes}) + "\n")
            f.flush()


def write_opinions(pipeline: FacePipeline, lfw: Path, nuaa: Path, every: int, out: Path) -> None:
    """One JSON line per photo: its set, half, each detector box's second look and face probability (measured
    whether or not its second look found it), and how many boxes the shipped check keeps."""
    photos = [(NONFACES, p.half, p.data) for p in nonface_photos()]
    with out.open("w") as f:
        for kind, half, data in [*photos, *face_photos(pipeline, lfw, nuaa, every)]:
            image = pipeline.decode(data)
            (found,) = pipeline.detector.detect([image.pixels])
            pixels, in_pixels = pipeline.crop_source(image, found)
            (looks,) = pipeline.face_check.second_look([pixels], [in_pixels])
            (probabilities,) = pipeline.face_check.face_probabilities([pixels], [in_pixels])
            (kept,) = pipeline.face_check.keep([(pixels, in_pixels)], [found])
            boxes = [{"look": float(f"{look:.9g}"), "face": float(f"{p:.9g}")}
                     for look, p in zip(looks, probabilities, strict=True)]
            f.write(json.dumps({"set": kind, "half": half, "boxes": boxes, "kept": len(kept)}) + "\n")
            f.flush()


def verdict(path: Path, threshold: float) -> dict:
    """Per set and half: photos, those with a box after the second look and after the classifier (the rule
    applied here, checked against the count the shipped code kept), boxes dropped by the classifier, and the
    best box's face probability: the lowest among face photos, the highest among non-face photos."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    report: dict = {"threshold": threshold}
    for kind in dict.fromkeys(r["set"] for r in rows):
        report[kind] = {}
        for half in ("tune", "check"):
            photos = [r for r in rows if r["set"] == kind and r["half"] == half]
            best = [max(b["face"] for b in r["boxes"] if b["look"] > 0) for r in photos
                    if any(b["look"] > 0 for b in r["boxes"])]
            kept = [r["kept"] for r in photos]
            rule = [sum(b["look"] > 0 for b in r["boxes"]) if any(b["look"] > 0 and b["face"] >= threshold
                                                                     for b in r["boxes"]) else 0 for r in photos]
            report[kind][half] = {
                "photos": len(photos), "with a box after the second look": len(best),
                "with a box after the classifier": sum(k > 0 for k in kept),
                "boxes dropped by the classifier": sum(sum(b["look"] > 0 for b in r["boxes"]) - r["kept"]
                                                       for r in photos),
                "rule agrees with the shipped code": rule == kept,
                "best box's face probability, " + ("highest" if kind == NONFACES else "lowest"):
                    (max(best) if kind == NONFACES else min(best)) if best else None}
    return report


# Thresholds chosen on the tune half. Shipped: the second look on the crops' pixels (engine/face_check.py).
RULES: dict[str, Callable[[Box], bool]] = {
    "detector alone (score >= 0.6)": lambda b: True,
    "score >= 0.9": lambda b: b.score >= 0.9,
    "aspect (width / height) 0.6-1.1": lambda b: 0.6 <= b.aspect <= 1.1,
    "landmarks fit the template (error <= 5 px of 112)": lambda b: b.template_error <= 5.0,
    "landmarks run again move <= 0.05 of the box": lambda b: b.landmark_repeat <= 0.05,
    "liveness >= 50": lambda b: b.liveness >= 50,
    "second recognizer's length >= 47": lambda b: b.norm_second >= 47,
    "first recognizer's length >= 2.2": lambda b: b.norm_first >= 2.2,
    "second look on the decoded pixels (session 3)": lambda b: b.second_look > 0,
    "second look on the crops' pixels (shipped)": lambda b: b.second_look_sharp > 0,
    "shipped and length >= 2.2": lambda b: b.second_look_sharp > 0 and b.norm_first >= 2.2,
    "shipped and length >= 1.9": lambda b: b.second_look_sharp > 0 and b.norm_first >= 1.9,
    "shipped and landmarks' spread >= 0.62 of the box": lambda b: b.second_look_sharp > 0 and b.landmark_spread >= 0.62,
}
SHIPPED = "second look on the crops' pixels (shipped)"


def read_table(path: Path) -> list[tuple[str, str, list[Box]]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [(r["set"], r["half"], [Box(**b) for b in r["boxes"]]) for r in rows]


def tally(table: list[tuple[str, str, list[Box]]], rules: dict[str, Callable[[Box], bool]]) -> dict:
    """Per set, rule and half: non-face photos left with a box, or face photos (with a detector box) left
    without one; for face photos also the boxes the shipped check keeps that a rule drops (a face in the
    background, a profile: a face lost all the same where the API picks it)."""
    report: dict = {}
    for kind in dict.fromkeys(k for k, _, _ in table):
        photos = [(half, boxes) for k, half, boxes in table if k == kind]
        is_face = kind != NONFACES
        entry: dict = {"photos": {h: sum(half == h for half, _ in photos) for h in ("tune", "check")},
                       "no box from the detector": sum(not boxes for _, boxes in photos), "by rule": {}}
        if is_face:
            entry["boxes the shipped check keeps"] = {h: sum(RULES[SHIPPED](b) for half, boxes in photos
                                                             if half == h for b in boxes) for h in ("tune", "check")}
        for name, rule in rules.items():
            counts = {"tune": 0, "check": 0}
            dropped = {"tune": 0, "check": 0}
            for half, boxes in photos:
                if boxes or not is_face:
                    counts[half] += int(any(rule(b) for b in boxes) != is_face)
                dropped[half] += sum(RULES[SHIPPED](b) and not rule(b) for b in boxes)
            entry["by rule"][name] = {**counts, "boxes dropped": dropped} if is_face else counts
        report[kind] = entry
    return report


def cost(before: Path, rounds: int) -> dict:
    """Wall p50 per kind of pair and CPU per compare, `before`'s code against this checkout's, in turns."""
    pipeline = FacePipeline(PipelineConfig())
    portrait = full_hd_jpeg("obama.jpg")
    small = scene_with_face(pipeline, asset_path("obama2.jpg").read_bytes(), 50, background(),
                            np.random.default_rng(1))
    pipeline.close()
    pairs = [pair("portraits", portrait, full_hd_jpeg("obama2.jpg")), pair("50 px face", portrait, small),
             pair("target without a face", portrait, full_hd_jpeg("chelsea.png")),
             pair("target only the classifier refuses", portrait, asset_path("hubble_deep_field.jpg").read_bytes()),
             pair("group", portrait, asset_path("sample1.jpg").read_bytes())]
    workers = {"before": InProcess(pairs, before), "after": InProcess(pairs, REPO)}
    try:
        for _ in range(rounds):
            for index in range(len(pairs)):
                for worker in workers.values():
                    worker.ask(index)
        report = {name: worker.summary() for name, worker in workers.items()}
    finally:
        for worker in workers.values():
            worker.close()
    report["after / before, p50"] = {kind: round(report["after"]["by_kind"][kind]["p50_ms"]
                                                 / report["before"]["by_kind"][kind]["p50_ms"], 3)
                                     for kind in report["after"]["by_kind"]}
    report["after / before, CPU per compare"] = round(report["after"]["cpu_ms_per_compare"]
                                                      / report["before"]["cpu_ms_per_compare"], 3)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, what in (("table", "measure every box into a JSON-lines table"),
                       ("opinions", "the shipped check's scores of every box, JSON lines")):
        photos = commands.add_parser(name, help=what)
        photos.add_argument("--lfw", type=Path, required=True, help="LFW dev folder (images/)")
        photos.add_argument("--nuaa", type=Path, required=True, help="NUAA dev folder (live/, spoof/)")
        photos.add_argument("--lfw-every", type=int, default=1, help="every N-th LFW photo")
        photos.add_argument("--out", type=Path, required=True)
    rules = commands.add_parser("rules", help="the candidate rules on a table")
    rules.add_argument("table", type=Path)
    rules.add_argument("--json", action="store_true", help="one JSON object on the last line")
    judged = commands.add_parser("verdict", help="the classifier's rule on an opinions table")
    judged.add_argument("table", type=Path)
    judged.add_argument("--threshold", type=float, help="the face probability a photo's best box needs "
                        "(default: the manifest's)")
    timing = commands.add_parser("cost", help="time compares against another checkout's, in turns")
    timing.add_argument("--before", type=Path, required=True, help="the other checkout (e.g. a worktree of main)")
    timing.add_argument("--rounds", type=int, default=30)
    timing.add_argument("--json", action="store_true", help="one JSON object on the last line")
    args = parser.parse_args(argv)
    if args.command in ("table", "opinions"):
        write = write_table if args.command == "table" else write_opinions
        write(FacePipeline(PipelineConfig()), args.lfw, args.nuaa, args.lfw_every, args.out)
        return
    if args.command == "verdict":
        manifest = load_manifest()
        threshold = args.threshold if args.threshold is not None else float(
            manifest.models[manifest.pipeline.face_check].params["threshold"])
        print(json.dumps(verdict(args.table, threshold), indent=1))
        return
    report = tally(read_table(args.table), RULES) if args.command == "rules" else cost(args.before, args.rounds)
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
