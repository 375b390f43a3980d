"""SIGTERM: stop accepting, finish what is in flight, exit 0; logs are JSON lines without image data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from tests.http_helpers import b64, photo

REPO = Path(__file__).resolve().parent.parent


def _port(process: subprocess.Popen, lines: list[str]) -> int:
    """Read the JSON log until the 'listening' line, keeping every line for later checks."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        entry = json.loads(line)
        if entry["msg"] == "listening":
            return int(entry["port"])
    raise RuntimeError("server did not start: " + "".join(lines))


def test_sigterm_finishes_in_flight_requests_and_exits_cleanly(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "tests.serve_with_fakes", str(tmp_path)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    lines: list[str] = []
    try:
        key = process.stdout.readline().strip()
        url = f"http://127.0.0.1:{_port(process, lines)}"
        deadline = time.monotonic() + 60
        while requests.get(url + "/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        origin = b64(photo("sample1.jpg"))
        payload = {"originFace": origin, "targetFace": b64(photo("sample2.jpg"))}
        statuses: list[int] = []

        def compare() -> None:
            statuses.append(requests.post(url + "/modules/compare", json=payload, headers={"x-api-key": key},
                                          timeout=60).status_code)

        threads = [threading.Thread(target=compare) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(60)
        assert process.wait(60) == 0
        assert statuses == [200, 200, 200]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines.extend(process.stderr.read().splitlines(keepends=True))
    entries = [json.loads(line) for line in lines]
    requests_logged = [e for e in entries if e["msg"] == "request" and e["route"] == "/modules/compare"]
    assert len(requests_logged) == 3 and all(e["transactionId"] and e["status"] == 200 for e in requests_logged)
    assert entries[-1]["msg"] == "stopped"
    # The signal came while the compares were running: they were logged after it.
    order = [e["msg"] for e in entries]
    assert order.index("stopping") < max(i for i, e in enumerate(entries) if e in requests_logged)
    text = "".join(lines)
    assert origin[1000:1064] not in text and "base64" not in text
