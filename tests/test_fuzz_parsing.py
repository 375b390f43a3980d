"""Fuzzing the request parser in process: JSON bodies, base64 (with `data:` prefixes), multipart bodies.

Each generated body goes through `parse_compare` on a real aiohttp request over a real stream of its bytes,
then each parsed image through the decoder: the answer is a parsed request whose images decode, or one of
the documented errors (400 / 1000, 400 / 1003, 413 / 1003). Nothing else, and memory stays bounded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from aiohttp import HttpVersion11, web
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from engine.decode import MAX_IMAGE_BYTES, decode_image
from engine.errors import ApiError, BadInput
from service.parsing import MAX_BASE64_CHARS, CompareRequest, decode_base64_image, media_type, parse_compare
from tests.fuzzing import (
    PILLOW_WARNINGS,
    assert_decoded,
    assert_documented_error,
    b64_text,
    compare_fields,
    image_texts,
    json_bodies,
    multipart_bodies,
    run_property,
    scaled,
)
from tests.memory import settled_rss_mib

pytestmark = pytest.mark.filterwarnings(PILLOW_WARNINGS)

EXAMPLES = {"fields": 2000, "json": 800, "multipart": 1200, "base64": 2000}
PATH = "/modules/compare"
BODY_CAP = 1024 * 1024  # small, so that some generated bodies are over it
RSS_GROWTH_MIB = 128  # as in test_fuzz_decode: under one largest allowed image


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    yield running
    running.close()


def parse(loop: asyncio.AbstractEventLoop, body: bytes, content_type: str) -> CompareRequest:
    """`parse_compare` on a request as aiohttp's server makes it: its own connection handler (not connected)
    and the body's bytes in a real payload stream, without the socket round trip per input."""

    async def run() -> CompareRequest:
        handler = RequestHandler(web.Server(_unused, loop=loop), loop=loop)
        stream = StreamReader(handler, 2**16, loop=loop)
        stream.feed_data(body)
        stream.feed_eof()
        headers = CIMultiDictProxy(CIMultiDict({"Content-Type": content_type, "Content-Length": str(len(body))}))
        message = RawRequestMessage("POST", PATH, HttpVersion11, headers, (), False, None, False, False, URL(PATH))
        request = web.BaseRequest(message, stream, handler, None, None, loop, client_max_size=BODY_CAP)
        return await parse_compare(request, BODY_CAP, timeout=30)

    return loop.run_until_complete(run())


async def _unused(request: web.BaseRequest) -> web.StreamResponse:
    raise AssertionError("no request is dispatched")


def answer(loop: asyncio.AbstractEventLoop, body: bytes, content_type: str) -> None:
    """The property: parsed and decoded, or a documented error; any other exception fails the test."""
    try:
        parsed = parse(loop, body, content_type)
        assert parsed.threshold is None or 0 <= parsed.threshold <= 100
        assert parsed.callback_url is None or isinstance(parsed.callback_url, str)
        assert isinstance(parsed.liveness_check, bool)
        for image in (parsed.origin, parsed.target):
            assert 0 < len(image) <= MAX_IMAGE_BYTES
            assert_decoded(decode_image(image))
    except ApiError as error:
        assert_documented_error(error)


def test_generated_request_bodies_get_documented_answers(loop: asyncio.AbstractEventLoop) -> None:
    parse(loop, json.dumps({"originFace": "AA", "targetFace": "AA"}).encode(), "application/json")
    before = settled_rss_mib()
    ran = {
        "fields": run_property(compare_fields(), EXAMPLES["fields"],
                               lambda fields: answer(loop, json.dumps(fields).encode(), "application/json")),
        "json": run_property(st.tuples(json_bodies, st.sampled_from(("application/json", "text/plain", ""))),
                             EXAMPLES["json"], lambda case: answer(loop, *case)),
        "multipart": run_property(multipart_bodies(), EXAMPLES["multipart"], lambda case: answer(loop, *case)),
    }
    grown = settled_rss_mib() - before
    assert all(ran[name] >= scaled(EXAMPLES[name]) for name in ran), ran
    assert grown < RSS_GROWTH_MIB, f"RSS grew by {grown:.0f} MiB over {sum(ran.values())} bodies"


def base64_round_trip(text: str) -> None:
    """Base64 text decodes to bytes within the cap or is 400 / 1003; a well-formed one gives its bytes back."""
    try:
        data = decode_base64_image(text)
    except BadInput as error:
        assert_documented_error(error)
        return
    assert len(data) <= MAX_IMAGE_BYTES


def test_generated_base64_texts_decode_or_are_1003() -> None:
    assert run_property(image_texts, EXAMPLES["base64"], base64_round_trip) >= scaled(EXAMPLES["base64"])


@pytest.mark.parametrize("prefix", ["", "data:image/jpeg;base64,", "DATA:image/png;BASE64,", "data:;base64,"])
@pytest.mark.parametrize("wrap,padding", [(0, True), (76, True), (0, False), (1, False)])
def test_every_accepted_base64_form_gives_the_image_back(prefix: str, wrap: int, padding: bool) -> None:
    image = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 3 + b"\x01"
    assert decode_base64_image(b64_text(image, prefix, wrap, padding)) == image


def test_base64_over_the_image_cap_is_refused_before_decoding() -> None:
    with pytest.raises(BadInput, match="over 5 MB"):
        decode_base64_image("A" * (MAX_BASE64_CHARS + 4))


@pytest.mark.parametrize(("header", "expected"), [
    ("multipart/form-data; boundary=x", "multipart/form-data"),
    ('Multipart/Form-Data ;boundary="a;b"', "multipart/form-data"),
    ("application/json", "application/json"), ("", ""), (" text/plain ", "text/plain"), (";", ""),
])
def test_media_type_is_the_header_before_its_parameters(header: str, expected: str) -> None:
    assert media_type(header) == expected
