"""Decoding: formats by their bytes, bounds from the header before any allocation, the documented error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.decode import DecodeLimits, decode_image, sniff_format
from engine.errors import BadInput
from tests.conftest import encode, save_image
from tests.hostile_images import bomb_png, jpeg_claiming


def test_formats_are_sniffed_by_bytes() -> None:
    pixels = np.zeros((4, 4, 3), dtype=np.uint8)
    assert sniff_format(encode(pixels, "JPEG")) == "jpeg"
    assert sniff_format(encode(pixels, "PNG")) == "png"
    assert sniff_format(encode(pixels, "BMP")) == "bmp"
    assert sniff_format(encode(pixels, "GIF")) is None
    assert sniff_format(encode(pixels, "WEBP")) is None


@pytest.mark.parametrize("data,reason", [
    (b"", "empty"),
    (b"GIF89a" + b"\0" * 100, "not JPEG, PNG or BMP"),
    (bomb_png(30000, 30000), "out of bounds"),
    (bomb_png(9000, 9000), "too large"),
    (jpeg_claiming(60000, 60000), "out of bounds"),
    (b"\xff\xd8\xff\xe0" + b"\0" * 50, "corrupt"),
])
def test_bad_images_are_refused_with_1003(data: bytes, reason: str) -> None:
    with pytest.raises(BadInput) as caught:
        decode_image(data)
    assert caught.value.error_code == 1003 and caught.value.http_status == 400
    assert reason in caught.value.full_message


def test_truncated_files_of_each_format_are_refused() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    for image_format in ("JPEG", "PNG", "BMP"):
        data = encode(pixels, image_format)
        with pytest.raises(BadInput):
            decode_image(data[: len(data) // 2])


def test_over_five_megabytes_is_refused() -> None:
    with pytest.raises(BadInput, match="over 5 MB"):
        decode_image(b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024))


def test_large_jpeg_is_decoded_scaled_down_keeping_its_aspect() -> None:
    pixels = np.zeros((3000, 4000, 3), dtype=np.uint8)
    decoded = decode_image(encode(pixels, "JPEG"), DecodeLimits(decode_long_side=1024))
    assert decoded.width >= 1024 and decoded.width < 4000
    assert decoded.width * 3 == decoded.height * 4


def test_one_pixel_and_sixteen_bit_images_decode() -> None:
    assert decode_image(encode(np.zeros((1, 1, 3), dtype=np.uint8), "PNG")).pixels.shape == (1, 1, 3)
    deep = save_image(Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)), "PNG")
    assert decode_image(deep).pixels.shape == (8, 8, 3)
