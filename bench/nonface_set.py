"""Photos without a human face: registry sample images (bench/nonfaces.toml), each as shipped, rescaled to
fill 1920x1080 and 640x480, and five half-size crops of it rescaled the same way, JPEG-encoded at quality 90.

Split into halves by source image (alternate names in sorted order), so that a rule tuned on one half is
checked on photos it has not seen in any crop or size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from bench.small_faces import jpeg
from engine.decode import decode_image
from models import paths
from models.manifest import Source, tomllib
from models.registry import fetch_archive, read_member, sha256_bytes

CATALOGUE = Path(__file__).with_name("nonfaces.toml")
SIZES = ((1920, 1080), (640, 480))


@dataclass(frozen=True)
class Photo:
    name: str
    source: str
    half: str
    data: bytes


@cache
def _catalogue() -> tuple[dict[str, Source], dict[str, dict[str, str]]]:
    with CATALOGUE.open("rb") as f:
        data = tomllib.load(f)
    return {name: Source(name=name, **fields) for name, fields in data["sources"].items()}, data["files"]


def source_images() -> list[tuple[str, bytes]]:
    """(file name, bytes) of every catalogued image, each checked against its sha256."""
    sources, files = _catalogue()
    result = []
    for name, entry in sorted(files.items()):
        data = read_member(fetch_archive(sources[entry["source"]], paths.downloads_dir()), entry["member"])
        if sha256_bytes(data) != entry["sha256"]:
            raise RuntimeError(f"{name}: sha256 is not the pinned one")
        result.append((name, data))
    return result


def fill(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scaled to cover `size` (width, height) and cut to it about the centre."""
    width, height = size
    scale = max(width / pixels.shape[1], height / pixels.shape[0])
    covering = (max(width, round(pixels.shape[1] * scale)), max(height, round(pixels.shape[0] * scale)))
    scaled = cv2.resize(pixels, covering, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    top, left = (scaled.shape[0] - height) // 2, (scaled.shape[1] - width) // 2
    return np.ascontiguousarray(scaled[top : top + height, left : left + width])


def variants(pixels: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    height, width = pixels.shape[:2]
    crops = {"top-left": pixels[: height // 2, : width // 2], "top-right": pixels[: height // 2, width // 2 :],
             "bottom-left": pixels[height // 2 :, : width // 2], "bottom-right": pixels[height // 2 :, width // 2 :],
             "centre": pixels[height // 4 : height // 4 + height // 2, width // 4 : width // 4 + width // 2]}
    for size in SIZES:
        label = f"{size[0]}x{size[1]}"
        yield label, fill(pixels, size)
        for crop_name, crop in crops.items():
            yield f"{crop_name}@{label}", fill(crop, size)


def nonface_photos() -> list[Photo]:
    photos = []
    for index, (name, data) in enumerate(source_images()):
        half = "tune" if index % 2 == 0 else "check"
        photos.append(Photo(name, name, half, data))
        pixels = decode_image(data).pixels
        photos += [Photo(f"{name}/{label}", name, half, jpeg(variant)) for label, variant in variants(pixels)]
    return photos
