"""Benchmark inputs made from the test photos: 1920x1080 JPEGs with one face each."""

from __future__ import annotations

import cv2
import numpy as np

from engine.decode import decode_image
from tests.assets import asset_path

FULL_HD = (1920, 1080)


def full_hd_jpeg(name: str, quality: int = 90) -> bytes:
    """The test photo scaled to fill 1080 rows, centred on a 1920x1080 grey canvas, as a JPEG."""
    return on_full_hd(decode_image(asset_path(name).read_bytes()).pixels, quality)


def on_full_hd(pixels: np.ndarray, quality: int = 90, rows: int = FULL_HD[1]) -> bytes:
    """RGB pixels scaled to `rows` rows (all 1080 unless told), centred on a 1920x1080 grey canvas, as a JPEG."""
    width, height = FULL_HD
    scale = rows / pixels.shape[0]
    resized = cv2.resize(pixels, (min(width, round(pixels.shape[1] * scale)), min(height, rows)),
                         interpolation=cv2.INTER_LINEAR)
    canvas = np.full((height, width, 3), 128, dtype=np.uint8)
    left, top = (width - resized.shape[1]) // 2, (height - resized.shape[0]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return encoded.tobytes()
