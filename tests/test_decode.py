"""Decoding: formats by their bytes, bounds from the header before any allocation, the documented error."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import ExifTags, Image

from bench.photos import full_hd_jpeg
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


def _pillow_decoded(data: bytes, long_side: int) -> np.ndarray:
    """The general path on its own: Pillow, DCT-scaled by its draft mode to at least `long_side`."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (long_side, long_side * image.height // image.width))
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_plain_jpeg_fast_path_decodes_the_pixels_pillow_does(photo, mode: str) -> None:
    """Upright colour and grey JPEGs go straight to libjpeg-turbo; the pixels are Pillow's, scaled alike."""
    with Image.open(io.BytesIO(photo("sample1.jpg"))) as image:
        data = save_image(image.convert(mode).resize((1920, 1080)), "JPEG", quality=90)
    decoded = decode_image(data).pixels
    expected = _pillow_decoded(data, 960)
    assert decoded.shape == expected.shape == (540, 960, 3)
    diff = np.abs(decoded.astype(int) - expected.astype(int))
    assert diff.mean() < 0.5 and diff.max() <= 8


def test_rotated_jpeg_takes_the_general_path_and_is_turned_upright(photo) -> None:
    with Image.open(io.BytesIO(photo("sample1.jpg"))) as image:
        exif = Image.Exif()
        exif[ExifTags.Base.Orientation] = 6
        upright = save_image(image, "JPEG", quality=90)
        rotated = save_image(image, "JPEG", quality=90, exif=exif.tobytes())
    height, width, _ = decode_image(upright).pixels.shape
    assert decode_image(rotated).pixels.shape == (width, height, 3)


def test_jpeg_libjpeg_only_warns_about_decodes_as_pillow_decodes_it(photo) -> None:
    """Stray bytes before the scan: libjpeg-turbo's strict mode refuses them, Pillow accepts them, and so do we."""
    data = photo("sample1.jpg")
    scan = data.index(b"\xff\xda")
    damaged = data[:scan] + b"\x00\x00" + data[scan:]
    decoded = decode_image(damaged).pixels
    np.testing.assert_array_equal(decoded, _pillow_decoded(damaged, 960))


def test_requests_that_dct_scaling_rounds_alike_share_one_decode_of_the_same_pixels() -> None:
    """The refined box and the fine box of one face ask for sizes a pixel or two apart: one decode serves both
    (a face's second decode cost twice per compare before), and it is the decode each would have made."""
    data = full_hd_jpeg("biden.jpg")
    image = decode_image(data)
    assert image.width == 960 and image.by_libjpeg
    first, second = image.sharper(1.79), image.sharper(1.8)  # asks for 1719 and 1728: both decode at 1920
    assert second is first and first.width == 1920
    for asked in (1719, 1728):
        alone = decode_image(data, replace(DecodeLimits(), decode_long_side=asked)).pixels
        assert np.array_equal(first.pixels, alone)
    smaller = image.sharper(1.05)  # 1008: 5/8 of the file, 1200 wide
    assert smaller.width == 1200 and smaller is not first
    assert image.sharper(1.06) is smaller


def test_a_rotated_jpegs_second_decodes_are_kept_by_the_size_asked_for() -> None:
    with Image.open(io.BytesIO(full_hd_jpeg("biden.jpg"))) as image:
        exif = Image.Exif()
        exif[ExifTags.Base.Orientation] = 6
        rotated = save_image(image, "JPEG", quality=90, exif=exif.tobytes())
    decoded = decode_image(rotated)
    assert not decoded.by_libjpeg and decoded.height == 960
    sharper = decoded.sharper(2.0)
    assert sharper.height == 1920 and decoded.sharper(2.0) is sharper
    assert np.array_equal(sharper.pixels, decode_image(rotated, DecodeLimits(decode_long_side=1920)).pixels)
