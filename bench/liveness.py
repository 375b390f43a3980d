"""Liveness error rates and cost: NUAA dev leaving each subject out, replay dev per session, ms per face.

    python -m bench.liveness [--nuaa DIR] [--replay DIR] [--out bench/results/liveness.json]
                             [--plot bench/results/liveness-roc.svg] [--before TREE] [--rounds 8]

APCER: the share of spoof frames accepted as live; BPCER: the share of live frames refused. A frame whose
face the detector misses counts as refused (no face is never live), so it is a BPCER error for a live frame.

The threshold rule (THRESHOLD_RULE) is applied to the subjects it may see: leaving one NUAA subject out, the
threshold chosen on the other seven judges the eighth, and the pooled errors are the figure that holds for
new people. The shipped threshold is the rule applied to all eight subjects. Replay dev is judged at the
shipped threshold and never tunes it.

Cost: the liveness stage's milliseconds per face in process (ONNX Runtime on the CPU, one face and eight a
call), beside a MobileFaceNet embedding timed the same way as a yardstick; with `--before TREE` (a
`git worktree` of the commit before liveness) a compare's milliseconds with the flag off against that tree's,
in two live processes whose rounds alternate, with their answers compared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from bench.liveness_data import DATA_ROOT, Frame, largest_faces, nuaa_frames, replay_frames
from engine.align import similarity_matrix
from engine.liveness import LivenessCheck
from engine.pipeline import FacePipeline

# The error rates the threshold aims at on the subjects it sees (the goals: APCER 1%, BPCER 2%).
APCER_GOAL = 0.01
BPCER_GOAL = 0.02
THRESHOLD_RULE = (
    "t_a = the lowest score that keeps APCER <= 1% (a spoof is accepted at score >= t), t_b = the highest that "
    "keeps BPCER <= 2%; both met (t_a <= t_b): the midpoint of t_a and t_b in log-odds; else t_a (no false "
    "accepts come first)")
# What a workspace's --liveness-threshold trades: every set judged at these thresholds too.
SWEEP = (5.0, 10.0, 25.0, 50.0)
# Scores are shown with two decimals: log-odds of 0.01 and 99.99 bound the midpoint.
SCORE_FLOOR, SCORE_CEILING = 0.01, 99.99


def _log_odds(score: float) -> float:
    p = min(max(score, SCORE_FLOOR), SCORE_CEILING) / 100.0
    return float(np.log(p / (1 - p)))


def choose_threshold(scores: np.ndarray, live: np.ndarray) -> float:
    """THRESHOLD_RULE on these frames (NaN score: no face). Accepted means score >= threshold."""
    spoof = np.sort(np.nan_to_num(scores[~live], nan=-1.0))
    live_scores = np.sort(np.nan_to_num(scores[live], nan=-1.0))
    # APCER <= goal: at most floor(goal * n) spoofs at or above t, so t just above the next-highest spoof.
    allowed = int(np.floor(APCER_GOAL * len(spoof)))
    t_a = float(np.nextafter(spoof[len(spoof) - 1 - allowed], np.inf)) if len(spoof) else 0.0
    # BPCER <= goal: at most floor(goal * n) live frames below t.
    refused = int(np.floor(BPCER_GOAL * len(live_scores)))
    t_b = float(live_scores[refused]) if len(live_scores) else 100.0
    if t_a > t_b:
        return round(max(t_a, 0.0), 2)
    midpoint = (_log_odds(max(t_a, SCORE_FLOOR)) + _log_odds(t_b)) / 2
    return round(float(100.0 / (1.0 + np.exp(-midpoint))), 2)


def error_rates(scores: np.ndarray, live: np.ndarray, threshold: float) -> dict:
    accepted = np.nan_to_num(scores, nan=-1.0) >= threshold
    spoofs, lives = int((~live).sum()), int(live.sum())
    return {"apcer": round(float(accepted[~live].mean()), 4) if spoofs else None,
            "bpcer": round(float((~accepted[live]).mean()), 4) if lives else None,
            "spoofAccepted": int(accepted[~live].sum()), "spoofs": spoofs,
            "liveRefused": int((~accepted[live]).sum()), "lives": lives}


def score_frames(pipeline: FacePipeline, frames: list[Frame]) -> tuple[np.ndarray, list[dict]]:
    """Each frame's liveness score (NaN: no face) and its box, in the frames' order."""
    scores, faces = [], []
    for frame, pixels, detection in largest_faces(pipeline, frames):
        if detection is None:
            scores.append(np.nan)
            faces.append({"path": str(frame.path), "box": None})
            continue
        scores.append(pipeline.liveness_scores([(pixels, detection)])[0])
        box = [round(v) for v in (detection.x1, detection.y1, detection.width, detection.height)]
        faces.append({"path": str(frame.path), "box": box, "imageWidth": pixels.shape[1]})
    return np.array(scores, dtype=np.float64), faces


def leave_subjects_out(scores: np.ndarray, live: np.ndarray, groups: np.ndarray) -> dict:
    """Each subject judged at the threshold chosen without it; errors pooled over all held-out frames."""
    accepted = np.zeros(len(scores), dtype=bool)
    thresholds = {}
    for subject in np.unique(groups):
        held_out = groups == subject
        thresholds[str(subject)] = choose_threshold(scores[~held_out], live[~held_out])
        accepted[held_out] = np.nan_to_num(scores[held_out], nan=-1.0) >= thresholds[str(subject)]
    per_subject = {s: error_rates(scores[groups == s], live[groups == s], t) for s, t in thresholds.items()}
    return {"thresholds": thresholds, "perSubject": per_subject,
            "apcer": round(float(accepted[~live].mean()), 4), "bpcer": round(float((~accepted[live]).mean()), 4),
            "spoofAccepted": int(accepted[~live].sum()), "liveRefused": int((~accepted[live]).sum())}


def roc_points(scores: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(APCER, 1 - BPCER) at every distinct score as the threshold."""
    values = np.nan_to_num(scores, nan=-1.0)
    cuts = np.concatenate([[np.inf], np.unique(values)[::-1]])
    return (np.array([(values[~live] >= c).mean() for c in cuts]),
            np.array([(values[live] >= c).mean() for c in cuts]))


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path: Path) -> None:
    """Left: the error trade-off of each set, a dot at the shipped threshold. Right: every frame's score (log-odds
    axis), live and spoof apart, with the threshold: how wide the margin is, and who falls on the wrong side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (trade_off, spread) = plt.subplots(1, 2, figsize=(11, 5))
    rng = np.random.default_rng(0)
    for index, (label, (scores, live, threshold)) in enumerate(curves.items()):
        apcer, tpr = roc_points(scores, live)
        line = trade_off.plot(np.maximum(apcer, 1e-3), 1 - tpr, drawstyle="steps-post", label=label)[0]
        at = error_rates(scores, live, threshold)
        trade_off.plot(max(at["apcer"], 1e-3), at["bpcer"], "o", color=line.get_color())
        shown = np.clip(np.nan_to_num(scores, nan=0.0) / 100.0, 1e-4, 1 - 1e-4)
        for offset, kind, marker in ((0.0, live, "o"), (0.4, ~live, "x")):
            x = index + offset + rng.uniform(-0.12, 0.12, int(kind.sum()))
            spread.scatter(x, shown[kind], s=8, marker=marker, color=line.get_color(), alpha=0.6)
        spread.axhline(threshold / 100.0, color="black", linewidth=1)
    trade_off.set_xscale("log")
    trade_off.set_xlim(1e-3, 1)
    trade_off.set_ylim(-0.01, 1)
    trade_off.axvline(APCER_GOAL, color="grey", linestyle=":", linewidth=1)
    trade_off.axhline(BPCER_GOAL, color="grey", linestyle=":", linewidth=1)
    trade_off.set_xlabel("APCER (spoofs accepted; 0 drawn at 1e-3)")
    trade_off.set_ylabel("BPCER (live refused)")
    trade_off.set_title("error trade-off (dot: shipped threshold)")
    trade_off.legend(loc="upper right")
    spread.set_yscale("logit")
    spread.set_xticks([i + 0.2 for i in range(len(curves))], [f"{label.split(' (')[0]}\nlive o, spoof x"
                                                              for label in curves])
    spread.set_ylabel("liveness score / 100 (log-odds axis; no face at the bottom)")
    spread.set_title("every frame's score; line: shipped threshold")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _timed(call: Callable[[], object], runs: int, per_call: int) -> dict:
    for _ in range(10):
        call()
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.thread_time()
        call()
        wall.append((time.perf_counter() - started) * 1000 / per_call)
        cpu.append((time.thread_time() - started_cpu) * 1000 / per_call)
    return {"msPerFaceMedian": round(statistics.median(wall), 3),
            "msPerFaceP90": round(float(np.percentile(wall, 90)), 3),
            "cpuMsPerFaceMedian": round(statistics.median(cpu), 3)}


def stage_cost(pipeline: FacePipeline, repeat: int = 200) -> dict:
    """Milliseconds per face for the liveness stage alone (crop, resize, inference, softmax), one face a call and
    eight a call: wall time, and this thread's CPU time (a one-thread ONNX Runtime model runs in the caller's
    thread), which other processes on a busy machine inflate less. The yardstick, timed the same way in the same
    run: one MobileFaceNet embedding of an aligned face (its warp included), whose cost docs/PERFORMANCE.md gives."""
    from tests.assets import asset_path

    image = pipeline.decode(asset_path("obama.jpg").read_bytes())
    (found,) = pipeline.detector.detect([image.pixels])
    (points,) = pipeline.landmarks.points([(image.pixels, found[0])])
    aligned = (image.pixels, similarity_matrix(points, pipeline.recognizer.crop_size))
    mobilefacenet = pipeline.recognizer.members[-1]
    report: dict = {"threads": pipeline.threads, "repeat": repeat}
    for faces in (1, 8):
        batch = [(image.pixels, found[0])] * faces
        report[f"batchOf{faces}"] = _timed(partial(pipeline.liveness_scores, batch), repeat // faces, faces)
    report["yardstick"] = {"model": mobilefacenet.spec.name,
                           **_timed(lambda: mobilefacenet.embed([aligned]), repeat, 1)}
    return report


# Run in each tree (this one and `--before`) as `python -c`: the tree's own code, the same venv. Each line on
# stdin is a round: `N FLAG` times N compares (FLAG 1: with the liveness check, this tree only).
COMPARE_TIMER = r"""
import json, sys, time
from engine.pipeline import FacePipeline
from service.response import compare_body
from tests.assets import asset_path
pipeline = FacePipeline()
origin, target = (pipeline.decode(asset_path(n).read_bytes()) for n in ("obama.jpg", "obama2.jpg"))
def run(flag):
    if flag:
        from engine.liveness import LivenessCheck
        return pipeline.compare_images(origin, target, None, LivenessCheck())
    return pipeline.compare_images(origin, target)
