"""Boxes that are not faces are refused (the detector's second look, then the face classifier); every face of the
test photos is kept."""

from __future__ import annotations

import pytest

from engine.pipeline import FacePipeline
from tests.conftest import encode
from tests.test_small_faces import scene_with

FACE_PHOTOS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama_partial_face.jpg",
               "obama_partial_face2.jpg", "32bit.png", *(f"sample{i}.jpg" for i in range(1, 7))]


def test_a_cat_is_not_a_face(pipeline: FacePipeline, photo) -> None:
    cat = pipeline.decode(photo("chelsea.png"))
    (boxes,) = pipeline.detector.detect([cat.pixels])
    assert max(box.score for box in boxes) > 0.95, "the detector alone takes the cat for a face"
    assert pipeline.detect([cat]) == [[]]
    as_origin = pipeline.compare(photo("chelsea.png"), photo("obama.jpg"))
    assert as_origin.face is None and as_origin.match is None
    as_target = pipeline.compare(photo("obama.jpg"), photo("chelsea.png"))
    assert as_target.face is not None and as_target.match is None


def test_what_the_second_look_lets_through_the_classifier_refuses(pipeline: FacePipeline, photo) -> None:
    """The Hubble deep field: the detector finds its box again on the second look; ONet takes it for no face."""
    image = pipeline.decode(photo("hubble_deep_field.jpg"))
    (found,) = pipeline.detector.detect([image.pixels])
    pixels, boxes = pipeline.crop_source(image, found)
    (looks,) = pipeline.face_check.second_look([pixels], [boxes])
    assert max(looks) > 0.9
    (probabilities,) = pipeline.face_check.face_probabilities([pixels], [boxes])
    assert max(probabilities) < pipeline.face_check.classifier.threshold
    assert pipeline.detect([image]) == [[]]
    result = pipeline.compare(photo("hubble_deep_field.jpg"), photo("obama.jpg"))
    assert result.face is None and result.match is None


@pytest.mark.parametrize("name", FACE_PHOTOS)
def test_the_classifier_takes_each_test_photo_for_a_face(pipeline: FacePipeline, photo, name: str) -> None:
    image = pipeline.decode(photo(name))
    (found,) = pipeline.detector.detect([image.pixels])
    pixels, boxes = pipeline.crop_source(image, found)
    (probabilities,) = pipeline.face_check.face_probabilities([pixels], [boxes])
    assert max(probabilities) >= pipeline.face_check.classifier.threshold


@pytest.mark.parametrize("names", [["hubble_deep_field.jpg"], ["sample2.jpg", "hubble_deep_field.jpg", "obama.jpg"]])
def test_the_check_decides_as_the_probabilities_say(pipeline: FacePipeline, photo, names: list[str]) -> None:
    """`sees_a_face` looks at the corrected squares only where the first leave a photo undecided: the same
    answer as the full probabilities."""
    groups, expected = [], []
    for name in names:
        image = pipeline.decode(photo(name))
        (found,) = pipeline.detector.detect([image.pixels])
        pixels, boxes = pipeline.crop_source(image, found)
        (probabilities,) = pipeline.face_check.face_probabilities([pixels], [boxes])
        groups.append([(pixels, box) for box in boxes])
        expected.append(max(probabilities) >= pipeline.face_check.classifier.threshold)
    assert pipeline.face_check.classifier.sees_a_face(groups) == expected
    assert pipeline.face_check.classifier.sees_a_face([[], *groups]) == [False, *expected]


@pytest.mark.parametrize("name", FACE_PHOTOS)
def test_every_face_of_the_test_photos_is_kept(pipeline: FacePipeline, photo, name: str) -> None:
    image = pipeline.decode(photo(name))
    (boxes,) = pipeline.detector.detect([image.pixels])
    assert pipeline.detect([image]) == [boxes]


def test_a_small_face_is_looked_at_again_in_the_files_own_pixels(pipeline: FacePipeline, photo) -> None:
    """A 32 px face of a Full HD JPEG is 18 px in the 960-px decode: its second look takes the file decoded
    larger, the same decode its crops are then taken from (made once)."""
    image = pipeline.decode(encode(scene_with(pipeline, photo("obama2.jpg"), 32), "JPEG", quality=90))
    (found,) = pipeline.detector.detect([image.pixels])
    pixels, boxes = pipeline.crop_source(image, found)
    assert pixels.shape[1] > image.width
    assert pipeline.crop_source(image, found)[0] is pixels
    (decoded,), (sharper,) = (pipeline.face_check.second_look([p], [b]) for p, b in
                              ((image.pixels, found), (pixels, boxes)))
    assert sharper[0] >= decoded[0] > 0.9
    assert pipeline.detect([image]) == [found]
