"""503 with Retry-After: when the inference queue is full, and when the models cannot be loaded."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from tests.http_helpers import Served, photo, served


def _concurrently(api: Served, count: int) -> list[requests.Response]:
    barrier = threading.Barrier(count)
    responses: list[requests.Response] = []
    files = {"originFace": photo("sample1.jpg"), "targetFace": photo("sample2.jpg")}

    def one() -> None:
        barrier.wait(10)
        responses.append(api.compare(files=files))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return responses


def test_full_inference_queue_is_503_with_retry_after(tmp_path: Path) -> None:
    # Six compares are admitted (six workers, fewer than max_inflight), but each model's queue holds one.
    with served(tmp_path, workers=6, queue_size=1, max_batch=1, max_wait_ms=0) as api:
        responses = _concurrently(api, 6)
    assert len(responses) == 6
    refused = [r for r in responses if r.status_code == 503]
    assert refused, [r.status_code for r in responses]
    assert all(r.status_code in (200, 503) for r in responses)
    for response in refused:
        body = response.json()
        assert body["errorCode"] == 1002 and "inference queue is full" in body["message"]
        assert int(response.headers["Retry-After"]) >= 1


def test_models_that_cannot_load_keep_the_service_unready(tmp_path: Path) -> None:
    files = {"originFace": photo("obama.jpg"), "targetFace": photo("obama.jpg")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACECOMPARE_HOME", str(tmp_path / "empty-home"))
        with served(tmp_path / "data", wait_ready=False) as api:
            for path in ("/readyz", "/v1/info"):
                response = requests.get(api.url + path)
                assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
            compare = api.compare(files=files)
            assert requests.get(api.url + "/healthz").status_code == 200
    assert compare.status_code == 503 and compare.json()["errorCode"] == 1002
