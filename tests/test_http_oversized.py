"""A body over the cap is answered 413 / 1003 to every client, also to those that send the whole body before
reading (urllib, requests), and the rest of it is read and dropped within bounds in bytes and time."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import aiohttp
import pytest
import requests

from service import middleware
from tests.http_helpers import Served, connect, served

CAP = 4 * 1024 * 1024
# Over the cap, within the drain's bound, and more than loopback's socket buffers hold, so a server that
# closed without reading it would reset the sender mid-body.
OVERSIZED = b'{"originFace": "' + b"A" * (3 * CAP) + b'"}'


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("data"), max_body_bytes=CAP) as running:
        yield running


def _is_413_body(body: bytes) -> None:
    answer = json.loads(body)
    assert answer["statusCode"] == 413 and answer["errorCode"] == 1003 and answer["apiType"] == "compare_face"


def test_urllib_reads_the_413(api: Served) -> None:
    request = urllib.request.Request(api.url + "/modules/compare", data=OVERSIZED, method="POST",
                                     headers={"x-api-key": api.key, "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413 and refused.value.headers["Connection"] == "close"
    _is_413_body(refused.value.read())


@pytest.mark.parametrize("as_stream", [False, True])
def test_requests_reads_the_413(api: Served, as_stream: bool) -> None:
    """Declared length, and chunked (no length: the server finds out at the cap)."""
    body = iter([OVERSIZED[i : i + 65536] for i in range(0, len(OVERSIZED), 65536)]) if as_stream else OVERSIZED
    response = requests.post(api.url + "/modules/compare", data=body, timeout=30,
                             headers={"x-api-key": api.key, "Content-Type": "application/json"})
    assert response.status_code == 413
    _is_413_body(response.content)


def test_aiohttp_reads_the_413(api: Served) -> None:
    async def post() -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as session, session.post(
                api.url + "/modules/compare", data=OVERSIZED,
                headers={"x-api-key": api.key, "Content-Type": "application/json"}) as response:
            return response.status, await response.read()

    status, body = asyncio.run(asyncio.wait_for(post(), 30))
    assert status == 413
    _is_413_body(body)


def test_refused_key_with_an_oversized_body_reads_its_401(api: Served) -> None:
    response = requests.post(api.url + "/modules/compare", data=OVERSIZED, timeout=30,
                             headers={"x-api-key": "wrong", "Content-Type": "application/json"})
    assert response.status_code == 401 and response.json()["errorCode"] == 1001


def _send_until_closed(sock: socket.socket, chunk: bytes, pause: float, limit_s: float) -> tuple[int, float]:
    """Send `chunk` every `pause` seconds until the server closes; the bytes sent and the seconds it took."""
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < limit_s:
        try:
            sock.sendall(chunk)
        except OSError:
            break
        sent += len(chunk)
        time.sleep(pause)
    return sent, time.monotonic() - started


def _head(api: Served, length: str) -> bytes:
    return (f"POST /modules/compare HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {api.key}\r\n"
            f"Content-Type: application/json\r\n{length}\r\n").encode()


def test_a_slow_drip_is_dropped_after_the_drain_time(api: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(middleware, "DRAIN_TIMEOUT_S", 1.5)
    with connect(api.url) as sock:
        sock.sendall(_head(api, f"Content-Length: {2 * CAP}\r\n"))
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 413")
        # Bytes each 0.1 s: never idle long enough for the idle bound, so only the time bound ends it.
        _, seconds = _send_until_closed(sock, b"A" * 100, 0.1, limit_s=20)
    assert 1.4 < seconds < 5


def test_a_silent_client_is_dropped_after_the_idle_time(api: Served) -> None:
    with connect(api.url) as sock:
        sock.sendall(_head(api, f"Content-Length: {2 * CAP}\r\n"))
        sock.settimeout(10)
        started = time.monotonic()
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 413")
    assert time.monotonic() - started < middleware.DRAIN_IDLE_S + 2


def test_a_flood_is_dropped_after_the_drain_bytes(api: Served) -> None:
    """A chunked body without end: read up to the bound, then the connection closes, long before the time
    bound (at loopback speed, 10 s would be gigabytes)."""
    chunk = b"10000\r\n" + b"A" * 0x10000 + b"\r\n"
    with connect(api.url) as sock:
        sock.sendall(_head(api, "Transfer-Encoding: chunked\r\n"))
        sent, seconds = _send_until_closed(sock, chunk, 0.0, limit_s=30)
    # Socket buffers hold a few megabytes more than the server read.
    assert sent < CAP + middleware.DRAIN_BODY_CAPS * CAP + 16 * 1024 * 1024 and seconds < 8


def test_a_body_declared_over_the_drain_bound_is_not_read(api: Served) -> None:
    with connect(api.url) as sock:
        sock.sendall(_head(api, f"Content-Length: {100 * CAP}\r\n"))
        sock.settimeout(10)
        status = sock.recv(65536)
        sent, _ = _send_until_closed(sock, b"A" * 65536, 0.0, limit_s=10)
    assert status.startswith(b"HTTP/1.1 413") and sent < 16 * 1024 * 1024
