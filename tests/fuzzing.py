"""What the fuzz tests share: bounded hypothesis settings, input strategies, and what counts as a documented answer.

The strategies build what a camera or a kiosk might send, broken in the ways they break: valid images of
every accepted format and mode, then truncated, bit-flipped, spliced, with headers claiming other sizes or
with odd EXIF; base64 with and without a `data:` prefix, line breaks, bad padding; JSON and multipart bodies
with missing, repeated, mistyped and unknown fields.

`FACECOMPARE_FUZZ_SCALE` multiplies every example count, for a longer run than CI's.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.decode import DecodedImage, DecodeLimits
from engine.errors import ApiError
from tests.conftest import save_image

SCALE = float(os.environ.get("FACECOMPARE_FUZZ_SCALE", "1"))
# Pillow warns about the broken EXIF and TIFF tags the fuzzers make; it then skips them, as it should.
PILLOW_WARNINGS = "ignore::UserWarning:PIL.*"
# (HTTP status, errorCode) of every answer a compare request may get for what it sent (api.md, docs/API.md).
DOCUMENTED_ERRORS = {(400, 1000), (400, 1003), (408, 1003), (413, 1003)}
LIMITS = DecodeLimits()


def fuzz_settings(examples: int, deadline_ms: int = 2000) -> settings:
    """Deterministic (the same inputs on every CI run), bounded per example, no example database on disk."""
    return settings(max_examples=max(1, round(examples * SCALE)), deadline=deadline_ms, derandomize=True,
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example])


def scaled(examples: int) -> int:
    return max(1, round(examples * SCALE))


def assert_documented_error(error: ApiError) -> None:
    assert (error.http_status, error.error_code) in DOCUMENTED_ERRORS, (type(error), error.full_message)
    assert error.full_message.startswith(error.message)


def assert_decoded(image: DecodedImage) -> None:
    pixels = image.pixels
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    assert min(image.width, image.height) >= 1 and max(image.width, image.height) <= LIMITS.max_side
    assert image.format in ("jpeg", "png", "bmp")


def exif_bytes(orientation: int, extra: dict[int, Any] | None = None) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    for tag, value in (extra or {}).items():
        exif[tag] = value
    return exif.tobytes()


@cache
def seed_images() -> tuple[bytes, ...]:
    """Small valid images of every accepted format, in the modes the decoder must handle."""
    rng = np.random.default_rng(6)
    rgb = Image.fromarray(rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8))
    grey16 = Image.fromarray((rng.integers(0, 65536, size=(16, 12))).astype(np.uint16))
    return (
        save_image(rgb, "JPEG", quality=80),
        save_image(rgb, "JPEG", quality=80, progressive=True),
        save_image(rgb.convert("L"), "JPEG"),
        save_image(rgb.convert("CMYK"), "JPEG"),
        save_image(rgb, "JPEG", exif=exif_bytes(6, {})),
        save_image(rgb, "PNG"),
        save_image(rgb.convert("P"), "PNG"),
        save_image(rgb.convert("RGBA"), "PNG"),
        save_image(rgb.convert("LA"), "PNG"),
        save_image(rgb.convert("1"), "PNG"),
        save_image(grey16, "PNG"),
        save_image(rgb, "BMP"),
        save_image(rgb.convert("P"), "BMP"),
        save_image(rgb.convert("1"), "BMP"),
    )


def _flip(data: bytes, positions: list[int], values: list[int]) -> bytes:
    out = bytearray(data)
    for position, value in zip(positions, values, strict=False):
        out[position % len(out)] = value
    return bytes(out)


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    """A seed image broken by one or more of: byte overwrites, truncation, insertion, a spliced tail, and
    a rewritten size field (the JPEG SOF, the PNG IHDR or the BMP header)."""
    data = draw(st.sampled_from(seed_images()))
    for _ in range(draw(st.integers(1, 3))):
        operation = draw(st.sampled_from(("flip", "truncate", "insert", "splice", "size")))
        if operation == "flip":
            positions = draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8))
            data = _flip(data, positions, draw(st.lists(st.integers(0, 255), min_size=len(positions),
                                                        max_size=len(positions))))
        elif operation == "truncate":
            data = data[: draw(st.integers(1, max(1, len(data) - 1)))]
        elif operation == "insert":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:]
        elif operation == "splice":
            other = draw(st.sampled_from(seed_images()))
            data = data[: draw(st.integers(0, len(data)))] + other[draw(st.integers(0, len(other))):]
        else:
            data = _resize_header(data, draw(st.integers(0, 70000)), draw(st.integers(0, 70000)))
    return data


def _resize_header(data: bytes, width: int, height: int) -> bytes:
    """The same file with its header claiming width x height (each format keeps the size in its own place)."""
    out = bytearray(data)
    if data[:2] == b"\xff\xd8":
        for marker in (b"\xff\xc0", b"\xff\xc2"):
            at = data.find(marker)
            if at >= 0 and at + 9 <= len(out):
                out[at + 5 : at + 9] = struct.pack(">HH", height & 0xFFFF, width & 0xFFFF)
    elif data[:4] == b"\x89PNG" and len(out) >= 24:
        out[16:24] = struct.pack(">II", width, height)
    elif data[:2] == b"BM" and len(out) >= 26:
        out[18:26] = struct.pack("<ii", width, height - 35000)  # a negative height means top-down rows
    return bytes(out)


MAGICS = (b"\xff\xd8\xff", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1", b"\x89PNG\r\n\x1a\n", b"BM", b"GIF89a",
          b"RIFF\0\0\0\0WEBPVP8 ", b"II*\0", b"")

random_images = st.builds(lambda magic, tail: magic + tail, st.sampled_from(MAGICS), st.binary(max_size=512))


@st.composite
def exif_images(draw: st.DrawFn) -> bytes:
    """A JPEG whose EXIF carries any orientation (valid or not), odd extra tags, or a broken APP1 segment."""
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    pixels = np.full((height, width, 3), draw(st.integers(0, 255)), dtype=np.uint8)
    orientation = draw(st.one_of(st.integers(0, 9), st.integers(-(2**15), 2**16)))
    extra = draw(st.dictionaries(st.sampled_from((0x010F, 0x0110, 0x0132, 0x0131, 0x013B)),
                                 st.one_of(st.text(max_size=20), st.integers(0, 2**31 - 1)), max_size=3))
    try:
        exif = exif_bytes(orientation, extra)
    except (ValueError, TypeError, struct.error):  # Pillow cannot write this tag value: keep the orientation
        exif = exif_bytes(orientation % 9, {})
    if draw(st.booleans()):
        exif = _flip(exif, draw(st.lists(st.integers(0, len(exif) - 1), max_size=6)),
                     draw(st.lists(st.integers(0, 255), min_size=6, max_size=6)))
    return save_image(Image.fromarray(pixels), "JPEG", exif=exif)


any_image = st.one_of(mutated_images(), random_images, exif_images(), st.sampled_from(seed_images()))
# Cheaper to make, for the request fuzzers (the decode fuzzer breaks images in every other way): seeds, cut or not.
body_images = st.one_of(st.sampled_from(seed_images()), random_images,
                        st.builds(lambda data, end: data[:end], st.sampled_from(seed_images()), st.integers(1, 4000)))


def b64_text(data: bytes, prefix: str, wrap: int, padding: bool) -> str:
    text = base64.b64encode(data).decode()
    if not padding:
        text = text.rstrip("=")
    if wrap:
        text = "\n".join(text[i : i + wrap] for i in range(0, len(text), wrap))
    return prefix + text


DATA_PREFIXES = ("", "data:image/jpeg;base64,", "DATA:image/png;BASE64,", "data:;base64,", "data:image/png,",
                 "data:image/jpeg;charset=utf-8;base64,", "data:", "data:image/jpeg;base64")

image_texts = st.one_of(
    st.builds(b64_text, body_images, st.sampled_from(DATA_PREFIXES), st.sampled_from((0, 76, 64, 1)),
              st.booleans()),
    st.text(max_size=200),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n\r\t", max_size=200),
)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6)

thresholds = st.one_of(st.none(), st.floats(-1e3, 1e3), st.integers(-200, 200), st.sampled_from(
    ("", "80", " 75.5 ", "NaN", "inf", "1e2", "-0", "abc", "80%")), st.booleans(), json_values)
callback_urls = st.one_of(st.none(), st.sampled_from(("", "   ", "ftp://127.0.0.1/x", "http:///x", "not a url",
                                                      "http://[::1/x", "javascript:alert(1)")), json_values)
liveness_checks = st.one_of(st.booleans(), st.sampled_from(("true", "false", "True", "1", "", " true")), json_values)


@st.composite
def compare_fields(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON compare body's object: each field present or not, of the right type or not."""
    fields: dict[str, Any] = {}
    for name in ("originFace", "targetFace"):
        if draw(st.integers(0, 9)) > 0:
            fields[name] = draw(st.one_of(image_texts, json_values)) if draw(st.integers(0, 4)) == 0 \
                else draw(image_texts)
    if draw(st.booleans()):
        fields["threshold"] = draw(thresholds)
    if draw(st.integers(0, 3)) == 0:
        fields["callbackUrl"] = draw(callback_urls)
    if draw(st.integers(0, 3)) == 0:
        fields["livenessCheck"] = draw(liveness_checks)
    fields.update(draw(st.dictionaries(st.text(max_size=10), json_values, max_size=2)))
    return fields


