"""INT8 vs FP32 on onnxruntime, same run, same photos: the numbers that decide whether INT8 may be used.

    python -m calibration.parity --lfw ../shared/data/lfw-dev [--calibrate [--method M] [--calibrate-only]] [--json]

Calibration uses only the DevTrain photos; accuracy is measured on DevTest with the threshold from DevTrain.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calibration.build import calibration_set, write_qdq_models
from engine.align import similarity_matrix
from engine.backends.int8 import CALIBRATION_METHODS, DEFAULT_METHOD, photos_digest
from engine.decode import DecodedImage
from engine.faces import Detection
from engine.pipeline import FacePipeline, PipelineConfig
from models import paths

FAR = 1e-3


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool


def read_pairs(path: Path) -> list[Pair]:
    """Lines `a<TAB>b<TAB>same`, paths relative to the images folder."""
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    return [Pair(a, b, same.strip() == "1") for a, b, same in rows]


def pair_scores(embeddings: dict[str, np.ndarray | None], pairs: list[Pair]) -> np.ndarray:
    """Cosine per pair; a pair with a photo where no face was found scores -1 (a certain non-match)."""
    scores = []
    for pair in pairs:
        a, b = embeddings.get(pair.a), embeddings.get(pair.b)
        scores.append(-1.0 if a is None or b is None else float(a @ b))
    return np.array(scores)


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold with the best accuracy on these pairs (midpoint between neighbouring scores)."""
    ordered = np.sort(np.unique(scores))
    candidates = np.concatenate([[ordered[0] - 1e-6], (ordered[:-1] + ordered[1:]) / 2, [ordered[-1] + 1e-6]])
    accuracies = [np.mean((scores >= t) == same) for t in candidates]
    return float(candidates[int(np.argmax(accuracies))])


def tar_at_far(embeddings: dict[str, np.ndarray | None], far: float) -> tuple[float, int, int]:
    """TAR at `far` over all pairs of the photos: every cross-identity pair is an impostor, every
    same-identity pair a genuine one (identity = the photo's folder). Returns TAR and both pair counts."""
    names = sorted(k for k, v in embeddings.items() if v is not None)
    matrix = np.stack([embeddings[n] for n in names])
    identity = np.array([Path(n).parent.name for n in names])
    upper = np.triu(np.ones((len(names), len(names)), dtype=bool), k=1)
    same = identity[:, None] == identity[None, :]
    scores = matrix @ matrix.T
    impostor, genuine = scores[upper & ~same], scores[upper & same]
    threshold = np.quantile(impostor, 1.0 - far)
    return float(np.mean(genuine > threshold)), int(genuine.size), int(impostor.size)


def iou(a: Detection, b: Detection) -> float:
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    return inter / (a.area + b.area - inter) if inter else 0.0


def detection_recall(reference: FacePipeline, candidate: FacePipeline, photos: list[Path]) -> dict[str, float]:
    """Faces the FP32 detector finds that the INT8 one also finds (IoU >= 0.5), and the INT8 extras."""
    found = matched = extra = 0
    for photo in photos:
        pixels = reference.decode(photo.read_bytes()).pixels
        (ref,), (cand,) = reference.detector.detect([pixels]), candidate.detector.detect([pixels])
        hits = sum(any(iou(r, c) >= 0.5 for c in cand) for r in ref)
        found, matched, extra = found + len(ref), matched + hits, extra + len(cand) - hits
    return {"photos": len(photos), "fp32_faces": found, "recall": matched / max(found, 1), "int8_extra": extra}


def largest_face(pipeline: FacePipeline, image: DecodedImage) -> np.ndarray | None:
    faces = pipeline.embed_all(image)
    return faces[0] if len(faces) else None


def embed_all(pipeline: FacePipeline, root: Path, names: list[str]) -> tuple[dict[str, np.ndarray | None], float]:
    """The largest face's embedding per photo, and the mean wall time per photo in milliseconds."""
    result: dict[str, np.ndarray | None] = {}
    start = time.perf_counter()
    for name in names:
        result[name] = largest_face(pipeline, pipeline.decode((root / name).read_bytes()))
    return result, (time.perf_counter() - start) * 1000 / max(len(names), 1)


def model_speed(fp32: FacePipeline, int8: FacePipeline, root: Path, names: list[str], batch: int = 8
                ) -> dict[str, dict[str, float]]:
    """Milliseconds per sample of each model alone, FP32 vs INT8, on the same real inputs."""
    inputs = calibration_set([root / n for n in names], max_detector=batch, max_faces=batch)
    speed = {}
    for spec in fp32.manifest.pipeline_models():
        (blob,) = list(inputs.batches(spec.name, spec.input, batch))[:1]
        speed[spec.name] = {}
        for label, pipeline in (("fp32", fp32), ("int8", int8)):
            backend = pipeline.backends[spec.name]
            backend.infer({spec.input.name: blob})
            runs, start = 0, time.perf_counter()
            while time.perf_counter() - start < 2.0:
                backend.infer({spec.input.name: blob})
                runs += 1
            speed[spec.name][label] = (time.perf_counter() - start) * 1000 / (runs * len(blob))
    return speed


