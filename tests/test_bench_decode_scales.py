"""bench.decode_scales' region of a larger decode: each face's check square plus one MCU, clipped, joined."""

from __future__ import annotations

from bench.decode_scales import region
from engine.faces import Detection


def test_a_faces_region_is_its_check_square_and_one_mcu_of_the_file() -> None:
    # 1200x675 decoded from a 1920 px wide file: one 16 px MCU of the file is 10 px here.
    face = Detection(580.0, 300.0, 620.0, 350.0, 0.99)
    assert region((1200, 675), 1920, [face]) == (540, 265, 660, 385)


def test_regions_are_clipped_to_the_image_and_joined_per_photo() -> None:
    corner = Detection(0.0, 0.0, 20.0, 20.0, 0.9)
    far = Detection(900.0, 500.0, 940.0, 540.0, 0.9)
    assert region((960, 540), 960, [corner]) == (0, 0, 46, 46)
    assert region((960, 540), 960, [corner, far]) == (0, 0, 960, 540)
