"""Hostile clients against a real server on loopback: slow headers, slow bodies, hundreds of idle connections
and malformed HTTP. The server frees what they hold, stays up and keeps serving everyone else.

(Bodies over the cap, declared, announced with `Expect` or streamed, are in test_http_compare.)
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.http_helpers import Served, b64, connect, photo, served

IDLE_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 2.0
IDLE_CONNECTIONS = 500


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("data"), idle_timeout=IDLE_TIMEOUT_S, body_timeout=BODY_TIMEOUT_S) as running:
        yield running


def still_serving(api: Served) -> None:
    """Someone else's compare and the probes are answered, promptly."""
    started = time.monotonic()
    response = api.compare({"originFace": b64(photo("obama.jpg")), "targetFace": b64(photo("obama2.jpg"))})
    assert response.status_code == 200 and response.json()["result"]["faceMatch"]["isMatch"]
    assert requests.get(api.url + "/readyz", timeout=5).status_code == 200
    assert time.monotonic() - started < 10


def closed_by_server(sock: socket.socket, within: float) -> bytes:
    """What the server sent before closing the connection; fails if it is still open after `within` s."""
    sock.settimeout(within)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {within} s")
    return received


def test_slow_headers_are_cut_off_by_the_idle_timeout(api: Served) -> None:
    with connect(api.url) as sock:
        started = time.monotonic()
        head = b"POST /modules/compare HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: " + api.key.encode()
        try:
            for byte in head:  # a byte every 0.2 s: a whole head would take seconds
                sock.send(bytes([byte]))
                time.sleep(0.2)
                if time.monotonic() - started > 4 * IDLE_TIMEOUT_S:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert closed_by_server(sock, 3 * IDLE_TIMEOUT_S) == b""
        assert time.monotonic() - started < 5 * IDLE_TIMEOUT_S
    still_serving(api)


def test_slow_body_is_answered_408_and_the_connection_freed(api: Served) -> None:
    with connect(api.url) as sock:
        sock.sendall(b"POST /modules/compare HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000\r\nx-api-key: " + api.key.encode() + b"\r\n\r\n{\"originFace\": \"")
        started = time.monotonic()
        try:
            while time.monotonic() - started < 2 * BODY_TIMEOUT_S:
                sock.send(b"AAAA")
                time.sleep(0.25)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = closed_by_server(sock, 3 * BODY_TIMEOUT_S)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"errorCode": 1003' in body and b"did not arrive" in body
    still_serving(api)


def test_hundreds_of_idle_connections_neither_block_others_nor_linger(api: Served) -> None:
    idle = [connect(api.url) for _ in range(IDLE_CONNECTIONS)]
    try:
        still_serving(api)
        time.sleep(IDLE_TIMEOUT_S)
        deadline = time.monotonic() + 5 * IDLE_TIMEOUT_S
        for sock in idle:
            closed_by_server(sock, max(0.1, deadline - time.monotonic()))
    finally:
        for sock in idle:
            sock.close()
    still_serving(api)


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),  # a TLS ClientHello to a plain HTTP port
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"a" * 100_000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(1000)) + b"\r\n",
    b"POST /modules/compare HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST /modules/compare HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcde",
    b"POST /modules/compare HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /modules/compare HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n",
    b"POST /modules/compare HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n",
    b"\r\n" * 10_000,
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 200,  # pipelined
]


@pytest.mark.parametrize("request_bytes", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_http_gets_an_error_or_a_close_and_the_service_stays_up(api: Served,
                                                                         request_bytes: bytes) -> None:
    with connect(api.url) as sock:
        try:
            sock.sendall(request_bytes)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = closed_by_server(sock, 5 * IDLE_TIMEOUT_S)
    assert answer == b"" or re.match(rb"HTTP/1\.[01] [1-4]\d\d ", answer), answer[:100]  # never a 5xx
    assert requests.get(api.url + "/healthz", timeout=5).status_code == 200
    assert requests.get(api.url + "/readyz", timeout=5).status_code == 200
