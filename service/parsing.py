"""A compare request's body (JSON with base64, or multipart) to bytes and fields, caps enforced while reading.

The whole body is capped by the application's `client_max_size` (413 / 1003, nothing read past the cap);
each image is capped at 5 MB after base64 decoding (400 / 1003), checked from the base64 length before
decoding and, for multipart, while the part streams in. The body must arrive within a time limit (408 / 1003),
so a client trickling it cannot hold a connection and a handler for ever.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web
from aiohttp.helpers import parse_mimetype
from aiohttp.http_exceptions import HttpProcessingError
from multipart import MultipartSegment, PushMultipartParser

from engine.decode import MAX_IMAGE_BYTES
from engine.errors import ApiError, BadInput, BodyTooLarge, ImagesRequired

IMAGE_FIELDS = ("originFace", "targetFace")
TEXT_FIELDS = ("callbackUrl", "threshold", "livenessCheck")
MAX_TEXT_BYTES = 4096
DATA_URL = re.compile(r"^data:[^,;]*(;[^,;]*)*;base64,", re.IGNORECASE)
# RFC 9110 5.5: no control character but the tab in a field value; a part's header breaking it is malformed,
# as aiohttp judges a request's own headers.
FORBIDDEN_IN_FIELD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# The longest base64 text (padding included) that can decode to MAX_IMAGE_BYTES.
MAX_BASE64_CHARS = 4 * math.ceil(MAX_IMAGE_BYTES / 3)


class BodyTimedOut(ApiError):
    http_status, error_code, message = 408, 1003, "Failed to process data"


@dataclass(frozen=True)
class CompareRequest:
    origin: bytes
    target: bytes
    threshold: float | None
    callback_url: str | None
    liveness_check: bool = False


def over_image_cap() -> BadInput:
    return BadInput(f"image is over {MAX_IMAGE_BYTES // (1024 * 1024)} MB")


def decode_base64_image(text: str) -> bytes:
    """Base64 (standard alphabet, optional `data:` prefix, line breaks and missing padding allowed)."""
    text = DATA_URL.sub("", text, count=1) if text[:5].lower() == "data:" else text
    if text[:5].lower() == "data:":
        raise BadInput("data URL is not base64")
    compact = "".join(text.split())
    if len(compact) > MAX_BASE64_CHARS:
        raise over_image_cap()
    compact += "=" * (-len(compact) % 4)
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInput("bad base64") from exc
    if len(data) > MAX_IMAGE_BYTES:
        raise over_image_cap()
    return data


def parse_threshold(value: Any) -> float | None:
    """0-100 as a number or numeric text; absent, null or empty means the workspace's threshold."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadInput("threshold must be a number from 0 to 100")
    try:
        threshold = float(value)
    except ValueError as exc:
        raise BadInput("threshold must be a number from 0 to 100") from exc
    if not (math.isfinite(threshold) and 0.0 <= threshold <= 100.0):
        raise BadInput("threshold must be a number from 0 to 100")
    return threshold


def parse_liveness_check(value: Any, *, multipart: bool) -> bool:
    """A JSON boolean (null or absent: false), or in a multipart form the text "true" or "false"."""
    if value is None:
        return False
    if multipart and value in ("true", "false"):
        return value == "true"
    if not multipart and isinstance(value, bool):
        return value
    raise BadInput('livenessCheck must be true or false' + (' ("true" or "false" in a form)' if multipart else ""))


