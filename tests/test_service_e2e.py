"""End to end: the real `facecompare serve` subprocess, the real CLI and real HTTP receivers, all on loopback.

Signed callbacks, retries, SIGKILL between acceptance and delivery and in the middle of inference, key
rotation and disabling from the command line, both allowlists, and what the logs never hold.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.assets import asset_path
from tests.conftest import save_image
from tests.fuzzing import exif_bytes
from tests.hostile_images import face_grid, face_image
from tests.http_helpers import b64, connect, photo
from tests.loop_thread import LoopThread
from tests.receiver import Receiver
from tests.service_process import REPO, ServiceProcess, add_workspace, facecompare

FAST_RETRIES = {"callback_base_delay": 0.05, "callback_max_delay": 0.2}
PAIR = {"originFace": b64(photo("obama.jpg")), "targetFace": b64(photo("obama2.jpg"))}


def call(server: ServiceProcess, key: str | None, payload: dict[str, Any] | None = None, *,
         path: str = "/modules/compare", source: str = "127.0.0.1") -> tuple[int, dict[str, Any]]:
    """One request from the loopback address `source`: POST with a JSON payload, else GET."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60, source_address=(source, 0))
    headers = {"Content-Type": "application/json", **({"x-api-key": key} if key else {})}
    try:
        if payload is None:
            conn.request("GET", path, headers=headers)
        else:
            conn.request("POST", path, body=json.dumps(payload).encode(), headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def assert_error(answer: tuple[int, dict[str, Any]], status: int, code: int) -> None:
    assert answer[0] == status and answer[1]["errorCode"] == code, answer


def accepted(server: ServiceProcess, key: str, callback_url: str, source: str = "127.0.0.1",
             pair: dict[str, str] = PAIR) -> str:
    status, body = call(server, key, {**pair, "callbackUrl": callback_url}, source=source)
    assert status == 202 and body["status"] == "accepted", body
    return body["transactionId"]


def verify_signature(received: Any, secret: str) -> None:
    """What a receiver does: HMAC-SHA256 of the raw body with the workspace's callback secret."""
    expected = "sha256=" + hmac.new(secret.encode(), received.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(received.headers["X-FaceCompare-Signature"], expected)


def for_transaction(receiver: Receiver, transaction_id: str) -> list[Any]:
    return [r for r in receiver.requests if r.headers["X-FaceCompare-Transaction-Id"] == transaction_id]


def wait_delivered(loop: LoopThread, receiver: Receiver, transaction_id: str, timeout: float = 30) -> list[Any]:
    """Until the receiver answered 2xx to a callback of the transaction; returns every attempt it saw."""
    loop.run(receiver.wait_until(lambda: any(r.status == 200 for r in for_transaction(receiver, transaction_id)),
                                 timeout), timeout + 5)
    return for_transaction(receiver, transaction_id)


def assert_one_final_result(attempts: list[Any], server: ServiceProcess, key: str, transaction_id: str) -> dict:
    """Every attempt carried the same bytes, and GET returns that very body."""
    assert len({r.body for r in attempts}) == 1
    body = json.loads(attempts[0].body)
    assert body["transactionId"] == transaction_id
    assert call(server, key, path=f"/modules/compare/{transaction_id}") == (200, body)
    return body


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    with LoopThread() as running:
        yield running


@pytest.fixture(scope="module")
def main(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with ServiceProcess(tmp_path_factory.mktemp("main") / "data", **FAST_RETRIES) as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def narrow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """Clients only from 127.0.0.2, callbacks only to 127.0.0.2."""
    with ServiceProcess(tmp_path_factory.mktemp("narrow") / "data", client_allowlist=["127.0.0.2/32"],
                        callback_allowlist=["127.0.0.2/32"], **FAST_RETRIES) as server:
        server.wait_ready()
        yield server


@pytest.fixture
def receiver(loop: LoopThread) -> Iterator[Receiver]:
    running = loop.run(Receiver().__aenter__())
    yield running
    loop.run(running.__aexit__())


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_curl_works_as_pasted_with_the_printed_key(main: ServiceProcess, tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    command = re.search(r"```sh\n(curl -s http://127\.0\.0\.1:8080/modules/compare.*?)```", readme, re.S).group(1)
    shutil.copy(asset_path("obama.jpg"), tmp_path / "person.jpg")
    shutil.copy(asset_path("obama2.jpg"), tmp_path / "gate-camera.jpg")
    run = subprocess.run(["sh", "-c", command.replace(":8080", f":{main.port}")], cwd=tmp_path, timeout=60,
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                                              "FACECOMPARE_API_KEY": main.printed_key})
    body = json.loads(run.stdout)
    assert body["statusCode"] == 200 and body["result"]["faceMatch"]["isMatch"] is True


def test_signed_callback_reaches_a_real_receiver(main: ServiceProcess, loop: LoopThread,
                                                 receiver: Receiver) -> None:
    gate = add_workspace(main.data_dir, "gate", "--mode", "async")
    transaction_id = accepted(main, gate["apiKey"], receiver.url)
    [received] = wait_delivered(loop, receiver, transaction_id)
    verify_signature(received, gate["callbackSecret"])
    assert received.headers["Content-Type"].startswith("application/json")
    body = assert_one_final_result([received], main, gate["apiKey"], transaction_id)
    assert body["statusCode"] == 200 and body["result"]["faceMatch"]["isMatch"] is True


def test_third_try_lands_after_two_500s(main: ServiceProcess, loop: LoopThread, receiver: Receiver) -> None:
    receiver.statuses = [500, 500]
    transaction_id = accepted(main, main.printed_key, receiver.url)
    attempts = wait_delivered(loop, receiver, transaction_id)
    assert [r.status for r in attempts] == [500, 500, 200]
    assert len({r.headers["X-FaceCompare-Signature"] for r in attempts}) == 1
    assert_one_final_result(attempts, main, main.printed_key, transaction_id)
    metrics = requests.get(main.url + "/metrics", timeout=10).text
    assert re.search(r"^facecompare_callback_retries_total [2-9]", metrics, re.M)


def test_async_workspace_without_callback_url_is_1010(main: ServiceProcess) -> None:
    kiosk = add_workspace(main.data_dir, "kiosk-async", "--mode", "async")
    assert_error(call(main, kiosk["apiKey"], PAIR), 400, 1010)


def test_key_rotation_and_disabling_from_the_cli_apply_to_the_running_server(main: ServiceProcess) -> None:
    old = add_workspace(main.data_dir, "rotating")["apiKey"]
    assert call(main, old, PAIR)[0] == 200
    new = json.loads(facecompare("workspace", "rotate-key", "rotating", "--json",
                                 "--data-dir", str(main.data_dir)).stdout)["apiKey"]
    assert_error(call(main, old, PAIR), 401, 1001)
    assert call(main, new, PAIR)[0] == 200
    extra = json.loads(facecompare("workspace", "add-key", "rotating", "--json",
                                   "--data-dir", str(main.data_dir)).stdout)["apiKey"]
    assert call(main, new, PAIR)[0] == 200 and call(main, extra, PAIR)[0] == 200
    facecompare("workspace", "disable", "rotating", "--data-dir", str(main.data_dir))
    assert_error(call(main, new, PAIR), 403, 1001)
    facecompare("workspace", "enable", "rotating", "--data-dir", str(main.data_dir))
    assert call(main, new, PAIR)[0] == 200


def test_per_workspace_client_allowlist(main: ServiceProcess) -> None:
    key = add_workspace(main.data_dir, "lobby", "--allow", "127.0.0.2/32")["apiKey"]
    assert_error(call(main, key, PAIR), 403, 1001)
    assert call(main, key, PAIR, source="127.0.0.2")[0] == 200
    assert call(main, main.printed_key, PAIR, source="127.0.0.2")[0] == 200  # the global list allows 127/8


def test_logs_are_json_with_the_transaction_id_and_never_images_or_keys(main: ServiceProcess) -> None:
    gate = add_workspace(main.data_dir, "logged")
    status, body = call(main, gate["apiKey"], PAIR)
    assert status == 200
    time.sleep(0.2)  # the request line is written after the response
    entries = main.logs()  # every line parses as JSON
    [line] = [e for e in entries if e.get("transactionId") == body["transactionId"] and e["msg"] == "request"]
    assert line["route"] == "/modules/compare" and line["status"] == 200
    text = "".join(main.stderr)
    for image in PAIR.values():
        assert all(image[i:i + 48] not in text for i in range(0, len(image) - 48, 4096))
    assert gate["apiKey"] not in text and main.printed_key not in text and gate["callbackSecret"] not in text
    assert gate["apiKey"].split("_", 2)[2] not in text


def test_client_outside_the_global_allowlist_is_403(narrow: ServiceProcess) -> None:
    assert_error(call(narrow, narrow.printed_key, PAIR), 403, 1001)
    assert_error(call(narrow, None, PAIR), 403, 1001)
    assert call(narrow, narrow.printed_key, PAIR, source="127.0.0.2")[0] == 200


def test_callback_outside_the_callback_allowlist_is_1003_and_never_contacted(
        narrow: ServiceProcess, loop: LoopThread) -> None:
    outside = loop.run(Receiver(host="127.0.0.3").__aenter__())
    inside = loop.run(Receiver(host="127.0.0.2").__aenter__())
    try:
        for url in (outside.url, f"http://localhost:{outside.port}/hook"):
            assert_error(call(narrow, narrow.printed_key, {**PAIR, "callbackUrl": url}, source="127.0.0.2"),
                         400, 1003)
        transaction_id = accepted(narrow, narrow.printed_key, inside.url, source="127.0.0.2")
        wait_delivered(loop, inside, transaction_id)
        assert outside.requests == []
    finally:
        loop.run(outside.__aexit__())
        loop.run(inside.__aexit__())


def test_delivery_survives_sigkill_between_acceptance_and_delivery(tmp_path: Path, loop: LoopThread,
                                                                   receiver: Receiver) -> None:
    receiver.status = 503  # refuses until the service is killed
    data_dir = tmp_path / "data"
    with ServiceProcess(data_dir, **FAST_RETRIES) as first:
        key = first.printed_key
        first.wait_ready()
        transaction_id = accepted(first, key, receiver.url)
        loop.run(receiver.wait_for(1, timeout=30), 35)
        first.kill()
    refused = len(receiver.requests)
    receiver.status = 200
    with ServiceProcess(data_dir, **FAST_RETRIES) as second:
        attempts = wait_delivered(loop, receiver, transaction_id)
        assert second.printed_key is None  # the key is printed on the first start only
        assert len(attempts) > refused and attempts[-1].status == 200
        body = assert_one_final_result(attempts, second, key, transaction_id)
    assert body["statusCode"] == 200


def test_job_killed_mid_inference_gets_its_1002_callback_after_restart(tmp_path: Path, loop: LoopThread,
                                                                       receiver: Receiver) -> None:
    data_dir = tmp_path / "data"
    # A hundred faces in the target (landmarks, alignment and two embeddings each): a compare of a second or so.
    grid, _ = face_grid((1280, 960), 32)
    with ServiceProcess(data_dir, **FAST_RETRIES) as slow:
        key = slow.printed_key
        slow.wait_ready()
        transaction_id = accepted(slow, key, receiver.url, pair={**PAIR, "targetFace": b64(grid)})
        assert call(slow, key, path=f"/modules/compare/{transaction_id}") == (200, {"status": "pending"})
        metrics = requests.get(slow.url + "/metrics", timeout=10).text
        assert re.search(r"^facecompare_inflight_compares 1\.0$", metrics, re.M)  # inside the pipeline
        slow.kill()
    assert receiver.requests == []
    with ServiceProcess(data_dir, **FAST_RETRIES) as again:
        attempts = wait_delivered(loop, receiver, transaction_id)
        time.sleep(0.5)  # room for a second, wrong result to show up
        assert for_transaction(receiver, transaction_id) == attempts
        body = assert_one_final_result(attempts, again, key, transaction_id)
    assert (body["statusCode"], body["errorCode"]) == (500, 1002)


def test_callback_redirected_to_a_disallowed_address_is_never_followed(narrow: ServiceProcess,
                                                                        loop: LoopThread) -> None:
    """An allowed receiver answering 307 towards a disallowed one: a failed attempt, retried, never followed."""
    outside = loop.run(Receiver(host="127.0.0.3").__aenter__())
    bouncer = loop.run(Receiver(host="127.0.0.2").__aenter__())
    bouncer.redirect_to = outside.url
    try:
        transaction_id = accepted(narrow, narrow.printed_key, bouncer.url, source="127.0.0.2")
        loop.run(bouncer.wait_for(3, timeout=30), 35)  # retried, so the redirect counted as a failure
        assert outside.requests == []
        assert all(r.headers["X-FaceCompare-Transaction-Id"] == transaction_id for r in bouncer.requests)
        status, body = call(narrow, narrow.printed_key, path=f"/modules/compare/{transaction_id}",
                            source="127.0.0.2")
        assert status == 200 and body["transactionId"] == transaction_id
    finally:
        loop.run(outside.__aexit__())
        loop.run(bouncer.__aexit__())


def test_keys_and_images_never_reach_the_data_directory_or_the_logs(main: ServiceProcess, loop: LoopThread,
                                                                    receiver: Receiver) -> None:
    """After good, bad, async and malformed requests: no key, secret or image bytes in any file or log line,
    and every line on stderr is JSON (Pillow's warning about a broken EXIF included)."""
    gate = add_workspace(main.data_dir, "audited")
    key = gate["apiKey"]
    broken_exif = save_image(face_image(), "JPEG", exif=exif_bytes(6, {0x010F: "camera"})[:-8])
    cut = photo("obama3.jpg")[:20000]
    for origin in (broken_exif, cut):
        assert call(main, key, {"originFace": b64(origin), "targetFace": PAIR["targetFace"]})[0] in (200, 400)
    requests.post(main.url + "/modules/compare", headers={"x-api-key": key}, timeout=60,
                  files={"originFace": photo("obama3.jpg"), "targetFace": cut})
    wait_delivered(loop, receiver, accepted(main, key, receiver.url))
    with connect(main.url) as sock:  # a header line aiohttp cannot parse, holding the key
        sock.sendall(f"GET /healthz HTTP/1.1\r\nx-api-key: {key}\x01\r\n\r\n".encode())
        sock.recv(65536)
    time.sleep(0.3)
    secrets = [key, key.split("_", 2)[2], gate["callbackSecret"], main.printed_key]
    images = [b64(data)[i : i + 64] for data in (broken_exif, cut, photo("obama2.jpg"))
              for i in range(1000, 9000, 2000)]
    main.logs()  # every line parses as JSON
    logged = "".join(main.stderr)
    assert not [s for s in secrets + images if s in logged]
    assert any(e["msg"].startswith("malformed HTTP request") for e in main.logs())
    stored = b"".join(path.read_bytes() for path in main.data_dir.rglob("*") if path.is_file())
    assert not [s for s in secrets[:2] + [main.printed_key] if s.encode() in stored]
    raw = [data[i : i + 64] for data in (photo("obama3.jpg"), photo("obama2.jpg")) for i in range(1000, 9000, 2000)]
    assert not [s for s in images if s.encode() in stored] and not [r for r in raw if r in stored]
