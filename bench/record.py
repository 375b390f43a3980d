"""What keeping a synchronous compare's result for GET costs: `JobStore.record`, wall and CPU ms per call.

    python -m bench.record [--calls 300] [--json]

On a fresh store in a temporary directory (on the same disk as the system's temporary files); the body is
a compare answer's size. Run from another checkout (PYTHONPATH) to compare its store.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from service.jobs import JobStore

BODY = {"statusCode": 200, "apiType": "compare_face", "transactionId": "t",
        "result": {"faceMatch": {"similarity": 91.5, "isMatch": True}, "faceInfo": {"x": 1, "y": 2}}}


def measure(calls: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="fc-record-") as tmp:
        jobs = JobStore(Path(tmp))
        started, cpu_started = time.perf_counter(), time.process_time()
        for index in range(calls):
            jobs.record(f"t-{index}", 1, BODY)
        return {"calls": calls, "wall_ms_per_call": round((time.perf_counter() - started) * 1000 / calls, 3),
                "cpu_ms_per_call": round((time.process_time() - cpu_started) * 1000 / calls, 3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.calls)
    print(json.dumps(result) if args.json else f"{result['wall_ms_per_call']} ms wall, "
          f"{result['cpu_ms_per_call']} ms CPU per record ({args.calls} calls)")


if __name__ == "__main__":
    main()
