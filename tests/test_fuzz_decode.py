"""Fuzzing image sniffing, decoding and EXIF handling in process: every input decodes or is 400 / 1003.

Nothing else may come out (no other exception, no crash), each input is decoded within the deadline, and
the process's memory after thousands of inputs is what it was after the first few.
"""

from __future__ import annotations

import pytest
from PIL import Image

from engine.decode import decode_image
from engine.errors import BadInput
from tests.conftest import save_image
from tests.fuzzing import (
    PILLOW_WARNINGS,
    assert_decoded,
    assert_documented_error,
    exif_bytes,
    exif_images,
    mutated_images,
    random_images,
    run_property,
    scaled,
    seed_images,
)
from tests.memory import settled_rss_mib

pytestmark = pytest.mark.filterwarnings(PILLOW_WARNINGS)

EXAMPLES = {"mutated": 2200, "random": 1000, "exif": 1000}
# Growth allowed over the run: less than one largest allowed image (50 MP of RGB is 143 MiB), which the
# allocator may keep after a fuzzed header asked for it; a leak of 32 KiB an input would already exceed it.
RSS_GROWTH_MIB = 128


def decode_or_refuse(data: bytes) -> None:
    """The property: a decoded upright RGB image, or BadInput (400 / 1003); nothing else."""
    try:
        image = decode_image(data)
    except BadInput as error:
        assert_documented_error(error)
        return
    assert_decoded(image)


def test_seed_images_all_decode() -> None:
    for data in seed_images():
        assert_decoded(decode_image(data))


def test_fuzzed_images_decode_or_are_refused_with_bounded_memory() -> None:
    for data in seed_images():  # the baseline includes Pillow's plugins
        decode_or_refuse(data)
    before = settled_rss_mib()
    strategies = {"mutated": mutated_images(), "random": random_images, "exif": exif_images()}
    ran = {name: run_property(strategy, EXAMPLES[name], decode_or_refuse) for name, strategy in strategies.items()}
    grown = settled_rss_mib() - before
    assert all(ran[name] >= scaled(EXAMPLES[name]) for name in EXAMPLES), ran
    assert grown < RSS_GROWTH_MIB, f"RSS grew by {grown:.0f} MiB over {sum(ran.values())} inputs"


@pytest.mark.parametrize("orientation", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 255, 65535])
def test_any_orientation_tag_gives_an_image_of_the_right_shape(orientation: int) -> None:
    """Orientations 5-8 turn the image a quarter, 1-4 do not; values outside 1-8 are ignored, not errors."""
    data = save_image(Image.new("RGB", (30, 20)), "JPEG", exif=exif_bytes(orientation))
    image = decode_image(data)
    assert (image.width, image.height) == ((20, 30) if 5 <= orientation <= 8 else (30, 20))