def stage_attribution(fp32: FacePipeline, int8: FacePipeline, photos: list[Path]) -> dict[str, dict[str, float]]:
    """One stage in INT8, the others in FP32: cosine of the embedding to the all-FP32 one, per swap."""
    swaps = {"recognizer": (fp32, fp32, int8), "landmarks": (fp32, int8, fp32), "detector": (int8, fp32, fp32),
             "all": (int8, int8, int8)}
    cosines: dict[str, list[float]] = {name: [] for name in swaps}
    for photo in photos:
        image = fp32.decode(photo.read_bytes())
        pixels, reference = image.pixels, largest_face(fp32, image)
        if reference is None:
            continue
        for name, (detector, landmarks, recognizer) in swaps.items():
            (found,) = detector.detector.detect([pixels])
            if not found:
                cosines[name].append(-1.0)
                continue
            (points,) = landmarks.landmarks.points([(pixels, found[0])])
            matrix = similarity_matrix(points, recognizer.recognizer.crop_size)
            cosines[name].append(float(recognizer.recognizer.embed([(pixels, matrix)])[0] @ reference))
    return {name: {"mean": float(np.mean(v)), "median": float(np.median(v)),
                   "below_0.5": int(np.sum(np.array(v) < 0.5)), "photos": len(v)} for name, v in cosines.items()}


def measure(lfw: Path, assets: Path, limit: int | None, attribution_every: int = 25) -> dict:
    train, test = read_pairs(lfw / "pairsDevTrain.tsv"), read_pairs(lfw / "pairsDevTest.tsv")
    names = sorted({n for p in train + test for n in (p.a, p.b)})[:limit]
    root = lfw / "images"
    fp32, int8 = FacePipeline(PipelineConfig(precision="fp32")), FacePipeline(PipelineConfig(precision="int8"))
    report: dict = {"photos": len(names)}
    embeddings = {}
    for label, pipeline in (("fp32", fp32), ("int8", int8)):
        embeddings[label], report[f"{label}_ms_per_photo"] = embed_all(pipeline, root, names)
    both = [n for n in names if embeddings["fp32"][n] is not None and embeddings["int8"][n] is not None]
    cosines = np.array([embeddings["fp32"][n] @ embeddings["int8"][n] for n in both])
    report["cosine_int8_fp32"] = {"mean": float(cosines.mean()), "min": float(cosines.min()),
                                  "p01": float(np.quantile(cosines, 0.01)), "photos": len(both)}
    chosen = {n for p in train + test for n in (p.a, p.b)} & set(names)
    train = [p for p in train if {p.a, p.b} <= chosen]
    test = [p for p in test if {p.a, p.b} <= chosen]
    for label in ("fp32", "int8"):
        found = embeddings[label]
        threshold = best_threshold(pair_scores(found, train), np.array([p.same for p in train]))
        test_scores, test_same = pair_scores(found, test), np.array([p.same for p in test])
        tar, genuine, impostor = tar_at_far(found, FAR)
        report[label] = {
            "no_face": sum(v is None for v in found.values()),
            "threshold": threshold,
            "devtest_accuracy": float(np.mean((test_scores >= threshold) == test_same)),
            "devtest_errors": int(np.sum((test_scores >= threshold) != test_same)),
            "devtest_pairs": len(test),
            "tar_at_far_1e-3": tar,
            "genuine_pairs": genuine,
            "impostor_pairs": impostor,
        }
    photos = sorted(p for p in assets.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    report["detection"] = detection_recall(fp32, int8, photos)
    report["model_ms_per_sample"] = model_speed(fp32, int8, root, names[:64])
    report["stage_attribution"] = stage_attribution(fp32, int8, [root / n for n in names[::attribution_every]])
    return report


def calibrate_on_devtrain(lfw: Path, method: str, roles: Collection[str] | None = None) -> None:
    """The Q/DQ models of the cache (of `roles` only, if given), calibrated with `method` on the DevTrain
    photos only."""
    train_photos = sorted({lfw / "images" / n for p in read_pairs(lfw / "pairsDevTrain.tsv") for n in (p.a, p.b)})
    write_qdq_models(calibration_set(train_photos), photos_digest(train_photos), method=method, roles=roles)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calibration.parity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, required=True, help="pairsDevTrain.tsv, pairsDevTest.tsv, images/")
    parser.add_argument("--assets", type=Path, default=paths.home() / "test-assets", help="photos for detection recall")
    parser.add_argument("--calibrate", action="store_true", help="rebuild the Q/DQ models from DevTrain photos first")
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=CALIBRATION_METHODS)
    parser.add_argument("--calibrate-only", action="store_true",
                        help="with --calibrate: write the Q/DQ models and stop (measure them with bench.accuracy)")
    parser.add_argument("--limit", type=int, default=None, help="measure on the first N photos only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.calibrate:
        calibrate_on_devtrain(args.lfw, args.method)
        if args.calibrate_only:
            return 0
    report = measure(args.lfw, args.assets, args.limit)
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
