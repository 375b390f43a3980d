"""Verification accuracy on a pairs file, each pair compared as the API compares (largest face of the first
photo against the most similar face of the second): 10-fold (LFW protocol) or train-threshold/test, TAR at FAR.

    python -m bench.accuracy --root DIR --pairs FILE [--train FILE] [--json] [--plot ROC.png]

Pairs lines: `path_a<TAB>path_b<TAB>same[<TAB>fold]`. Without a fold column, contiguous tenths are the folds.
An image with no face makes its pair a mismatch (cosine -1), never a skip. TAR at FAR uses the cosine at
that FAR among all cross-identity pairs of the photos involved (identity = the photo's folder).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.embeddings import EmbeddedSet, cosine_at_far, embed_paths, impostor_cosines
from bench.profile import bench_config
from engine.pipeline import FacePipeline

FARS = [1e-3, 1e-4]


@dataclass(frozen=True)
class Pairs:
    a: list[Path]
    b: list[Path]
    same: np.ndarray
    folds: np.ndarray


def read_pairs(root: Path, pairs_file: Path) -> Pairs:
    rows = [line.rstrip("\n").split("\t") for line in pairs_file.read_text().splitlines() if line.strip()]
    count = len(rows)
    folds = [int(r[3]) if len(r) > 3 else i * 10 // count for i, r in enumerate(rows)]
    return Pairs(a=[root / r[0] for r in rows], b=[root / r[1] for r in rows],
                 same=np.array([r[2] == "1" for r in rows]), folds=np.array(folds))


def pair_cosines(pairs: Pairs, embedded: EmbeddedSet) -> np.ndarray:
    """As the API compares: the largest face of `a` against the most similar face of `b`; -1 if either has none."""
    index = embedded.index()
    cosines = []
    for a, b in zip(pairs.a, pairs.b, strict=True):
        probe, candidates = embedded.faces[index[a]], embedded.faces[index[b]]
        cosines.append(float(np.max(candidates @ probe[0])) if len(probe) and len(candidates) else -1.0)
    return np.array(cosines)


def best_threshold(cosines: np.ndarray, same: np.ndarray) -> float:
    """The cut that makes the fewest errors; midpoints between sorted scores are the candidates."""
    ordered = np.sort(cosines)
    candidates = np.concatenate([[ordered[0] - 1e-6], (ordered[1:] + ordered[:-1]) / 2, [ordered[-1] + 1e-6]])
    accuracy = [np.mean((cosines >= t) == same) for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def fold_accuracies(cosines: np.ndarray, pairs: Pairs) -> np.ndarray:
    result = []
    for fold in np.unique(pairs.folds):
        test = pairs.folds == fold
        threshold = best_threshold(cosines[~test], pairs.same[~test])
        result.append(np.mean((cosines[test] >= threshold) == pairs.same[test]))
    return np.array(result)


def photos_of(*pair_lists: Pairs | None) -> list[Path]:
    return sorted({path for pairs in pair_lists if pairs for path in (*pairs.a, *pairs.b)})


def evaluate(embedded: EmbeddedSet, pairs: Pairs, train: Pairs | None, plot: Path | None) -> dict:
    """The report, from embeddings of (at least) every photo the pairs name."""
    cosines = pair_cosines(pairs, embedded)
    folds = fold_accuracies(cosines, pairs)
    impostor_thresholds = cosine_at_far(impostor_cosines(embedded), FARS)
    positives = cosines[pairs.same]
    report = {
        "pairs": len(cosines),
        "accuracy": round(float(folds.mean()) * 100, 3),
        "accuracy_std": round(float(folds.std()) * 100, 3),
        "tar_at_far": {far: round(float(np.mean(positives >= t)) * 100, 2) for far, t in impostor_thresholds.items()},
        "cosine_at_far": impostor_thresholds,
        "no_face": int(embedded.no_face.sum()),
        "seconds_per_image": round(embedded.seconds_per_image, 4),
    }
    if train is not None:
        threshold = best_threshold(pair_cosines(train, embedded), train.same)
        predicted = cosines >= threshold
        report["train_threshold"] = {
            "threshold": round(threshold, 4),
            "accuracy": round(float(np.mean(predicted == pairs.same)) * 100, 3),
            "errors": int(np.sum(predicted != pairs.same)),
        }
    if plot is not None:
        plot_roc(cosines, pairs.same, plot)
    return report


def plot_roc(cosines: np.ndarray, same: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thresholds = np.sort(np.unique(cosines))[::-1]
    tar = [np.mean(cosines[same] >= t) for t in thresholds]
    far = [np.mean(cosines[~same] >= t) for t in thresholds]
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.plot(far, tar)
    axes.set_xscale("log")
    axes.set_xlabel("false accept rate")
    axes.set_ylabel("true accept rate")
    axes.set_title("ROC")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="folder the pair paths are relative to")
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--train", type=Path, help="pairs to choose the threshold on, measured on --pairs")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8", "int8-mixed"])
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--plot", type=Path, help="write a ROC plot (PNG) here")
    parser.add_argument("--json", action="store_true", help="one JSON object on the last line")
    args = parser.parse_args(argv)
    pipeline = FacePipeline(bench_config(backend=args.backend, precision=args.precision))
    pairs = read_pairs(args.root, args.pairs)
    train = read_pairs(args.root, args.train) if args.train else None
    embedded = embed_paths(pipeline, photos_of(pairs, train), progress=True)
    report = evaluate(embedded, pairs, train, args.plot)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
