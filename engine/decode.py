"""Image bytes to an upright RGB array: formats recognised by their bytes, bounds checked before decoding."""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import simplejpeg
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from engine.errors import BadInput

MAX_IMAGE_BYTES = 5 * 1024 * 1024
ALLOWED_FORMATS = {"JPEG": "jpeg", "PNG": "png", "BMP": "bmp"}
# 16-bit greyscale (PNG): Pillow's convert("RGB") clips these samples at 255 instead of scaling them.
WIDE_GREY_MODES = ("I", "I;16", "I;16B", "I;16L")


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds checked from the header alone, so a decompression bomb is refused before any allocation."""

    max_bytes: int = MAX_IMAGE_BYTES
    max_side: int = 12000
    max_pixels: int = 50_000_000
    min_side: int = 1
    # Large JPEGs are decoded DCT-scaled (by n/8; rotated or CMYK ones by 1/2, 1/4, 1/8) to the smallest
    # size with this long side or more:
    # 1.5x the detector's 640, so it sees the same pixels as from the full image (a 1920x1080 photo is
    # letterboxed to 640x360 either way) and the landmark and recognizer crops keep 1.5x its resolution.
    # Full HD decodes at 960x540 in a third of the time (docs/PERFORMANCE.md).
    decode_long_side: int = 960


@dataclass(frozen=True)
class DecodedImage:
    """Upright RGB pixels; `width`/`height` are those of the upright image the boxes refer to.

    A JPEG decoded DCT-scaled keeps its bytes (in memory only) and its `limits`: a small face can then be
    decoded again at the resolution the file has (`sharper`)."""

    pixels: np.ndarray
    format: str
    source: bytes | None = None
    limits: DecodeLimits | None = None
    file_long_side: int = 0
    # Decoded by libjpeg-turbo straight (`_decode_plain_jpeg`): the header tells the size any scale gives.
    by_libjpeg: bool = False
    # The larger decodes already made, by the size they have (else by the long side asked for): the face
    # check and the crops ask for the same one, or for sizes a pixel apart that DCT scaling rounds alike.
    _sharper: dict[int | tuple[int, int], DecodedImage] = field(default_factory=dict, compare=False, repr=False)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def long_side(self) -> int:
        return max(self.pixels.shape[:2])

    @property
    def source_scale(self) -> float:
        """The file's pixels per decoded pixel: above 1 when a large JPEG was decoded DCT-scaled."""
        return self.file_long_side / self.long_side if self.file_long_side else 1.0

    def sharper(self, factor: float) -> DecodedImage:
        """The same image decoded again `factor` times larger (DCT scaling rounds up to n/8), at most at the
        file's own resolution; itself when it already is at that resolution."""
        if self.source is None or self.limits is None or self.long_side >= self.file_long_side:
            return self
        long_side = min(self.file_long_side, math.ceil(self.long_side * factor))
        size = self._decoded_size(long_side)
        if size not in self._sharper:
            decoded = decode_image(self.source, replace(self.limits, decode_long_side=long_side))
            self._sharper[size if decoded.by_libjpeg else long_side] = decoded
            return decoded
        return self._sharper[size]

    def _decoded_size(self, long_side: int) -> int | tuple[int, int]:
        """(height, width) a decode for `long_side` will have, read from the header, for a JPEG libjpeg-turbo
        decodes straight; else `long_side` itself."""
        if not self.by_libjpeg or self.source is None:
            return long_side
        height, width = simplejpeg.decode_jpeg_header(self.source)[:2]
        min_width, min_height = _minimum_size(width, height, long_side)
        scaled_height, scaled_width = simplejpeg.decode_jpeg_header(self.source, min_height=min_height,
                                                                    min_width=min_width)[:2]
        return scaled_height, scaled_width


def sniff_format(data: bytes) -> str | None:
    """The format by magic bytes, whatever the file was called or labelled."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:2] == b"BM":
        return "bmp"
    return None


def decode_image(data: bytes, limits: DecodeLimits = DecodeLimits()) -> DecodedImage:
    """Decode JPEG, PNG or BMP bytes; raise BadInput (1003) for anything else or anything broken."""
    if not data:
        raise BadInput("empty image")
    if len(data) > limits.max_bytes:
        raise BadInput(f"image is over {limits.max_bytes // (1024 * 1024)} MB")
    kind = sniff_format(data)
    if kind is None:
        raise BadInput("image is not JPEG, PNG or BMP")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
            _check_bounds(image.size, limits)
            file_long_side = max(image.size)
            plain = _decode_plain_jpeg(data, image, limits.decode_long_side) if kind == "jpeg" else None
            by_libjpeg = plain is not None
            if plain is None:
                if kind == "jpeg":
                    _draft_large_jpeg(image, limits.decode_long_side)
                # In place: otherwise an upright photo is copied whole for nothing.
                ImageOps.exif_transpose(image, in_place=True)
                plain = _rgb(image)
    except BadInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadInput("image dimensions out of bounds") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadInput(f"corrupt or truncated {kind} image") from exc
    if max(plain.shape[:2]) >= file_long_side:
        return DecodedImage(pixels=plain, format=kind, by_libjpeg=by_libjpeg)
    return DecodedImage(pixels=plain, format=kind, source=data, limits=limits, file_long_side=file_long_side,
                        by_libjpeg=by_libjpeg)


def _rgb(image: Image.Image) -> np.ndarray:
    """8-bit RGB; 16-bit grey keeps its high byte, so a 16-bit photo is not turned white."""
    if image.mode in WIDE_GREY_MODES:
        grey = (np.asarray(image).astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def _check_bounds(size: tuple[int, int], limits: DecodeLimits) -> None:
    width, height = size
    if min(width, height) < limits.min_side or max(width, height) > limits.max_side:
        raise BadInput(f"image dimensions {width}x{height} out of bounds")
    if width * height > limits.max_pixels:
        raise BadInput(f"image of {width}x{height} pixels is too large")


def _decode_plain_jpeg(data: bytes, image: Image.Image, long_side: int) -> np.ndarray | None:
    """A colour or grey, upright JPEG (what nearly every camera sends) by libjpeg-turbo straight into an
    array, DCT-scaled (by n/8) to the smallest size with `long_side`: against Pillow, no copy out of the
    image and the GIL released throughout (docs/PERFORMANCE.md). None for anything else, and for what
    libjpeg only warns about (stray bytes, a short scan): Pillow decides those, as it always has."""
    if image.mode not in ("RGB", "L") or image.getexif().get(ExifTags.Base.Orientation, 1) != 1:
        return None
    min_width, min_height = _minimum_size(*image.size, long_side)
    try:
        return simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=min_width, min_height=min_height)
    except ValueError:
        return None


def _minimum_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """The (width, height) a DCT-scaled decode must reach for `long_side`: the file's own size at most."""
    ratio = min(1.0, long_side / max(width, height))
    return math.ceil(width * ratio), math.ceil(height * ratio)


def _draft_large_jpeg(image: Image.Image, long_side: int) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the image is far larger than the pipeline needs."""
    width, height = image.size
    if max(width, height) <= long_side:
        return
    ratio = long_side / max(width, height)
    image.draft("RGB", (max(1, int(width * ratio)), max(1, int(height * ratio))))