def json_body(fields: Any, mangle: int) -> bytes:
    """The JSON text of `fields`, sometimes mangled: cut short, wrapped in a list, or with stray bytes."""
    text = json.dumps(fields).encode()
    if mangle == 1:
        return text[: len(text) // 2]
    if mangle == 2:
        return b"[" + text + b"]"
    if mangle == 3:
        return b"\xef\xbb\xbf" + text  # a UTF-8 byte order mark
    if mangle == 4:
        return text + b"\x00\xff"
    return text


json_bodies = st.one_of(st.builds(json_body, compare_fields(), st.integers(0, 6)), st.binary(max_size=300),
                        st.builds(lambda v: json.dumps(v).encode(), json_values))


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type, from well-formed to broken."""
    boundary = draw(st.sampled_from(("xyz", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "a" * 70, "b=c", "")))
    names = ("originFace", "targetFace", "threshold", "callbackUrl", "livenessCheck", "other", "", 'ori"gin',
             "originFace\r\nX: y")
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(names))
        content = draw(st.one_of(body_images, st.binary(max_size=64), st.builds(str.encode, st.text(max_size=20))))
        disposition = draw(st.sampled_from((
            f'form-data; name="{name}"', f'form-data; name="{name}"; filename="photo.jpg"', f"form-data; name={name}",
            "form-data", "attachment", f'form-data; name*=UTF-8\'\'{name}')))
        headers = f"Content-Disposition: {disposition}\r\n"
        if draw(st.booleans()):
            headers += "Content-Type: " + draw(st.sampled_from(("image/jpeg", "text/plain", "multipart/mixed",
                                                                "application/octet-stream"))) + "\r\n"
        if draw(st.integers(0, 5)) == 0:
            headers += "Content-Transfer-Encoding: " + draw(st.sampled_from(("base64", "quoted-printable", "x"))) \
                + "\r\n"
        parts.append(f"--{boundary}\r\n{headers}\r\n".encode() + content + b"\r\n")
    body = b"".join(parts) + draw(st.sampled_from((f"--{boundary}--\r\n".encode(), b"", f"--{boundary}".encode(),
                                                   b"--wrong--\r\n")))
    if draw(st.integers(0, 4)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    content_type = draw(st.sampled_from((f"multipart/form-data; boundary={boundary}",
                                         f'multipart/form-data; boundary="{boundary}"', "multipart/form-data",
                                         f"multipart/mixed; boundary={boundary}")))
    return body, content_type


def run_property(strategy: st.SearchStrategy[Any], examples: int, check: Callable[[Any], None],
                 deadline_ms: int = 2000) -> int:
    """Run `check` on `examples` generated inputs (times the scale); returns how many it really ran, which
    the tests assert, so that the counts they claim are counts they made."""
    ran = 0

    @fuzz_settings(examples, deadline_ms)
    @given(strategy)
    def counted(value: Any) -> None:
        nonlocal ran
        ran += 1
        check(value)

    counted()
    return ran
