"""What the SQLite calls on a synchronous compare's path cost: the key lookup (`WorkspaceStore.authenticate`)
and keeping the result for GET (`JobStore.record`), wall and CPU ms per call.

    python -m bench.record [--calls 300] [--json]

On fresh stores in a temporary directory (on the same disk as the system's temporary files); the body is
a compare answer's size. Run from another checkout (PYTHONPATH) to compare its stores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from service.jobs import JobStore
from service.workspaces import WorkspaceStore

BODY = {"statusCode": 200, "apiType": "compare_face", "transactionId": "t",
        "result": {"faceMatch": {"similarity": 91.5, "isMatch": True}, "faceInfo": {"x": 1, "y": 2}}}


def timed(call: Callable[[int], object], calls: int) -> dict[str, float]:
    started, cpu_started = time.perf_counter(), time.process_time()
    for index in range(calls):
        call(index)
    return {"wall_ms_per_call": round((time.perf_counter() - started) * 1000 / calls, 3),
            "cpu_ms_per_call": round((time.process_time() - cpu_started) * 1000 / calls, 3)}


def measure(calls: int) -> dict[str, float | dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="fc-record-") as tmp:
        jobs, workspaces = JobStore(Path(tmp)), WorkspaceStore(Path(tmp))
        key = workspaces.add("bench")[1]
        return {"calls": calls, **timed(lambda index: jobs.record(f"t-{index}", 1, BODY), calls),
                "authenticate": timed(lambda _: workspaces.authenticate(key), calls)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.calls)
    lookup = result["authenticate"]
    print(json.dumps(result) if args.json else f"record: {result['wall_ms_per_call']} ms wall, "
          f"{result['cpu_ms_per_call']} ms CPU; key lookup: {lookup['wall_ms_per_call']} ms wall, "
          f"{lookup['cpu_ms_per_call']} ms CPU ({args.calls} calls each)")


if __name__ == "__main__":
    main()
