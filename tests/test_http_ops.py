"""Readiness, metrics, info, the OpenAPI document (validated, then fuzzed by schemathesis) on a real server."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from openapi_spec_validator import validate

from engine.pipeline import FacePipeline
from models.manifest import MANIFEST_PATH
from models.registry import sha256_of
from tests.http_helpers import Served, b64, photo, served


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("data"), wait_ready=False) as running:
        yield running


def test_readyz_is_503_until_loaded_and_warmed_up_then_200(api: Served) -> None:
    statuses = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = requests.get(api.url + "/readyz", timeout=5)
        statuses.append(response.status_code)
        if response.status_code == 200:
            break
        assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
        assert response.json()["errorCode"] == 1002
        time.sleep(0.02)
    assert statuses[0] == 503 and statuses[-1] == 200
    assert requests.get(api.url + "/healthz").json() == {"status": "ok"}


def test_info_reports_engine_models_and_calibration(api: Served) -> None:
    api.server.wait_ready()
    info = requests.get(api.url + "/v1/info").json()
    assert (info["backend"], info["precision"], info["device"]) == ("onnxruntime", "fp32", "cpu")
    assert info["version"] and info["manifest"]["sha256"] == sha256_of(MANIFEST_PATH)
    reference = FacePipeline()
    assert info["calibration"] == reference.calibration.details
    assert {m["role"] for m in info["models"]} == {"detector", "landmarks", "recognizer", "liveness", "face_check"}
    for model in info["models"]:
        assert model["sha256"] == sha256_of(reference.models[model["name"]].prepared)
        assert model["manifestSha256"] == reference.manifest.models[model["name"]].sha256


def test_metrics_count_requests_stages_and_batches(api: Served) -> None:
    api.server.wait_ready()
    api.compare({"originFace": b64(photo("obama.jpg")), "targetFace": b64(photo("obama2.jpg"))})
    api.compare({"originFace": "???", "targetFace": "???"})
    response = requests.get(api.url + "/metrics")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    assert 'facecompare_requests_total{error_code="",route="/modules/compare",status="200"}' in text
    assert 'facecompare_requests_total{error_code="1003",route="/modules/compare",status="400"}' in text
    for stage in ("decode", "detector", "landmarks", "recognizer", "compare", "queue_detector"):
        assert f'facecompare_stage_seconds_count{{stage="{stage}"}}' in text
    assert 'facecompare_batch_rows_bucket{le="2.0",model="detector"}' in text
    assert 'facecompare_queue_depth{model="recognizer"}' in text
    assert 'facecompare_callback_deliveries_total{outcome="delivered"}' in text
    assert "facecompare_callback_retries_total" in text


def test_demo_page_and_its_script_are_served(api: Served) -> None:
    page = requests.get(api.url + "/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<script src="/static/app.js">' in page.text
    assert requests.get(api.url + "/static/app.js").status_code == 200


def test_openapi_document_is_valid_and_covers_every_route(api: Served) -> None:
    document = requests.get(api.url + "/openapi.json").json()
    validate(document)
    assert set(document["paths"]) == {"/modules/compare", "/v1/compare", "/modules/compare/{transactionId}",
                                      "/healthz", "/readyz", "/metrics", "/v1/info", "/openapi.json", "/"}
    compare = document["paths"]["/modules/compare"]["post"]["responses"]
    assert set(compare) == {"200", "202", "400", "401", "403", "408", "413", "500", "503"}


@pytest.mark.skipif(shutil.which("st", path=str(Path(sys.executable).parent)) is None,
                    reason="schemathesis is not installed")
def test_schemathesis_finds_no_server_error_and_no_schema_violation(api: Served, tmp_path: Path) -> None:
    api.server.wait_ready()
    checks = ("not_a_server_error,status_code_conformance,content_type_conformance,"
              "response_headers_conformance,response_schema_conformance")
    command = [str(Path(sys.executable).parent / "st"), "run", api.url + "/openapi.json", "--checks", checks,
               "--max-examples", "25", "--seed", "1", "--workers", "1",
               "--phases", "examples,coverage,fuzzing", "--generation-database", "none",
               "--request-timeout", "30", "--header", f"x-api-key: {api.key}", "--no-color",
               "--report-dir", str(tmp_path)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
