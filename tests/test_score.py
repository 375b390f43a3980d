"""The calibrated score: monotonic, 80 at the cosine of FAR 1e-4, ten points per decade, clamped."""

from __future__ import annotations

import numpy as np
import pytest

from engine.faces import Detection
from engine.pipeline import ChosenFace, CompareResult, FacePipeline
from engine.score import SimilarityCalibration, score_for_far
from service.response import compare_body

CALIBRATION = SimilarityCalibration(
    cosine_at_far={"1e-2": 0.2, "1e-3": 0.3, "1e-4": 0.4, "1e-5": 0.5, "1e-6": 0.6}, details={})


def test_knots_map_to_ten_points_per_decade() -> None:
    assert score_for_far(1e-4) == pytest.approx(80)
    assert CALIBRATION.similarity(0.3) == pytest.approx(70)
    assert CALIBRATION.similarity(0.4) == pytest.approx(80)
    assert CALIBRATION.similarity(0.45) == pytest.approx(85)
    assert CALIBRATION.similarity(0.5) == pytest.approx(90)


def test_monotonic_and_clamped() -> None:
    cosines = np.linspace(-1, 1, 401)
    scores = [CALIBRATION.similarity(c) for c in cosines]
    assert scores[0] == 0 and scores[-1] == 100
    assert all(b >= a for a, b in zip(scores, scores[1:], strict=False))


def test_a_non_monotonic_calibration_is_refused() -> None:
    broken = SimilarityCalibration(cosine_at_far={"1e-3": 0.5, "1e-4": 0.4}, details={})
    with pytest.raises(ValueError):
        broken.similarity(0.1)


def test_shipped_calibration_puts_threshold_80_at_far_1e4(pipeline: FacePipeline) -> None:
    shipped = pipeline.calibration
    assert shipped.similarity(shipped.cosine_at_far["1e-4"]) == pytest.approx(80)


def test_shown_similarity_is_the_one_compared_with_the_threshold() -> None:
    """80.009 shows as 80.00: against a threshold of 80.005 neither the pipeline nor the body calls it a match."""
    similarity = CALIBRATION.similarity(0.40009)
    assert similarity == 80.0
    face = ChosenFace(Detection(0, 0, 10, 10, score=0.9), 100, 100, similarity=similarity)
    for threshold, expected in ((80.005, False), (80.0, True)):
        result = CompareResult(face=face, match=face, threshold=threshold)
        body = compare_body(result, "t")["result"]["faceMatch"]
        assert result.is_match is body["isMatch"] is expected and body["similarity"] == 80.0
