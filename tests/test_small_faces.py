"""Small faces of large JPEGs are embedded from the file's own pixels, not from the DCT-scaled decode."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.pipeline import FacePipeline
from tests.conftest import encode


def scene_with(pipeline: FacePipeline, photo: bytes, face_width: int) -> np.ndarray:
    """A 1920x1080 scene with the photo shrunk so that its face is `face_width` px wide."""
    pixels = pipeline.decode(photo).pixels
    (found,) = pipeline.detector.detect([pixels])
    scale = face_width / found[0].width
    small = cv2.resize(pixels, (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale)),
                       interpolation=cv2.INTER_AREA)
    scene = np.full((1080, 1920, 3), 120, dtype=np.uint8)
    scene[400 : 400 + small.shape[0], 900 : 900 + small.shape[1]] = small
    return scene


@pytest.mark.parametrize("scene_is_origin", [False, True])
def test_small_face_scores_as_at_the_files_resolution(pipeline: FacePipeline, photo, scene_is_origin: bool) -> None:
    """A 40 px face in a Full HD JPEG scores as the same pixels do in a PNG (decoded whole): with its crops
    taken from the 960-px decode it scored 5 points lower here."""
    scene = encode(scene_with(pipeline, photo("obama3.jpg"), 40), "JPEG", quality=90)
    full_resolution = encode(pipeline.decode(scene).sharper(2.0).pixels, "PNG")
    other = photo("obama.jpg")

    def compare(image: bytes):
        return pipeline.compare(image, other) if scene_is_origin else pipeline.compare(other, image)

    from_jpeg, from_png = compare(scene), compare(full_resolution)
    assert from_jpeg.is_match
    assert abs(from_jpeg.match.similarity - from_png.match.similarity) < 1.0
    box = from_jpeg.face if scene_is_origin else from_jpeg.match
    assert box.image_width == 960, "boxes stay in the decoded image's pixels"


def test_large_faces_are_not_decoded_again(pipeline: FacePipeline, photo) -> None:
    image = pipeline.decode(encode(cv2.resize(pipeline.decode(photo("obama.jpg")).pixels, (1920, 1080)), "JPEG"))
    (found,) = pipeline.detector.detect([image.pixels])
    pixels, boxes = pipeline.crop_source(image, found[:1])
    assert image.width == 960 and pixels is image.pixels and boxes == found[:1]


def test_sharper_stops_at_the_files_resolution(pipeline: FacePipeline, photo) -> None:
    image = pipeline.decode(encode(np.zeros((1080, 1920, 3), dtype=np.uint8), "JPEG"))
    assert image.width == 960
    assert image.sharper(1.5).width == 1440
    full = image.sharper(10.0)
    assert full.width == 1920 and full.sharper(2.0) is full
