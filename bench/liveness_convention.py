"""Measure the liveness model's input convention on NUAA dev instead of trusting a wrapper: channel order, the
crop's scale about the box, and which output class is "live" (the one whose probability separates best).

    python -m bench.liveness_convention [--nuaa DIR] [--out bench/results/liveness-convention.json]

For each convention: the ROC AUC of each class's probability as the live score over all frames, the lowest
per-subject AUC (a convention that works for seven people and fails the eighth is no convention), and the
margin: the lowest live frame's probability less the highest spoof frame's (positive: a threshold separates all).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.liveness_data import DATA_ROOT, largest_faces, nuaa_frames
from engine.liveness import MiniFasNetLiveness
from engine.pipeline import FacePipeline

SCALES = (1.0, 1.5, 2.0, 2.7, 3.5)
CHANNELS = ("rgb", "bgr")


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """The probability that a positive outscores a negative (ties count half): Mann-Whitney U over n*m."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def measure(nuaa: Path) -> dict:
    pipeline = FacePipeline()
    spec = pipeline.manifest.models[pipeline.manifest.pipeline.liveness]
    backend = pipeline.backends[spec.name]
    variants = [(channels, scale) for channels in CHANNELS for scale in SCALES]
    stages = {v: MiniFasNetLiveness(backend, replace(spec, input=replace(spec.input, channels=v[0]),
                                                     params={**spec.params, "crop_scale": v[1]})) for v in variants}
    probabilities: dict[tuple[str, float], list[np.ndarray]] = {v: [] for v in variants}
    labels, groups, missing = [], [], 0
    for frame, pixels, detection in largest_faces(pipeline, nuaa_frames(nuaa)):
        if detection is None:
            missing += 1
            continue
        labels.append(frame.live)
        groups.append(frame.group)
        for variant, stage in stages.items():
            probabilities[variant].append(stage.probabilities([(pixels, detection)])[0])
    live, subjects = np.array(labels), np.array(groups)
    rows = []
    for (channels, scale), found in probabilities.items():
        probs = np.stack(found)
        for cls in range(probs.shape[1]):
            per_subject = [auc(probs[subjects == s, cls], live[subjects == s]) for s in np.unique(subjects)]
            margin = probs[live, cls].min() - probs[~live, cls].max()
            rows.append({"channels": channels, "scale": scale, "class": cls, "auc": round(auc(probs[:, cls], live), 4),
                         "worstSubjectAuc": round(float(np.nanmin(per_subject)), 4), "margin": round(float(margin), 4)})
    rows.sort(key=lambda r: (-r["auc"], -r["worstSubjectAuc"], -r["margin"]))
    return {"frames": len(labels), "noFace": missing, "live": int(live.sum()), "spoof": int((~live).sum()),
            "conventions": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nuaa", type=Path, default=DATA_ROOT / "nuaa-dev")
    parser.add_argument("--out", type=Path, default=Path("bench/results/liveness-convention.json"))
    args = parser.parse_args(argv)
    report = measure(args.nuaa)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for row in report["conventions"][:12]:
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
