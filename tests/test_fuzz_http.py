"""Fuzzing through a real server on loopback: generated JSON and multipart bodies, each answered as documented.

Fewer inputs than the in-process fuzzers (each is a real HTTP round trip and, for bodies that parse and
decode, a real compare), the same strategies: every answer is 200 with a result or a documented error body
(never a 5xx), the server keeps serving, and its memory stays bounded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
from hypothesis import strategies as st

from tests.fuzzing import (
    DOCUMENTED_ERRORS,
    PILLOW_WARNINGS,
    compare_fields,
    multipart_bodies,
    run_property,
    scaled,
)
from tests.http_helpers import Served
from tests.memory import settled_rss_mib

pytestmark = pytest.mark.filterwarnings(PILLOW_WARNINGS)

EXAMPLES = 500
RSS_GROWTH_MIB = 128


def assert_documented(response: requests.Response) -> None:
    """200 with a result, or an error body whose status and code are in the contract's table."""
    body = response.json()
    assert body["apiType"] == "compare_face" and body["transactionId"] and body["statusCode"] == response.status_code
    if response.status_code == 200:
        assert {"face", "faceMatch"} <= set(body["result"])
    else:
        assert (response.status_code, body["errorCode"]) in DOCUMENTED_ERRORS, body


def test_generated_bodies_through_a_real_server(api: Served, tmp_path: Path) -> None:
    session = requests.Session()
    session.headers["x-api-key"] = api.key

    def send(case: tuple[bytes, str]) -> None:
        body, content_type = case
        assert_documented(session.post(api.url + "/modules/compare", data=body,
                                       headers={"Content-Type": content_type}, timeout=30))

    as_json = st.builds(lambda fields: (json.dumps(fields).encode(), "application/json"), compare_fields())
    send((b"{}", "application/json"))
    before = settled_rss_mib()
    ran = run_property(st.one_of(as_json, multipart_bodies()), EXAMPLES, send, deadline_ms=20000)
    grown = settled_rss_mib() - before
    assert ran >= scaled(EXAMPLES)
    assert grown < RSS_GROWTH_MIB, f"RSS grew by {grown:.0f} MiB over {ran} requests"
    assert requests.get(api.url + "/readyz", timeout=5).status_code == 200
    metrics = requests.get(api.url + "/metrics", timeout=5).text
    assert not re.search(r'route="/modules/compare",status="5', metrics), "a compare was answered with a 5xx"
