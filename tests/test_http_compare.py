"""POST /modules/compare against a real server on loopback with the real models and photos."""

from __future__ import annotations

import http.client
import json
import math
import select
import socket
import time
from collections.abc import Iterator

import pytest
import requests
from aiohttp import web

from service.access import AddressAllowlist
from tests.hostile_images import bomb_png
from tests.http_helpers import Served, b64, blank_png, centre, connect, crop, photo, served

# Face centres in sample1.jpg (1920x1280), read off the photo: right, left, middle.
SAMPLE1 = (1920, 1280)
SAMPLE1_FACES = [(1565, 345), (503, 499), (931, 562)]


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("an internal detail that must not reach the client")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("data"),
                extra_routes=lambda app: app.router.add_get("/test/boom", _boom)) as running:
        yield running


def _ok(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["statusCode"] == 200 and body["apiType"] == "compare_face" and body["transactionId"]
    return body["result"]


def _error(response: requests.Response, status: int, code: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["statusCode"] == status and body["errorCode"] == code and body["apiType"] == "compare_face"
    assert body["transactionId"] and "Traceback" not in body["message"]
    return body


def test_json_and_multipart_give_the_same_answer(api: Served) -> None:
    origin, target = photo("obama.jpg"), photo("obama2.jpg")
    as_json = _ok(api.compare({"originFace": b64(origin), "targetFace": b64(target)}))
    as_multipart = _ok(api.compare(files={"originFace": ("a.jpg", origin), "targetFace": ("b", target)}))
    assert as_json == as_multipart
    assert as_json["faceMatch"]["isMatch"] is True and as_json["faceMatch"]["threshold"] == 80.0


def test_data_url_prefix_and_the_v1_alias(api: Served) -> None:
    origin, target = photo("obama.jpg"), photo("biden.jpg")
    plain = _ok(api.compare({"originFace": b64(origin), "targetFace": b64(target)}))
    prefixed = _ok(api.compare({"originFace": "data:image/jpeg;base64," + b64(origin),
                                "targetFace": "data:image/png;base64," + b64(target)}, path="/v1/compare"))
    assert plain == prefixed


def test_different_people_do_not_match_and_threshold_overrides(api: Served) -> None:
    pair = {"originFace": b64(photo("obama.jpg")), "targetFace": b64(photo("biden.jpg"))}
    default = _ok(api.compare(pair))["faceMatch"]
    assert default["isAvailable"] and not default["isMatch"] and default["similarity"] < 80.0
    similarity = default["similarity"]
    at = _ok(api.compare({**pair, "threshold": similarity}))["faceMatch"]
    assert at["isMatch"] is True and at["threshold"] == similarity
    above = _ok(api.compare(files={"originFace": photo("obama.jpg"), "targetFace": photo("biden.jpg")},
                            data={"threshold": str(similarity + 0.01)}))["faceMatch"]
    assert above["isMatch"] is False and math.isclose(above["threshold"], similarity + 0.01)


def test_workspace_threshold_applies_without_override(api: Served) -> None:
    _, key = api.services.workspaces.add("lenient", threshold=1.0)
    match = _ok(api.compare({"originFace": b64(photo("obama.jpg")), "targetFace": b64(photo("biden.jpg"))},
                            key=key))["faceMatch"]
    assert match["threshold"] == 1.0 and match["isMatch"] is True


@pytest.mark.parametrize("face", SAMPLE1_FACES)
def test_crop_of_one_face_finds_that_face_in_the_group(api: Served, face: tuple[int, int]) -> None:
    size = 420
    result = _ok(api.compare({"originFace": b64(crop("sample1.jpg", face, size)),
                              "targetFace": b64(photo("sample1.jpg"))}))
    origin_box = result["face"]["boundingBox"]
    assert result["face"]["isAvailable"] and 0 < origin_box["Width"] < 1 and 0 < origin_box["Height"] < 1
    # Boxes are ratios of the image they are in: the crop's face is near the crop's centre...
    ox, oy = centre(origin_box, size, size)
    assert abs(ox - size / 2) < 0.15 * size and abs(oy - size / 2) < 0.15 * size
    # ...and the match is the same face, where it is in the full photo.
    match = result["faceMatch"]
    mx, my = centre(match["boundingBox"], *SAMPLE1)
    assert abs(mx - face[0]) < 0.03 * SAMPLE1[0] and abs(my - face[1]) < 0.03 * SAMPLE1[1]
    assert match["isMatch"] is True and match["confidence"] > 50


def test_origin_face_is_the_largest(api: Served) -> None:
    result = _ok(api.compare({"originFace": b64(photo("sample1.jpg")), "targetFace": b64(photo("obama.jpg"))}))
    x, y = centre(result["face"]["boundingBox"], *SAMPLE1)
    # The right-hand face is the largest of the three.
    assert abs(x - SAMPLE1_FACES[0][0]) < 0.03 * SAMPLE1[0] and abs(y - SAMPLE1_FACES[0][1]) < 0.03 * SAMPLE1[1]


def test_no_face_is_an_answer_not_a_match(api: Served) -> None:
    none_in_origin = _ok(api.compare({"originFace": b64(blank_png()), "targetFace": b64(photo("obama.jpg"))}))
    assert none_in_origin["face"] == {"isAvailable": False, "confidence": 0.0, "boundingBox": None,
                                     "quality": None}
    assert none_in_origin["faceMatch"]["isAvailable"] is False and none_in_origin["faceMatch"]["isMatch"] is False
    none_in_target = _ok(api.compare({"originFace": b64(photo("obama.jpg")), "targetFace": b64(blank_png())}))
    assert none_in_target["face"]["isAvailable"] is True
    assert none_in_target["faceMatch"]["isAvailable"] is False and none_in_target["faceMatch"]["boundingBox"] is None


def test_a_photo_the_detector_takes_for_a_face_is_answered_as_no_face(api: Served) -> None:
    """The Hubble deep field: the detector reports a face there, the face check refuses it."""
    origin = b64(photo("hubble_deep_field.jpg"))
    result = _ok(api.compare({"originFace": origin, "targetFace": b64(photo("obama.jpg"))}))
    assert result["face"] == {"isAvailable": False, "confidence": 0.0, "boundingBox": None, "quality": None}
    assert result["faceMatch"]["isAvailable"] is False and result["faceMatch"]["isMatch"] is False


@pytest.mark.parametrize("payload", [
    {"targetFace": "AAAA"},
    {"originFace": "", "targetFace": "AAAA"},
    {"originFace": 12, "targetFace": "AAAA"},
    {"originFace": ["AAAA"], "targetFace": "AAAA"},
    {"originFace": None, "targetFace": "AAAA"},
])
def test_missing_or_empty_image_is_1000(api: Served, payload: dict) -> None:
    body = _error(api.compare(payload), 400, 1000)
    assert body["message"].startswith("Two Images are Required")


def test_missing_multipart_part_empty_part_and_empty_body_are_1000(api: Served) -> None:
    _error(api.compare(files={"originFace": photo("obama.jpg")}), 400, 1000)
    _error(api.compare(files={"originFace": photo("obama.jpg"), "targetFace": ("b.jpg", b"")}), 400, 1000)
    _error(requests.post(api.url + "/modules/compare", data=b"", headers={"x-api-key": api.key}), 400, 1000)


def test_images_over_5mb_are_1003(api: Served) -> None:
    big = b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024 - 2)
    body = _error(api.compare({"originFace": b64(big), "targetFace": b64(photo("obama.jpg"))}), 400, 1003)
    assert "5 MB" in body["message"]
    _error(api.compare(files={"originFace": big, "targetFace": photo("obama.jpg")}), 400, 1003)


@pytest.mark.parametrize("origin", [
    "not base64 at all!",
    b64(b"hello, this is text and not an image"),
    b64(photo("obama.jpg")[:2000]),
    b64(b"\x89PNG\r\n\x1a\n" + b"\0" * 64),
    "data:text/plain,hello",
])
def test_bad_base64_and_non_images_are_1003(api: Served, origin: str) -> None:
    body = _error(api.compare({"originFace": origin, "targetFace": b64(photo("obama.jpg"))}), 400, 1003)
    assert body["message"].startswith("Failed to process data")


def test_decompression_bomb_is_refused_from_its_header(api: Served) -> None:
    started = time.monotonic()
    _error(api.compare(files={"originFace": bomb_png(), "targetFace": photo("obama.jpg")}), 400, 1003)
    _error(api.compare({"originFace": b64(bomb_png(12001, 10)), "targetFace": b64(photo("obama.jpg"))}), 400, 1003)
    # 2.7 GB of pixels were never allocated: the answer is immediate.
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("threshold", [-1, 100.5, "abc", True, "NaN", [80], {"t": 1}])
def test_bad_threshold_is_1003(api: Served, threshold: object) -> None:
    _error(api.compare({"originFace": b64(photo("obama.jpg")), "targetFace": b64(photo("obama.jpg")),
                        "threshold": threshold}), 400, 1003)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"a string"', b"\xff\xfe"])
def test_bad_json_is_1003(api: Served, body: bytes) -> None:
    _error(requests.post(api.url + "/modules/compare", data=body,
                         headers={"x-api-key": api.key, "Content-Type": "application/json"}), 400, 1003)


@pytest.mark.parametrize("body", [
    b"--xyz\r\nContent-Disposition: form-data; name=\"originFace\"\r\n\r\nabc",  # never closed
    b"--xyz\r\nContent-Disposition: form-data; name=\"\x1d\xc2\x91r\"\r\n\r\nabc\r\n--xyz--\r\n",  # bad name
    b"--xyz\r\nContent-Disposition: attachment; name=\"originFace\"\r\n\r\nabc\r\n--xyz--\r\n",  # not form-data
    b"--xyz\r\nContent-Type: image/jpeg\r\n\r\nabc\r\n--xyz--\r\n",  # no Content-Disposition
    b"--xyz\r\nContent-Disposition: form-data; name=\"originFace\"\r\n\r\nabc\r\n--xyzabc",  # bad final boundary
])
def test_malformed_multipart_is_1003(api: Served, body: bytes) -> None:
    _error(requests.post(api.url + "/modules/compare", data=body, headers={
        "x-api-key": api.key, "Content-Type": "multipart/form-data; boundary=xyz"}), 400, 1003)


def test_multipart_without_a_boundary_is_1003(api: Served) -> None:
    for content_type in ("multipart/form-data", 'multipart/form-data; boundary=""'):
        _error(requests.post(api.url + "/modules/compare", data=b"--\r\n", headers={
            "x-api-key": api.key, "Content-Type": content_type}), 400, 1003)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "http://8.8.8.8/hook", "not a url", 42])
