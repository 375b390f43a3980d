"""bench.decode_scales' region of a larger decode: what the crops read, joined, plus one MCU, clipped."""

from __future__ import annotations

import cv2
import numpy as np

from bench.decode_scales import region, warp_reach


def test_a_region_is_the_reads_joined_and_one_mcu_of_the_file_about_them() -> None:
    # 1200x675 decoded from a 1920 px wide file: one 16 px MCU of the file is 10 px here.
    reads = [(550.0, 280.0, 650.0, 380.0), (600.0, 300.0, 700.0, 350.0)]
    assert region((1200, 675), 1920, reads) == (540, 270, 710, 390)
    assert region((960, 540), 960, [(-30.0, 10.0, 20.0, 600.0)]) == (0, 0, 36, 540)


def test_a_warps_reach_holds_every_pixel_it_reads() -> None:
    """The warp of an image blacked out beyond the reach is the warp of the whole image, and the reach is no
    wider than the rotated crop's bounding box and the bilinear neighbours."""
    pixels = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    scale, angle = 0.7, 0.3
    matrix = np.array([[scale * np.cos(angle), -scale * np.sin(angle), 20.0],
                       [scale * np.sin(angle), scale * np.cos(angle), -40.0]], dtype=np.float32)
    x1, y1, x2, y2 = warp_reach(matrix, (112, 112))
    inside = np.zeros_like(pixels)
    inside[max(0, y1) : y2, max(0, x1) : x2] = pixels[max(0, y1) : y2, max(0, x1) : x2]
    warp = cv2.warpAffine(pixels, matrix, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    assert np.array_equal(cv2.warpAffine(inside, matrix, (112, 112), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_CONSTANT), warp)
    side = 112 / scale * (np.cos(angle) + np.sin(angle))  # the rotated crop's bounding box in the image
    assert x2 - x1 <= side + 3 and y2 - y1 <= side + 3
