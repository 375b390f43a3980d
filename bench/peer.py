"""Ours against `face_recognition` (dlib), the peer a user would pick, on the same pairs in the same run.

    python -m bench.peer [--rounds 2] [--venv DIR] [--lfw-root DIR --lfw-pairs FILE [--lfw-train FILE]] [--json]

The peer lives in its own virtual environment (default `$FACECOMPARE_HOME/peer-venv`), made here with
`python -m venv` and pip on first use: the prebuilt `dlib-bin` wheel stands in for dlib (which would be
built from source), so `face_recognition` itself is installed without its dependency on `dlib`. Both sides
compare in process (no HTTP): the peer in a worker process of its own (bench/peer_worker.py) that times
itself, ours in this one. Wall time and CPU time are both reported: ours runs on both cores, dlib's HOG on
one, so wall time depends on how many cores are free at the moment, CPU time (what each compare costs)
much less.

Two methods, both in every round of one run, so their figures share the load. Compare by compare (the
top-level figures, the only method before session 5): the pairs alternate between the two sides, so a busy
machine slows both alike, but each of our compares then runs alone after 2 s of dlib in another process,
with its caches cold, which costs ours much more than dlib's 2 s (session 4: a fast-profile compare
56-58 ms there against 37 back to back; session 5: 15-20% more CPU than in blocks). In warm blocks
(`blocks`): each side compares the six pairs in a block of its own after one untimed compare, the blocks
alternate (ours first in even rounds, the peer's in odd), so both sides are timed warm, as a service that
compares one request after another runs. The old figure stays beside the new one. Each method also gives
our compares' minor page faults and context switches (`bench.counters`): the cold one's extra cost is
neither (docs/PERFORMANCE.md, "Sixth round: cold compares"; `bench.cold` times it alone).
With `--lfw-*`, the peer's verification accuracy on the LFW development pairs is measured too: the
threshold chosen on `--lfw-train` (else 10-fold on the pairs), and at the library's default 0.6.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.accuracy import Pairs, best_threshold, fold_accuracies, read_pairs
from bench.counters import measured
from bench.latency import PORTRAITS
from bench.photos import full_hd_jpeg
from bench.profile import bench_config
from engine.pipeline import FacePipeline
from models import paths

PEER_PACKAGES = ["dlib-bin==20.0.1.post1", "face_recognition_models==0.3.0", "numpy", "Pillow", "Click>=6.0"]
PEER = "face_recognition==1.3.0"
WORKER = Path(__file__).with_name("peer_worker.py")
DEFAULT_DISTANCE = 0.6


def peer_python(venv: Path) -> Path:
    """The peer venv's interpreter, with face_recognition installed in it on first use."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import face_recognition"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing face_recognition into {venv} ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *PEER_PACKAGES], check=True)
    subprocess.run([*pip, "--no-deps", PEER], check=True)
    subprocess.run(probe, check=True)
    return python