def parse_callback_url(value: Any) -> str | None:
    """The URL's text only; whether it is allowed (its length included) is the access layer's decision."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadInput("callbackUrl must be a string")
    return value.strip() or None


def _image(value: Any) -> bytes:
    if isinstance(value, str) and value:
        data = decode_base64_image(value)
    elif isinstance(value, bytes):
        data = value
    else:
        raise ImagesRequired()
    if not data:
        raise ImagesRequired()
    return data


def _request(fields: dict[str, Any], *, multipart: bool) -> CompareRequest:
    origin, target = (fields.get(name) for name in IMAGE_FIELDS)
    if not origin or not target:
        raise ImagesRequired()
    return CompareRequest(origin=_image(origin), target=_image(target),
                          threshold=parse_threshold(fields.get("threshold")),
                          callback_url=parse_callback_url(fields.get("callbackUrl")),
                          liveness_check=parse_liveness_check(fields.get("livenessCheck"), multipart=multipart))


def media_type(content_type: str) -> str:
    """The media type of a Content-Type header, lowercased, without its parameters. aiohttp's own
    `request.content_type` runs the email package's header parser: 1 ms of the event loop per request."""
    return content_type.partition(";")[0].strip().lower()


async def parse_compare(request: web.Request, limit: int, timeout: float) -> CompareRequest:
    """The request's body by its content type: multipart/form-data, else JSON; `limit` is the body cap and
    `timeout` the seconds the whole body may take to arrive."""
    try:
        return await asyncio.wait_for(_parse(request, limit), timeout)
    except asyncio.TimeoutError as exc:
        raise BodyTimedOut(f"request body did not arrive within {timeout:g} s") from exc


async def _parse(request: web.Request, limit: int) -> CompareRequest:
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"request body is over {limit} bytes")
    if media_type(request.headers.get(hdrs.CONTENT_TYPE, "")) == "multipart/form-data":
        return _request(await _multipart_fields(request, limit), multipart=True)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise BodyTooLarge(f"request body is over {limit} bytes") from exc
    if not raw.strip():
        raise ImagesRequired()
    try:
        fields = json.loads(raw)
    except ValueError as exc:
        raise BadInput("body is not JSON") from exc
    if not isinstance(fields, dict):
        raise BadInput("body is not a JSON object")
    return _request(fields, multipart=False)


async def _multipart_fields(request: web.Request, limit: int) -> dict[str, Any]:
    """Stream the parts: images as bytes, text fields as text, anything else read and dropped.

    Parsed by the `multipart` package's push parser as the body arrives, one scan for the boundary per chunk:
    aiohttp's own reader copies every read into a search window and builds a pattern of 128 escaped
    characters for each part's Content-Disposition. For two Full HD photos the event loop's CPU from the key
    lookup to the parsed request fell from 0.9-1.1 ms to 0.35 (docs/PERFORMANCE.md, sixth round).
    """
    boundary = parse_mimetype(request.headers.get(hdrs.CONTENT_TYPE, "")).parameters.get("boundary", "")
    fields: dict[str, Any] = {}
    name, cap, chunks, size, read = "", None, [], 0, 0
    try:
        parser = PushMultipartParser(boundary)
        while True:
            chunk = await request.content.readany()
            read += len(chunk)
            if read > limit:
                raise BodyTooLarge(f"request body is over {limit} bytes")
            for event in parser.parse(chunk):
                if isinstance(event, MultipartSegment):
                    if any(FORBIDDEN_IN_FIELD_VALUE.search(value) for _, value in event.headerlist):
                        raise BadInput("malformed multipart body")
                    name, chunks, size = event.name, [], 0
                    cap = MAX_IMAGE_BYTES if name in IMAGE_FIELDS else MAX_TEXT_BYTES if name in TEXT_FIELDS else None
                elif event is not None:
                    size += len(event)
                    if cap is not None and size > cap:
                        raise over_image_cap() if name in IMAGE_FIELDS else BadInput(f"{name} is too long")
                    if cap is not None:
                        chunks.append(event)
                elif cap is not None and name not in fields:
                    data = b"".join(chunks)
                    fields[name] = data if name in IMAGE_FIELDS else data.decode("utf-8", errors="strict")
            if not chunk:
                return fields
    except (BadInput, BodyTooLarge):
        raise
    except (ValueError, RuntimeError, HttpProcessingError) as exc:
        raise BadInput("malformed multipart body") from exc
