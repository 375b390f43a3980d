"""Liveness: the stage on the real model and photos, `livenessCheck` over HTTP, `require-liveness`, the CLI."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from engine.faces import Detection
from engine.liveness import LivenessCheck, crop_box
from engine.pipeline import FacePipeline
from service.response import compare_body
from service.workspaces import WorkspaceStore
from tests.http_helpers import Served, b64, blank_png, photo, served

FACE_MATCH_KEYS = {"isAvailable", "confidence", "boundingBox", "quality", "similarity", "isMatch", "threshold"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("data")) as running:
        yield running


def _face_match(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()["result"]["faceMatch"]


def _bad_parameter(response: requests.Response) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errorCode"] == 1003 and "livenessCheck" in body["message"]


def test_crop_is_a_square_about_the_box_inside_the_image() -> None:
    centred = crop_box(Detection(300, 200, 340, 260, 0.9), (480, 640, 3), 2.0)
    assert centred == (260, 170, 120, 120)
    at_corner = crop_box(Detection(0, 0, 40, 60, 0.9), (480, 640, 3), 2.7)
    assert at_corner[:2] == (0, 0) and at_corner[2] == at_corner[3] == 162
    too_big = crop_box(Detection(100, 50, 500, 450, 0.9), (480, 640, 3), 2.7)
    x, y, w, h = too_big
    assert w == h == 479 and x >= 0 and y >= 0 and x + w < 640 and y + h < 480


def test_a_real_photo_scores_in_range_the_same_every_time_and_in_any_batch(pipeline: FacePipeline) -> None:
    faces = []
    for name in ("obama.jpg", "biden.jpg"):
        image = pipeline.decode(photo(name))
        (found,) = pipeline.detector.detect([image.pixels])
        faces.append((image.pixels, found[0]))
    alone = [pipeline.liveness_scores([face])[0] for face in faces]
    assert all(0.0 <= score <= 100.0 for score in alone)
    assert [pipeline.liveness_scores([face])[0] for face in faces] == alone
    assert np.allclose(pipeline.liveness_scores(faces), alone, atol=0.01)


def test_the_check_only_adds_the_field(pipeline: FacePipeline) -> None:
    origin, target = photo("obama.jpg"), photo("obama2.jpg")
    plain = compare_body(pipeline.compare(origin, target), "t")
    checked = compare_body(pipeline.compare(origin, target, liveness=LivenessCheck()), "t")
    assert set(plain["result"]["faceMatch"]) == FACE_MATCH_KEYS
    liveness = checked["result"]["faceMatch"].pop("liveness")
    assert checked == plain
    assert liveness["isLive"] == (liveness["score"] >= liveness["threshold"])


def test_liveness_check_over_json_and_multipart(api: Served) -> None:
    origin, target = photo("obama.jpg"), photo("obama2.jpg")
    as_json = _face_match(api.compare({"originFace": b64(origin), "targetFace": b64(target), "livenessCheck": True}))
    as_form = _face_match(api.compare(files={"originFace": origin, "targetFace": target},
                                      data={"livenessCheck": "true"}))
    assert as_json == as_form
    liveness = as_json["liveness"]
    assert set(liveness) == {"score", "isLive", "threshold"} and 0.0 <= liveness["score"] <= 100.0
    assert as_json["isMatch"] is True

    plain = _face_match(api.compare({"originFace": b64(origin), "targetFace": b64(target)}))
    off = _face_match(api.compare({"originFace": b64(origin), "targetFace": b64(target), "livenessCheck": False}))
    off_form = _face_match(api.compare(files={"originFace": origin, "targetFace": target},
                                       data={"livenessCheck": "false"}))
    assert plain == off == off_form and set(plain) == FACE_MATCH_KEYS


@pytest.mark.parametrize("value", ["true", 1, 0, "yes", [], {}])
def test_bad_liveness_check_in_json(api: Served, value: object) -> None:
    pair = {"originFace": b64(photo("obama.jpg")), "targetFace": b64(photo("obama2.jpg"))}
    _bad_parameter(api.compare({**pair, "livenessCheck": value}))


@pytest.mark.parametrize("value", ["True", "1", "yes", "", " true"])
def test_bad_liveness_check_in_a_form(api: Served, value: str) -> None:
    files = {"originFace": photo("obama.jpg"), "targetFace": photo("obama2.jpg")}
    _bad_parameter(api.compare(files=files, data={"livenessCheck": value}))


def test_no_face_in_the_target_is_null_not_an_error(api: Served) -> None:
    match = _face_match(api.compare({"originFace": b64(photo("obama.jpg")), "targetFace": b64(blank_png()),
                                     "livenessCheck": True}))
    assert match["isAvailable"] is False and match["liveness"] is None and match["isMatch"] is False


def test_required_liveness_refuses_a_target_that_is_not_live(api: Served) -> None:
    """A threshold no score reaches (scores stop at 99.99) stands in for a spoof; 0 for a live face."""
    store = api.services.workspaces
    strict = store.add("gate-strict", require_liveness=True, liveness_threshold=100.0)[1]
    lenient = store.add("gate-lenient", require_liveness=True, liveness_threshold=0.0)[1]
    pair = {"originFace": b64(photo("obama.jpg")), "targetFace": b64(photo("obama2.jpg"))}
    refused = _face_match(api.compare({**pair, "livenessCheck": False}, key=strict))
    assert refused["isMatch"] is False and refused["similarity"] >= refused["threshold"]
    assert refused["liveness"]["isLive"] is False and refused["liveness"]["threshold"] == 100.0
    accepted = _face_match(api.compare(pair, key=lenient))
    assert accepted["isMatch"] is True and accepted["liveness"]["isLive"] is True

    metrics = requests.get(api.url + "/metrics", timeout=10).text
    assert _sample(metrics, 'facecompare_liveness_checks_total{outcome="not_live"}') >= 1
    assert _sample(metrics, "facecompare_liveness_refusals_total") >= 1
    assert _sample(metrics, 'facecompare_liveness_checks_total{outcome="live"}') >= 1


def _sample(metrics: str, name: str) -> float:
    return float(next(line.rsplit(" ", 1)[1] for line in metrics.splitlines() if line.startswith(name + " ")))


def test_stored_results_keep_the_verdict_not_the_score(api: Served) -> None:
    response = api.compare({"originFace": b64(photo("obama.jpg")), "targetFace": b64(photo("obama2.jpg")),
                            "livenessCheck": True})
    answered = response.json()
    kept = requests.get(f"{api.url}/modules/compare/{answered['transactionId']}",
                        headers={"x-api-key": api.key}, timeout=10).json()
    liveness = answered["result"]["faceMatch"].pop("liveness")
    assert kept["result"]["faceMatch"].pop("liveness") == {"isLive": liveness["isLive"],
                                                          "threshold": liveness["threshold"]}
    assert kept == answered


def test_an_older_workspace_file_gains_the_liveness_columns(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "workspaces.sqlite3") as conn:
        conn.execute("CREATE TABLE workspaces (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, enabled INTEGER "
                     "NOT NULL DEFAULT 1, threshold REAL NOT NULL, mode TEXT NOT NULL, callback_secret TEXT NOT "
                     "NULL, allowlist TEXT NOT NULL DEFAULT '[]', created_at REAL NOT NULL)")
        conn.execute("INSERT INTO workspaces (name, threshold, mode, callback_secret, created_at)"
                     " VALUES ('old', 75, 'sync', 's', 0)")
    old = WorkspaceStore(tmp_path).get("old")
    assert (old.threshold, old.require_liveness, old.liveness_threshold) == (75.0, False, None)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True, text=True, timeout=120)


def test_workspace_cli_sets_the_liveness_policy(tmp_path: Path) -> None:
    data = ("--data-dir", str(tmp_path))
    assert _cli("workspace", "add", "gate", "--require-liveness", *data).returncode == 0
    gate = WorkspaceStore(tmp_path).get("gate")
    assert gate.require_liveness and gate.liveness_threshold is None
    updated = _cli("workspace", "update", "gate", "--no-require-liveness", "--liveness-threshold", "70", *data)
    assert updated.returncode == 0, updated.stderr
    gate = WorkspaceStore(tmp_path).get("gate")
    assert (gate.require_liveness, gate.liveness_threshold, gate.threshold) == (False, 70.0, 80.0)
    assert json.loads(_cli("workspace", "list", "--json", *data).stdout)[0]["liveness_threshold"] == 70.0
    for refused in (("update", "nope", "--require-liveness"), ("update", "gate", "--liveness-threshold", "101")):
        result = _cli("workspace", *refused, *data)
        assert result.returncode != 0 and "Traceback" not in result.stderr and result.stderr.strip()


def test_liveness_and_compare_commands(tmp_path: Path) -> None:
    face = _cli("liveness", str(tmp_path / "missing.jpg"))
    assert face.returncode != 0 and "Traceback" not in face.stderr
    blank = tmp_path / "blank.png"
    blank.write_bytes(blank_png())
    nobody = json.loads(_cli("liveness", str(blank), "--json").stdout)
    assert nobody == {"isAvailable": False, "boundingBox": None, "liveness": None}

    from tests.assets import asset_path

    obama, obama2 = str(asset_path("obama.jpg")), str(asset_path("obama2.jpg"))
    somebody = json.loads(_cli("liveness", obama, "--json").stdout)
    assert somebody["isAvailable"] and 0.0 <= somebody["liveness"]["score"] <= 100.0
    compared = json.loads(_cli("compare", obama2, obama, "--liveness", "--json").stdout)
    assert compared["result"]["faceMatch"]["liveness"] == somebody["liveness"]
    assert "liveness" in _cli("compare", obama2, obama, "--liveness").stdout


def test_the_liveness_policy_travels_in_a_workspaces_file(tmp_path: Path) -> None:
    from service.workspace_file import WorkspaceFileError, dump, parse

    source = WorkspaceStore(tmp_path / "a")
    source.add("gate", require_liveness=True, liveness_threshold=70.0)
    source.add("kiosk")
    text = dump(source.export())
    target = WorkspaceStore(tmp_path / "b")
    target.sync(parse(text, as_json=False))
    gate, kiosk = target.get("gate"), target.get("kiosk")
    assert (gate.require_liveness, gate.liveness_threshold) == (True, 70.0)
    assert (kiosk.require_liveness, kiosk.liveness_threshold) == (False, None)
    changed = target.sync(parse(text.replace("requireLiveness = true", "requireLiveness = false"), as_json=False))
    assert changed and not target.get("gate").require_liveness
    for bad in ({"requireLiveness": "yes"}, {"livenessThreshold": 101}, {"livenessThreshold": True}):
        with pytest.raises(WorkspaceFileError, match="iveness"):
            parse(json.dumps({"workspaces": [{"name": "gate", **bad}]}), as_json=True)