def test_bad_or_disallowed_callback_url_is_1003(api: Served, url: object) -> None:
    _error(api.compare({"originFace": b64(photo("obama.jpg")), "targetFace": b64(photo("obama.jpg")),
                        "callbackUrl": url}), 400, 1003)


def test_key_and_workspace_admission(api: Served) -> None:
    pair = {"originFace": b64(photo("obama.jpg")), "targetFace": b64(photo("obama.jpg"))}
    _error(requests.post(api.url + "/modules/compare", json=pair), 401, 1001)
    _error(api.compare(pair, key="no-such-key"), 401, 1001)
    _, key = api.services.workspaces.add("disabled")
    api.services.workspaces.set_enabled("disabled", False)
    _error(api.compare(pair, key=key), 403, 1001)
    _, elsewhere = api.services.workspaces.add("elsewhere", allowlist=("10.0.0.0/8",))
    _error(api.compare(pair, key=elsewhere), 403, 1001)


def test_refusal_before_the_body_is_read_still_reaches_the_client(api: Served) -> None:
    """The unread rest of a body within the cap is drained, so the client gets its 401, not a reset."""
    body = json.dumps({"originFace": "A" * 6_000_000, "targetFace": "A" * 6_000_000}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", int(api.url.rsplit(":", 1)[1]), timeout=30)
    try:
        for _ in range(2):  # and the connection stays usable
            conn.request("POST", "/modules/compare", body=body, headers={"x-api-key": "wrong"})
            response = conn.getresponse()
            assert response.status == 401 and json.loads(response.read())["errorCode"] == 1001
    finally:
        conn.close()


def test_client_address_outside_the_global_allowlist_is_403_before_the_key(api: Served) -> None:
    services = api.services
    allowlist = services.client_allowlist
    services.client_allowlist = AddressAllowlist(["10.0.0.0/8"])
    try:
        _error(requests.post(api.url + "/modules/compare", json={}), 403, 1001)
    finally:
        services.client_allowlist = allowlist


def test_async_workspace_requires_callback_url(api: Served) -> None:
    _, key = api.services.workspaces.add("callbacks", mode="async")
    _error(api.compare({"originFace": b64(photo("obama.jpg")), "targetFace": b64(photo("obama.jpg"))}, key=key),
           400, 1010)


def test_callback_url_answers_202_and_the_result_is_kept_for_its_workspace(api: Served) -> None:
    response = api.compare({"originFace": b64(photo("obama.jpg")), "targetFace": b64(photo("obama2.jpg")),
                            "callbackUrl": "http://127.0.0.1:9/hook"})
    assert response.status_code == 202, response.text
    accepted = response.json()
    transaction_id = accepted["transactionId"]
    assert accepted == {"statusCode": 202, "apiType": "compare_face", "transactionId": transaction_id,
                        "status": "accepted"}
    workspace = api.services.workspaces.authenticate(api.key)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stored = requests.get(f"{api.url}/modules/compare/{transaction_id}", headers={"x-api-key": api.key}).json()
        if stored.get("status") != "pending":
            break
        time.sleep(0.05)
    assert stored["statusCode"] == 200 and stored["transactionId"] == transaction_id
    assert stored["result"]["faceMatch"]["isMatch"] is True
    # Finishing woke the deliverer: it tried the URL (nothing listens on port 9) and will retry.
    while api.services.jobs.delivery(transaction_id).attempts == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    delivery = api.services.jobs.delivery(transaction_id)
    assert (delivery.workspace_id, delivery.callback_url) == (workspace.id, "http://127.0.0.1:9/hook")
    assert delivery.state == "pending" and delivery.attempts >= 1
    _, other = api.services.workspaces.add("other")
    _error(requests.get(f"{api.url}/modules/compare/{transaction_id}", headers={"x-api-key": other}), 404, 1003)


def test_sync_result_can_be_fetched_again(api: Served) -> None:
    body = api.compare({"originFace": b64(photo("obama.jpg")), "targetFace": b64(photo("obama3.jpg"))}).json()
    again = requests.get(f"{api.url}/modules/compare/{body['transactionId']}", headers={"x-api-key": api.key})
    assert again.status_code == 200 and again.json() == body
    _error(requests.get(f"{api.url}/modules/compare/unknown", headers={"x-api-key": api.key}), 404, 1003)
    _error(requests.get(f"{api.url}/modules/compare/unknown"), 401, 1001)


def test_unknown_routes_and_methods_are_json(api: Served) -> None:
    _error(requests.get(api.url + "/no/such/route"), 404, 1003)
    _error(requests.get(api.url + "/static/missing.js"), 404, 1003)
    not_allowed = _error(requests.get(api.url + "/modules/compare"), 405, 1003)
    assert "GET" in not_allowed["message"]
    assert "POST" in requests.put(api.url + "/v1/compare").headers["Allow"]


def test_unexpected_exception_is_500_1002_without_detail(api: Served) -> None:
    response = requests.get(api.url + "/test/boom")
    body = _error(response, 500, 1002)
    assert body["message"] == "Failed to compare face." and "internal detail" not in response.text


def test_error_bodies_carry_their_own_transaction_id(api: Served) -> None:
    first = _error(requests.post(api.url + "/modules/compare", json={}), 401, 1001)
    second = _error(requests.post(api.url + "/modules/compare", json={}), 401, 1001)
    assert first["transactionId"] != second["transactionId"]
    assert json.loads(json.dumps(first)) == first


def _read_status(sock: socket.socket) -> tuple[str, bytes]:
    """The status line of the first response on the socket, and what was read with it."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received.split(b"\r\n", 1)[0].decode(), received


def _head(api: Served, extra: str) -> bytes:
    return (f"POST /modules/compare HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {api.key}\r\n"
            f"Content-Type: application/json\r\n{extra}\r\n").encode()


def test_declared_body_over_the_cap_is_413_before_the_body_is_sent(api: Served) -> None:
    with connect(api.url) as sock:
        sock.sendall(_head(api, "Content-Length: 104857600\r\n"))
        status, received = _read_status(sock)
    assert status == "HTTP/1.1 413 Request Entity Too Large"
    assert json.loads(received.split(b"\r\n\r\n", 1)[1] or b"{}").get("errorCode", 1003) == 1003


def test_expect_continue_over_the_cap_gets_413_not_100(api: Served) -> None:
    with connect(api.url) as sock:
        sock.sendall(_head(api, "Content-Length: 104857600\r\nExpect: 100-continue\r\n"))
        status, _ = _read_status(sock)
    assert status.startswith("HTTP/1.1 413")


def test_streamed_body_is_read_no_further_than_the_cap(api: Served) -> None:
    """A chunked body with no declared length: the server answers 413 at the cap and stops reading."""
    cap = api.services.config.max_body_bytes
    chunk = b"10000\r\n" + b"A" * 0x10000 + b"\r\n"
    sent = 0
    with connect(api.url) as sock:
        sock.sendall(_head(api, "Transfer-Encoding: chunked\r\n"))
        sock.setblocking(False)
        deadline = time.monotonic() + 30
        status = ""
        while time.monotonic() < deadline and sent < 10 * cap:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            if readable:
                sock.setblocking(True)
                status, _ = _read_status(sock)
                break
            if writable:
                try:
                    sent += sock.send(chunk)
                except (BlockingIOError, ConnectionError):
                    continue
    assert status.startswith("HTTP/1.1 413"), status
    # Socket buffers hold a few megabytes more than the server read.
    assert sent < cap + 16 * 1024 * 1024
