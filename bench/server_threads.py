"""Where a served compare's CPU goes under load, thread by thread, over a fixed number of compares.

    python -m bench.server_threads [--compares 400] [--concurrency 16] [--checkout DIR] [--server-option K=JSON]

Starts `facecompare serve` on loopback (as bench.latency does; `--checkout`: another checkout's code), warms it
up, then sends `--compares` compares of bench.latency's pairs at `--concurrency` and reports, per compare: the
server's CPU ms, page faults, voluntary switches and idle-core share (bench.latency's counters), and each of its
threads' CPU ms and voluntary / involuntary switches, summed by the thread's Python name less its number
("compare", "batcher-detector", "recognizer", "MainThread"; "native" for threads Python did not start), the
names read with `py-spy dump`. Why: the compares/s at c=16 on a shared machine say more about the other jobs
than about the server; CPU per compare and where it is spent do not (docs/PERFORMANCE.md, "Eighth round: c16").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from bench.latency import WARM_UP, make_pairs, own_server, peak_rss_mb, pid_listening_on, run_level, server_settings
from tests.service_process import REPO

PY_SPY = Path(sys.executable).with_name("py-spy")


def thread_counters(pid: int) -> dict[int, tuple[float, int, int]]:
    """Each thread's CPU ms, voluntary and involuntary switches so far; a thread that ends while read is left out."""
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = (task / "status").read_text()
        except OSError:
            continue
        switches = [int(re.search(rf"^{kind}_ctxt_switches:\s+(\d+)", status, re.MULTILINE).group(1))
                    for kind in ("voluntary", "nonvoluntary")]
        found[int(task.name)] = ((int(stat[11]) + int(stat[12])) * tick_ms, *switches)
    return found


def thread_names(pid: int) -> dict[int, str]:
    """The Python threads' names by native id, as `py-spy dump` gives them, their number dropped."""
    dump = subprocess.run([str(PY_SPY), "dump", "--pid", str(pid)], capture_output=True, text=True).stdout
    return {int(tid): name.rstrip("0123456789").rstrip("_")
            for tid, name in re.findall(r'Thread (\d+) \([^)]*\): "([^"]+)"', dump)}


def by_thread(pid: int, before: dict[int, tuple[float, int, int]], compares: int) -> dict[str, dict[str, float]]:
    names, after = thread_names(pid), thread_counters(pid)
    totals: dict[str, list[float]] = {}
    for tid, counters in after.items():
        spent = [now - then for now, then in zip(counters, before.get(tid, (0.0, 0, 0)), strict=True)]
        total = totals.setdefault(names.get(tid, "native"), [0.0, 0.0, 0.0, 0.0])
        total[0] += 1
        for index, value in enumerate(spent):
            total[index + 1] += value
    return {name: {"threads": int(t[0]), "cpu_ms": round(t[1] / compares, 2), "voluntary": round(t[2] / compares, 2),
                   "involuntary": round(t[3] / compares, 2)}
            for name, t in sorted(totals.items(), key=lambda item: -item[1][1])}


def measure(args: argparse.Namespace) -> dict:
    pairs = make_pairs(group_every=4)
    with own_server(args.checkout, args.server_option, "fc-threads-") as (server, key):
        pid = pid_listening_on(server.port)
        if pid is None:
            raise RuntimeError("the server's pid was not found")
        asyncio.run(run_level(server.url, key, pairs, args.concurrency, 3600, 6 * WARM_UP, None, pid))
        before = thread_counters(pid)
        stats = asyncio.run(run_level(server.url, key, pairs, args.concurrency, 3600, args.compares, None, pid,
                                      sample_runnable=True))
        threads = by_thread(pid, before, args.compares)
        rss = peak_rss_mb(pid)
    return {"compares": args.compares, "concurrency": args.concurrency,
            "server_options": server_settings(args.server_option),
            "checkout": str(args.checkout or REPO), "rps": stats["rps"], "errors": stats["errors"],
            "server_cpu_ms_per_compare": stats.get("server_cpu_ms_per_compare"),
            "server_minor_faults_per_compare": stats.get("server_minor_faults_per_compare"),
            "server_waits_per_compare": stats.get("server_waits_per_compare"),
            "below_cores_share": stats["server_runnable_threads"]["below_cores_share"],
            "client_cpu_ms_per_compare": stats["client_cpu_ms_per_compare"], "peak_rss_mb": rss, "threads": threads}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compares", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--checkout", type=Path, help="serve the code of this checkout (e.g. a worktree of main)")
    parser.add_argument("--server-option", action="append", default=[], metavar="NAME=JSON")
    print(json.dumps(measure(parser.parse_args(argv))))


if __name__ == "__main__":
    main()
