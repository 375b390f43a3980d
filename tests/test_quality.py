"""Face quality in the answer: the values move the right way on the real photos, and reach HTTP as documented."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator, validate

from bench.quality import quality_of as bench_quality_of
from engine.decode import DecodeLimits, decode_image
from engine.pipeline import FacePipeline, PipelineConfig
from engine.quality import FaceQuality, face_quality
from tests.fuzzing import fuzz_settings
from tests.http_helpers import Served, b64, blank_png

TURNED = ("obama2.jpg", "biden.jpg", "sample3.jpg")


def quality_of(pipeline: FacePipeline, pixels: np.ndarray) -> FaceQuality:
    """The quality the answer gives the origin's face, through the pipeline's own compare."""
    quality = bench_quality_of(pipeline, pixels)
    assert quality is not None
    return quality


@pytest.mark.parametrize("name", ["obama.jpg", "biden.jpg", "sample3.jpg"])
def test_blurred_copy_is_less_sharp_and_darkened_copy_darker(pipeline: FacePipeline, photo, name: str) -> None:
    pixels = pipeline.decode(photo(name)).pixels
    original = quality_of(pipeline, pixels)
    blurred = quality_of(pipeline, cv2.GaussianBlur(pixels, (0, 0), 2.0))
    darkened = quality_of(pipeline, (pixels * 0.5).astype(np.uint8))
    assert blurred.sharpness < original.sharpness - 10
    assert 0.4 < darkened.brightness / original.brightness < 0.6
    assert 0 < darkened.brightness < original.brightness < 100 and 0 < original.sharpness < 100


@pytest.mark.parametrize("name", TURNED)
def test_mirrored_photo_turns_the_other_way_by_about_as_much(pipeline: FacePipeline, photo, name: str) -> None:
    pixels = pipeline.decode(photo(name)).pixels
    pose = quality_of(pipeline, pixels).pose
    mirrored = quality_of(pipeline, pixels[:, ::-1]).pose
    assert abs(pose.yaw) > 15, "a photo whose face is turned"
    assert np.sign(mirrored.yaw) == -np.sign(pose.yaw)
    assert abs(pose.yaw + mirrored.yaw) < 0.2 * abs(pose.yaw)
    assert abs(pose.roll + mirrored.roll) < 2 and abs(pose.pitch - mirrored.pitch) < 8


def test_frontal_face_is_near_zero_and_a_tilted_one_rolls(pipeline: FacePipeline, photo) -> None:
    pixels = pipeline.decode(photo("obama.jpg")).pixels
    frontal = quality_of(pipeline, pixels).pose
    assert abs(frontal.yaw) < 10 and abs(frontal.pitch) < 10 and abs(frontal.roll) < 5
    height, width = pixels.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), 20, 1.0)  # anticlockwise in the image
    tilted = quality_of(pipeline, cv2.warpAffine(pixels, turn, (width, height))).pose
    assert -25 < tilted.roll - frontal.roll < -15


def test_size_is_counted_in_the_pixels_of_the_photo_as_sent(photo) -> None:
    """A large JPEG decoded DCT-scaled and at full size give the same face width."""
    scaled = FacePipeline(PipelineConfig(threads=2))
    full = FacePipeline(PipelineConfig(threads=2, limits=DecodeLimits(decode_long_side=12000)),
                        models=scaled.models)
    data = photo("sample1.jpg")
    assert decode_image(data).source_scale == 2.0 and decode_image(data, full.config.limits).source_scale == 1.0
    sizes = [p.compare(data, data).face.quality.size_px for p in (scaled, full)]
    assert abs(sizes[0] - sizes[1]) <= 0.05 * sizes[1]


def test_quality_over_http_matches_the_openapi_document(api: Served, photo) -> None:
    document = requests.get(api.url + "/openapi.json", timeout=10).json()
    schema = {**document["components"]["schemas"]["CompareResult"], "components": document["components"]}
    body = api.compare({"originFace": b64(photo("obama.jpg")), "targetFace": b64(photo("biden.jpg"))}).json()
    validate(body, schema, cls=OAS30Validator)
    for face in body["result"].values():
        quality = face["quality"]
        assert set(quality) == {"brightness", "sharpness", "pose", "sizePx"}
        assert set(quality["pose"]) == {"yaw", "pitch", "roll"} and isinstance(quality["sizePx"], int)
    alone = api.compare({"originFace": b64(photo("obama.jpg")), "targetFace": b64(blank_png())}).json()
    validate(alone, schema, cls=OAS30Validator)
    assert alone["result"]["face"]["quality"]["sizePx"] > 0 and alone["result"]["faceMatch"]["quality"] is None
    with pytest.raises(ValidationError, match="101"):
        broken = {**body["result"]["face"]["quality"], "brightness": 101}
        validate({**body, "result": {**body["result"], "face": {**body["result"]["face"], "quality": broken}}},
                 schema, cls=OAS30Validator)


@pytest.fixture(scope="module")
def face_shape(pipeline: FacePipeline, photo) -> np.ndarray:
    """The 68 landmarks of a real face, centred on the origin."""
    pixels = pipeline.decode(photo("obama.jpg")).pixels
    (found,) = pipeline.detector.detect([pixels])
    (landmarks,) = pipeline.landmarks.landmarks68([(pixels, found[0])])
    return landmarks - landmarks.mean(axis=0)


@fuzz_settings(300)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.02, 3.0), angle=st.floats(-180, 180),
       squash=st.floats(0.2, 1.0), noise=st.floats(0.0, 0.3), shape=st.sampled_from([(40, 30), (480, 640)]))
def test_quality_of_any_face_shape_is_finite_and_in_range(face_shape: np.ndarray, seed: int, scale: float,
                                                          angle: float, squash: float, noise: float,
                                                          shape: tuple[int, int]) -> None:
    """Landmarks of a face turned, squashed (as by yaw), shrunk to a few pixels, noisy, anywhere in or out of
    an image of random pixels: a quality always, its values finite and in their ranges (never a NaN in JSON)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    turn = np.radians(angle)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    points = (face_shape * [squash, 1.0]) @ rotation.T * scale
    points += rng.normal(0, noise * scale * 50, points.shape) + rng.uniform(-20, shape[::-1] + np.array(20))
    quality = face_quality(pixels, points.astype(np.float32), size_px=1)
    assert 0 <= quality.brightness <= 100 and 0 <= quality.sharpness <= 100
    pose = quality.pose
    assert all(np.isfinite([pose.yaw, pose.pitch, pose.roll]))
    assert abs(pose.yaw) <= 180 and abs(pose.pitch) <= 90 and abs(pose.roll) <= 180
