"""Hostile and odd images, generated in memory (never committed): bombs, broken files, odd modes, face grids."""

from __future__ import annotations

import struct
import zlib
from functools import cache

import numpy as np
from PIL import Image

from engine.decode import decode_image
from engine.detector import UltraFaceDetector
from tests.assets import asset_path
from tests.conftest import encode, save_image

FACE_PHOTO = "obama.jpg"
# Where the face of FACE_PHOTO is (left, top, right, bottom), with a margin: read off the detector's box.
FACE_BOX = (361, 75, 623, 453)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def rgb_png(width: int, height: int, idat: bytes) -> bytes:
    """An 8-bit RGB PNG of the claimed size around the given (compressed) pixel stream."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A few hundred bytes of PNG whose header claims `width` x `height` pixels."""
    return rgb_png(width, height, zlib.compress(bytes(1024)))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF0 header is rewritten to claim other dimensions."""
    data = bytearray(encode(np.zeros((8, 8, 3), dtype=np.uint8), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def zeros_deflate(expanded_mib: int) -> bytes:
    """A zlib stream of `expanded_mib` MiB of zeros, about 1 KiB per MiB, made without inflating it here.

    After a full flush the compressor starts afresh, so every further MiB compresses to the same bytes and
    is repeated rather than recompressed. The stream has no end (a reader stops when its image is full).
    """
    compressor = zlib.compressobj(9)
    megabyte = bytes(1 << 20)
    first = compressor.compress(megabyte) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(megabyte) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + repeat * (expanded_mib - 1)


def zlib_bomb_png(width: int, height: int, expanded_mib: int = 4500) -> bytes:
    """An RGB PNG whose single IDAT inflates to gigabytes of zeros (the file stays under 5 MB)."""
    return rgb_png(width, height, zeros_deflate(expanded_mib))


@cache
def face_image() -> Image.Image:
    """The face of the test photo, cropped with a margin."""
    with Image.open(asset_path(FACE_PHOTO)) as image:
        return image.convert("RGB").crop(FACE_BOX)


def face_grid(size: tuple[int, int], tile_width: int) -> tuple[bytes, int]:
    """A JPEG of `size` tiled with the face at `tile_width` pixels wide; also how many faces it holds."""
    face = face_image()
    tile = face.resize((tile_width, round(tile_width * face.height / face.width)))
    grid = Image.new("RGB", size, (128, 128, 128))
    count = 0
    for top in range(0, size[1] - tile.height + 1, tile.height):
        for left in range(0, size[0] - tile.width + 1, tile.width):
            grid.paste(tile, (left, top))
            count += 1
    return save_image(grid, "JPEG", quality=90), count


def every_face(detector: UltraFaceDetector, data: bytes) -> int:
    """How many faces the detector finds with no cap: a detector over the same model, capped at a million."""
    uncapped = UltraFaceDetector(detector.backend, detector.spec, max_faces=1_000_000)
    (found,) = uncapped.detect([decode_image(data).pixels])
    return len(found)


def odd_variants() -> dict[str, bytes]:
    """The face photo in modes and formats a camera or a kiosk may send; each must decode to the same face."""
    face = face_image()
    grey16 = np.asarray(face.convert("L")).astype(np.uint16) * 257
    return {
        "cmyk.jpg": save_image(face.convert("CMYK"), "JPEG", quality=95),
        "grey.jpg": save_image(face.convert("L"), "JPEG", quality=95),
        "progressive.jpg": save_image(face, "JPEG", quality=95, progressive=True),
        "palette.png": save_image(face.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "palette-transparent.png": save_image(face.convert("P", palette=Image.Palette.ADAPTIVE), "PNG",
                                              transparency=0),
        "grey16.png": save_image(Image.fromarray(grey16), "PNG"),
        "rgba.png": save_image(face.convert("RGBA"), "PNG"),
        "grey-alpha.png": save_image(face.convert("LA"), "PNG"),
        "rgb.bmp": save_image(face, "BMP"),
        "palette.bmp": save_image(face.convert("P", palette=Image.Palette.ADAPTIVE), "BMP"),
    }
