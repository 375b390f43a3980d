"""Every face box the pipeline finds in the test photos and the similarity of test pairs, full precision, as
JSON: run before and after a change that must not move the CPU numbers, and compare the files. `answers`
holds each pair's whole answer (both faces' boxes, similarity, quality), the pairs `bench.latency` sends
(1920x1080 portraits, group photos) included.

    python -m bench.photo_boxes > bench/results/NAME.json
"""

from __future__ import annotations

import dataclasses
import json
import sys

from bench.latency import make_pairs
from engine.pipeline import FacePipeline
from tests.assets import asset_path, fetch_all

PAIRS = [("obama.jpg", "obama2.jpg"), ("obama.jpg", "obama3.jpg"), ("obama.jpg", "biden.jpg"),
         ("biden.jpg", "sample1.jpg"), ("obama2.jpg", "sample2.jpg"), ("obama_partial_face.jpg", "obama.jpg")]


def main() -> int:
    pipeline = FacePipeline()
    boxes = {}
    for path in sorted(fetch_all(), key=lambda p: p.name):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        image = pipeline.decode(asset_path(path.name).read_bytes())
        (found,) = pipeline.detector.detect([image.pixels])
        boxes[path.name] = [[d.x1, d.y1, d.x2, d.y2, d.score] for d in found]
    similarity, answers = {}, {}
    for origin, target in PAIRS:
        result = pipeline.compare(asset_path(origin).read_bytes(), asset_path(target).read_bytes())
        similarity[f"{origin} / {target}"] = result.match.similarity if result.match else None
        answers[f"{origin} / {target}"] = dataclasses.asdict(result)
    for index, pair in enumerate(make_pairs(group_every=4)):
        answers[f"bench.latency pair {index} ({pair.kind})"] = dataclasses.asdict(pipeline.compare(pair.origin,
                                                                                                   pair.target))
    print(json.dumps({"boxes": boxes, "similarity": similarity, "answers": answers}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
