"""Small faces in Full HD scenes: do pairs that match at full size still match when one face is 50-80 px wide?

    python -m bench.small_faces --lfw DIR [--pairs FILE] [--sizes 50 64 80] [--limit N] [--try NAME] [--json]
    python -m bench.small_faces --timing ROUNDS [--json]

Each genuine pair (and the test photos' pairs of one person) is compared as the API compares, once as the
files are and once with one photo shrunk so that its face (the detector's box) is `size` px wide and pasted
into a 1920x1080 scene, JPEG-encoded at quality 90 with 4:2:0 chroma as a camera does; the scene is the
origin for even pairs and the target for odd ones. The scenes' background is synthetic (smooth random
colour fields with fine grain, the same for a given seed), so nothing but the pasted photo can hold a face.
Reported: matched at the default threshold, as a share of the pairs that match at full size.

`--timing` measures the cost per compare of two Full HD portraits and of a portrait against a scene with a
50 px face, the way `git worktree` copies of two commits can be timed against each other in turns.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from bench.accuracy import read_pairs
from bench.accuracy_tries import TRIES
from bench.photos import FULL_HD, full_hd_jpeg
from bench.profile import bench_config
from engine.pipeline import FacePipeline
from tests.assets import asset_path

SIZES = (50, 64, 80)
TEST_PHOTO_PAIRS = [("obama.jpg", "obama2.jpg"), ("obama.jpg", "obama3.jpg"), ("obama2.jpg", "obama3.jpg")]
JPEG_QUALITY = 90


def background(seed: int = 0) -> np.ndarray:
    """A 1920x1080 RGB scene without faces: low-frequency colour fields plus sensor-like grain."""
    rng = np.random.default_rng(seed)
    width, height = FULL_HD
    coarse = rng.uniform(40, 215, size=(9, 16, 3)).astype(np.float32)
    fields = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 6, size=(height, width, 3)).astype(np.float32)
    return np.clip(fields + grain, 0, 255).astype(np.uint8)


def jpeg(pixels: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY,
                                cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return encoded.tobytes()


def scene_with_face(pipeline: FacePipeline, photo: bytes, face_width: int, scene: np.ndarray,
                    rng: np.random.Generator) -> bytes | None:
    """The photo shrunk so that its largest face is `face_width` px wide, pasted at a random place; None if
    the photo has no face at full size, or shrunk (or grown) that way it would not fit in the scene."""
    image = pipeline.decode(photo)
    (found,) = pipeline.detector.detect([image.pixels])
    if not found:
        return None
    scale = face_width / found[0].width
    pixels = image.pixels
    small = cv2.resize(pixels, (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    height, width = small.shape[:2]
    if height >= scene.shape[0] or width >= scene.shape[1]:
        return None
    x = int(rng.integers(0, scene.shape[1] - width))
    y = int(rng.integers(0, scene.shape[0] - height))
    out = scene.copy()
    out[y : y + height, x : x + width] = small
    return jpeg(out)


def pair_bytes(lfw: Path | None, pairs: Path | None, limit: int | None) -> list[tuple[str, bytes, bytes]]:
    """(name, photo a, photo b) of every genuine pair: the test photos' own, then LFW's."""
    result = [(f"{a}|{b}", asset_path(a).read_bytes(), asset_path(b).read_bytes()) for a, b in TEST_PHOTO_PAIRS]
    if lfw is not None and pairs is not None:
        listed = read_pairs(lfw, pairs)
        genuine = [(a, b) for a, b, same in zip(listed.a, listed.b, listed.same, strict=True) if same]
        result += [(f"{a.name}|{b.name}", a.read_bytes(), b.read_bytes()) for a, b in genuine[:limit]]
    return result


def matched_shares(pipeline: FacePipeline, pairs: list[tuple[str, bytes, bytes]], sizes: tuple[int, ...]) -> dict:
    scene = background()
    rng = np.random.default_rng(1)
    full = [pipeline.compare(a, b).is_match for _, a, b in pairs]
    report: dict = {"pairs": len(pairs), "full_size_matches": int(sum(full)), "sizes": {}}
    for size in sizes:
        matched = lost_face = placed = 0
        for index, ((_, a, b), full_match) in enumerate(zip(pairs, full, strict=True)):
            pasted = scene_with_face(pipeline, b if index % 2 else a, size, scene, rng)
            if not full_match or pasted is None:
                continue
            placed += 1
            result = pipeline.compare(a, pasted) if index % 2 else pipeline.compare(pasted, b)
            lost_face += result.face is None or result.match is None
            matched += result.is_match
        report["sizes"][size] = {"matched": matched, "share": round(matched / max(sum(full), 1) * 100, 1),
                                 "no_face": lost_face, "compared": placed}
    return report


def timing(pipeline: FacePipeline, rounds: int) -> dict:
    """ms per compare: two Full HD portraits, and a Full HD portrait against a scene with a 50 px face; wall
    time and the process's CPU time (all its threads), which a busy machine disturbs far less."""
    portraits = (full_hd_jpeg("obama.jpg"), full_hd_jpeg("obama2.jpg"))
    small = scene_with_face(pipeline, asset_path("obama2.jpg").read_bytes(), 50, background(),
                            np.random.default_rng(1))
    cases = {"portraits": portraits, "small_face": (portraits[0], small)}
    for a, b in cases.values():
        pipeline.compare(a, b)
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (a, b) in cases.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            pipeline.compare(a, b)
            wall[name].append((time.perf_counter() - started) * 1000)
            cpu[name].append((time.process_time() - started_cpu) * 1000)
    return {name: {"wall_median_ms": round(float(np.median(wall[name])), 2),
                   "cpu_median_ms": round(float(np.median(cpu[name])), 2)} for name in cases}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, help="LFW dev folder (images/, pairsDevTest.tsv)")
    parser.add_argument("--pairs", default="pairsDevTest.tsv", help="pairs file inside --lfw")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--limit", type=int, help="at most this many LFW genuine pairs")
    parser.add_argument("--timing", type=int, metavar="ROUNDS", help="time compares instead")
    parser.add_argument("--try", dest="try_name", default="shipped", choices=list(TRIES),
                        help="one knob of bench.accuracy_tries changed (the calibration stays the shipped one)")
    parser.add_argument("--json", action="store_true", help="one JSON object on the last line")
    args = parser.parse_args(argv)
    pipeline = FacePipeline(bench_config())
    TRIES[args.try_name](pipeline)
    if args.timing:
        report = timing(pipeline, args.timing)
    else:
        lfw = args.lfw
        pairs = pair_bytes(lfw / "images" if lfw else None, lfw / args.pairs if lfw else None, args.limit)
        report = {"try": args.try_name, **matched_shares(pipeline, pairs, tuple(args.sizes))}
    print(json.dumps(report) if args.json else report)


if __name__ == "__main__":
    main()