class Peer:
    """The worker process in the peer's venv; each request answered with the peer's own timing."""

    def __init__(self, python: Path) -> None:
        self._process = subprocess.Popen([str(python), str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         text=True)

    def ask(self, **request: str) -> dict:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the peer worker exited")
        return json.loads(line)

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(60)


OUR_COUNTERS = ("minor_faults", "voluntary_switches", "involuntary_switches")


class Timings:
    """Each side's wall and CPU ms per compare, one method's; ours' page faults and context switches too."""

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = {"ours": [], "peer": []}
        self.cpu: dict[str, list[float]] = {"ours": [], "peer": []}
        self.counters: dict[str, list[float]] = {name: [] for name in OUR_COUNTERS}

    def add(self, side: str, figures: dict[str, float]) -> None:
        self.ms[side].append(figures["ms"])
        self.cpu[side].append(figures["cpu_ms"])
        for name in OUR_COUNTERS if side == "ours" else ():
            self.counters[name].append(figures[name])

    def summary(self) -> dict:
        ours, theirs = statistics.median(self.ms["ours"]), statistics.median(self.ms["peer"])
        ours_c, theirs_c = statistics.median(self.cpu["ours"]), statistics.median(self.cpu["peer"])
        return {"ours_ms_per_compare": round(ours, 2), "peer_ms_per_compare": round(theirs, 2),
                "ratio": round(theirs / ours, 1), "compares": len(self.ms["ours"]),
                "ours_cpu_ms_per_compare": round(ours_c, 2), "peer_cpu_ms_per_compare": round(theirs_c, 2),
                "cpu_ratio": round(theirs_c / ours_c, 1),
                **{f"ours_{name}_per_compare": statistics.median(self.counters[name]) for name in OUR_COUNTERS}}


def speed(pipeline: FacePipeline, peer: Peer, rounds: int) -> dict:
    """Median ms per compare of every pair of the 1920x1080 portraits, by both methods (module docstring): the
    top-level figures compare by compare, alternating ours and the peer's; `blocks` each side's compares in a
    block of their own, warmed up, the blocks alternating. Each round runs both methods."""
    interleaved, blocks = Timings(), Timings()
    with tempfile.TemporaryDirectory(prefix="fc-peer-") as tmp:
        files = {}
        for name in PORTRAITS:
            files[name] = Path(tmp) / name
            files[name].write_bytes(full_hd_jpeg(name))
        pairs = list(itertools.combinations(PORTRAITS, 2))

        def ours(a: str, b: str) -> dict[str, float]:
            def compare() -> None:
                pipeline.compare(files[a].read_bytes(), files[b].read_bytes())
            return measured(compare, threads=False)  # nothing else before the compare: the method as it was

        def theirs(a: str, b: str) -> dict[str, float]:
            answer = peer.ask(op="compare", origin=str(files[a]), target=str(files[b]))
            return {"ms": answer["ms"], "cpu_ms": answer["cpu_ms"]}

        sides = {"ours": ours, "peer": theirs}
        for compare in sides.values():
            compare(*pairs[0])
        for round_ in range(rounds):
            for a, b in pairs:
                interleaved.add("ours", ours(a, b))
                interleaved.add("peer", theirs(a, b))
            for side in ("ours", "peer") if round_ % 2 == 0 else ("peer", "ours"):
                sides[side](*pairs[-1])  # the block's warm-up, not timed, for each side alike
                for a, b in pairs:
                    blocks.add(side, sides[side](a, b))
    return {**interleaved.summary(), "blocks": blocks.summary()}


def peer_scores(pairs: Pairs, faces: dict[Path, np.ndarray]) -> np.ndarray:
    """Minus the distance of `a`'s largest face to `b`'s nearest face (higher is more alike); -inf without faces."""
    scores = []
    for a, b in zip(pairs.a, pairs.b, strict=True):
        probe, candidates = faces[a], faces[b]
        scores.append(-float(np.linalg.norm(candidates - probe[0], axis=1).min())
                      if len(probe) and len(candidates) else -np.inf)
    return np.array(scores)


def accuracy(peer: Peer, root: Path, pairs_file: Path, train_file: Path | None) -> dict:
    pairs = read_pairs(root, pairs_file)
    train = read_pairs(root, train_file) if train_file else None
    images = sorted({*pairs.a, *pairs.b, *(train.a if train else []), *(train.b if train else [])})
    faces: dict[Path, np.ndarray] = {}
    started = time.perf_counter()
    for count, path in enumerate(images, 1):
        encodings = peer.ask(op="encode", path=str(path))["encodings"]
        faces[path] = np.array(encodings, dtype=np.float64).reshape(-1, 128)
        if count % 500 == 0:
            print(f"  peer encoded {count}/{len(images)}", file=sys.stderr, flush=True)
    scores = peer_scores(pairs, faces)
    finite = np.where(np.isfinite(scores), scores, -10.0)
    report = {
        "pairs": len(scores),
        "accuracy_10fold": round(float(fold_accuracies(finite, pairs).mean()) * 100, 3),
        "accuracy_at_0.6": round(float(np.mean((finite >= -DEFAULT_DISTANCE) == pairs.same)) * 100, 3),
        "no_face": sum(len(f) == 0 for f in faces.values()),
        "seconds_per_image": round((time.perf_counter() - started) / max(len(images), 1), 4),
    }
    if train is not None:
        train_scores = peer_scores(train, faces)
        threshold = best_threshold(np.where(np.isfinite(train_scores), train_scores, -10.0), train.same)
        predicted = finite >= threshold
        report["train_threshold"] = {"distance": round(-threshold, 4),
                                     "accuracy": round(float(np.mean(predicted == pairs.same)) * 100, 3),
                                     "errors": int(np.sum(predicted != pairs.same))}
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="times each of the six pairs is compared by each")
    parser.add_argument("--venv", type=Path, default=None, help="the peer's venv (default $FACECOMPARE_HOME/peer-venv)")
    parser.add_argument("--lfw-root", type=Path)
    parser.add_argument("--lfw-pairs", type=Path)
    parser.add_argument("--lfw-train", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    venv = args.venv or Path(os.environ.get("FACECOMPARE_PEER_VENV", paths.home() / "peer-venv"))
    peer = Peer(peer_python(venv))
    try:
        result = speed(FacePipeline(bench_config()), peer, args.rounds)
        if args.lfw_root and args.lfw_pairs:
            result["peer_accuracy"] = accuracy(peer, args.lfw_root, args.lfw_pairs, args.lfw_train)
    finally:
        peer.close()
    if args.json:
        print(json.dumps(result))
    else:
        for method, figures in (("compare by compare", result), ("in warm blocks", result["blocks"])):
            print(f"{method}: ours {figures['ours_ms_per_compare']} ms, face_recognition "
                  f"{figures['peer_ms_per_compare']} ms per compare: {figures['ratio']}x; CPU time "
                  f"{figures['ours_cpu_ms_per_compare']} ms against {figures['peer_cpu_ms_per_compare']} ms: "
                  f"{figures['cpu_ratio']}x")
        if "peer_accuracy" in result:
            print(f"face_recognition on LFW: {result['peer_accuracy']}")


if __name__ == "__main__":
    main()
