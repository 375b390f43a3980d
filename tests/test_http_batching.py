"""Concurrent compares through the real server: batches of several rows form in the batchers
(engine/batcher.py), and every answer is the one the same pair gets alone."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.http_helpers import b64, photo
from tests.service_process import ServiceProcess

PAIRS = [("obama.jpg", "obama2.jpg"), ("obama.jpg", "biden.jpg"), ("obama2.jpg", "sample1.jpg"),
         ("biden.jpg", "sample2.jpg")]
ROUNDS = 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with ServiceProcess(tmp_path_factory.mktemp("batching") / "data", workers=4) as served:
        served.wait_ready()
        yield served


def _compare(server: ServiceProcess, pair: tuple[str, str]) -> dict[str, Any]:
    payload = {"originFace": b64(photo(pair[0])), "targetFace": b64(photo(pair[1]))}
    response = requests.post(server.url + "/v1/compare", data=json.dumps(payload), timeout=120,
                             headers={"x-api-key": server.printed_key, "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()["result"]


def _assert_same_answer(batched: dict[str, Any], alone: dict[str, Any]) -> None:
    """The same decision and faces; a batch's floats may differ from a lone run's in the last digits."""
    assert batched["faceMatch"]["isMatch"] == alone["faceMatch"]["isMatch"]
    assert batched["faceMatch"]["similarity"] == pytest.approx(alone["faceMatch"]["similarity"], abs=0.01)
    for side in ("face", "faceMatch"):
        assert batched[side]["confidence"] == pytest.approx(alone[side]["confidence"], abs=0.05)
        for key, ratio in alone[side]["boundingBox"].items():
            assert batched[side]["boundingBox"][key] == pytest.approx(ratio, abs=1e-3), (side, key)


def _batched_rows(server: ServiceProcess) -> float:
    """Rows run in batches of more than one, from /metrics (every model)."""
    text = requests.get(server.url + "/metrics", timeout=10).text
    rows = sum(float(v) for v in re.findall(r'^facecompare_batch_rows_sum\{[^}]*\} (\S+)$', text, re.M))
    batches = sum(float(v) for v in re.findall(r'^facecompare_batch_rows_count\{[^}]*\} (\S+)$', text, re.M))
    return rows - batches


def test_concurrent_compares_answer_as_alone_and_share_batches(server: ServiceProcess) -> None:
    alone = [_compare(server, pair) for pair in PAIRS]
    shared_before = _batched_rows(server)
    with ThreadPoolExecutor(len(PAIRS) * ROUNDS) as pool:
        together = list(pool.map(lambda pair: _compare(server, pair), PAIRS * ROUNDS))
    for index, answer in enumerate(together):
        _assert_same_answer(answer, alone[index % len(PAIRS)])
    assert _batched_rows(server) > shared_before, "no batch of several rows formed"
