"""SIGTERM: stop accepting, finish what is in flight, exit 0; logs are JSON lines without image data."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import requests

from tests.http_helpers import b64, photo
from tests.service_process import ServiceProcess

IN_FLIGHT = 12


def test_sigterm_finishes_in_flight_requests_and_exits_cleanly(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path / "data") as server:
        key = server.printed_key
        server.wait_ready()
        origin = b64(photo("sample1.jpg"))
        payload = {"originFace": origin, "targetFace": b64(photo("sample2.jpg"))}
        statuses: list[int] = []

        def compare() -> None:
            statuses.append(requests.post(server.url + "/modules/compare", json=payload,
                                          headers={"x-api-key": key}, timeout=60).status_code)

        # Enough compares that some are still running when the signal comes, however fast each one is.
        threads = [threading.Thread(target=compare) for _ in range(IN_FLIGHT)]
        for thread in threads:
            thread.start()
        time.sleep(0.1)
        server.terminate()
        for thread in threads:
            thread.join(60)
        assert server.wait(60) == 0
        assert statuses == [200] * IN_FLIGHT
    entries = server.logs()
    requests_logged = [e for e in entries if e["msg"] == "request" and e["route"] == "/modules/compare"]
    assert len(requests_logged) == IN_FLIGHT and all(e["transactionId"] and e["status"] == 200 for e in requests_logged)
    assert entries[-1]["msg"] == "stopped"
    # The signal came while the compares were running: they were logged after it.
    order = [e["msg"] for e in entries]
    assert order.index("stopping") < max(i for i, e in enumerate(entries) if e in requests_logged)
    text = "".join(server.stderr)
    assert origin[1000:1064] not in text and "base64" not in text and key not in text
