"""The opt-in fast profile (engine/profiles.py) with the real models and photos."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.pipeline import FacePipeline, PipelineConfig
from models.store import fetch_models
from service.config import load_config


@pytest.fixture(scope="module")
def fast() -> Iterator[FacePipeline]:
    fetch_models()
    pipeline = FacePipeline(PipelineConfig(threads=2, profile="fast"))
    yield pipeline
    pipeline.close()


def test_fast_runs_one_recognizer_with_its_own_calibration(fast: FacePipeline, pipeline: FacePipeline) -> None:
    assert [member.spec.name for member in fast.recognizer.members] == ["fr_feature"]
    assert [r["name"] for r in fast.calibration.details["recognizers"]] == ["fr_feature"]
    assert fast.calibration.details["pipeline"]["detector_input"] == [320, 240]
    assert fast.similarity_path != pipeline.similarity_path
    cosines, scores = fast.calibration.knots  # strictly monotonic, else ValueError
    assert fast.calibration.similarity(float(cosines[-1]) + 0.01) == 100.0


def test_fast_answers_the_test_photos(fast: FacePipeline, photo) -> None:
    """Same person matches, different persons do not, at the default threshold and the fast calibration."""
    matches = {other: fast.compare(photo("obama.jpg"), photo(other)) for other in ("obama2.jpg", "obama3.jpg")}
    assert all(result.is_match for result in matches.values()), matches
    other_person = fast.compare(photo("obama.jpg"), photo("biden.jpg"))
    assert other_person.match is not None and not other_person.is_match
    assert other_person.match.similarity < 60


def test_fast_finds_the_group_photos_faces(fast: FacePipeline, photo) -> None:
    (found,) = fast.detect([fast.decode(photo("sample1.jpg"))])
    assert len(found) >= 3


def test_unknown_profile_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="profile: 'quick' is not one of accurate, fast"):
        load_config(env={"FACECOMPARE_PROFILE": "quick"})
    assert load_config(env={"FACECOMPARE_PROFILE": "fast"}).pipeline_config().profile == "fast"
    with pytest.raises(ValueError, match="unknown profile 'quick'"):
        FacePipeline(PipelineConfig(profile="quick"))