for _ in range(5):
    run(False)
print(json.dumps(compare_body(run(False), "t")), flush=True)
for line in sys.stdin:
    count, flag = (int(v) for v in line.split())
    times = []
    for _ in range(count):
        started = time.perf_counter()
        run(flag)
        times.append((time.perf_counter() - started) * 1000)
    print(json.dumps(times), flush=True)
"""


def compare_cost(before: Path, rounds: int, per_round: int = 20) -> dict:
    """Median ms of a compare (two decoded photos, one face each): before, after with the flag off, after with
    it on; rounds alternate among the three so a busy machine slows them alike."""
    trees = {"before": before, "after": Path(__file__).resolve().parents[1]}
    processes = {name: subprocess.Popen([sys.executable, "-c", COMPARE_TIMER], cwd=tree, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE) for name, tree in trees.items()}
    answers = {name: json.loads(p.stdout.readline()) for name, p in processes.items()}
    times: dict[str, list[float]] = {"before": [], "after, flag off": [], "after, flag on": []}
    runs = (("before", "before", 0), ("after, flag off", "after", 0), ("after, flag on", "after", 1))
    for _ in range(rounds):
        for label, name, flag in runs:
            processes[name].stdin.write(f"{per_round} {flag}\n")
            processes[name].stdin.flush()
            times[label] += json.loads(processes[name].stdout.readline())
    for process in processes.values():
        process.stdin.close()
        process.wait()
    medians = {label: round(statistics.median(values), 3) for label, values in times.items()}
    return {"msPerCompareMedian": medians, "compares": rounds * per_round,
            "flagOffOverBefore": round(medians["after, flag off"] / medians["before"], 3),
            "flagOnOverFlagOff": round(medians["after, flag on"] / medians["after, flag off"], 3),
            "sameAnswerWithFlagOff": answers["before"] == answers["after"]}


def _machine() -> dict:
    """The CPU model, the cores this process may use, and the load average as the costs were measured."""
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "loadAverage": [round(v, 2) for v in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nuaa", type=Path, default=DATA_ROOT / "nuaa-dev")
    parser.add_argument("--replay", type=Path, default=DATA_ROOT / "replay-dev")
    parser.add_argument("--out", type=Path, default=Path("bench/results/liveness.json"))
    parser.add_argument("--plot", type=Path, default=Path("bench/results/liveness-roc.svg"))
    parser.add_argument("--before", type=Path, default=None, help="a worktree of the commit before liveness")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--cost-only", action="store_true", help="only the costs (to --out): no data needed")
    args = parser.parse_args(argv)

    pipeline = FacePipeline()
    if args.cost_only:
        report = {"cost": {"stage": stage_cost(pipeline)}, "machine": _machine()}
        if args.before:
            report["cost"]["compare"] = compare_cost(args.before, args.rounds)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
        print(json.dumps(report, indent=1))
        return 0
    shipped = pipeline.resolve_liveness(LivenessCheck()).threshold
    nuaa = nuaa_frames(args.nuaa)
    scores, faces = score_frames(pipeline, nuaa)
    live, groups = np.array([f.live for f in nuaa]), np.array([f.group for f in nuaa])
    replay = replay_frames(args.replay)
    replay_scores, replay_faces = score_frames(pipeline, replay)
    replay_live, sessions = np.array([f.live for f in replay]), np.array([f.group for f in replay])

    report = {
        "machine": _machine(),
        "rule": THRESHOLD_RULE,
        "shippedThreshold": shipped,
        "ruleOnAllNuaaSubjects": choose_threshold(scores, live),
        "nuaa": {"frames": len(nuaa), "noFace": int(np.isnan(scores).sum()),
                 "leaveOneSubjectOut": leave_subjects_out(scores, live, groups),
                 "atShippedThreshold": error_rates(scores, live, shipped),
                 "liveScoreMin": float(np.nanmin(scores[live])), "spoofScoreMax": float(np.nanmax(scores[~live]))},
        "replay": {"atShippedThreshold": {str(s): error_rates(replay_scores[sessions == s], replay_live[sessions == s],
                                                             shipped) for s in np.unique(sessions)},
                   "frames": [{**face, "live": f.live, "score": None if np.isnan(v) else float(v)}
                              for f, face, v in zip(replay, replay_faces, replay_scores, strict=True)]},
        "nuaaMisjudged": [{**face, "live": f.live, "score": None if np.isnan(v) else float(v)}
                          for f, face, v in zip(nuaa, faces, scores, strict=True)
                          if np.isnan(v) or (v >= shipped) != f.live],
        "sweep": {str(t): {"nuaa": error_rates(scores, live, t),
                           **{str(s): error_rates(replay_scores[sessions == s], replay_live[sessions == s], t)
                              for s in np.unique(sessions)}} for t in (*SWEEP, shipped)},
        "cost": {"stage": stage_cost(pipeline)},
    }
    if args.before:
        report["cost"]["compare"] = compare_cost(args.before, args.rounds)
    plot_roc({"NUAA dev (8 subjects)": (scores, live, shipped),
              "replay dev (apfol, lestari, td1, td2)": (replay_scores, replay_live, shipped)}, args.plot)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    summary = {k: report[k] for k in ("shippedThreshold", "ruleOnAllNuaaSubjects")}
    summary["nuaa"] = {k: v for k, v in report["nuaa"].items() if k != "leaveOneSubjectOut"}
    summary["loso"] = {k: v for k, v in report["nuaa"]["leaveOneSubjectOut"].items() if k != "perSubject"}
    summary["replay"] = report["replay"]["atShippedThreshold"]
    summary["cost"] = report["cost"]
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
