"""Coarse-to-fine detection gives the fine pass's answers: the same decision, faces and (nearly) similarity,
and a face too small for the coarse canvas is still found when it is the answer."""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace

import numpy as np
import pytest

from bench.coarse import small_face_scene
from bench.latency import PORTRAITS
from bench.photos import full_hd_jpeg, on_full_hd
from engine.coarse import iou, refine
from engine.decode import DecodeLimits, decode_image
from engine.pipeline import ChosenFace, FacePipeline
from engine.preprocess import resizable_region


@pytest.fixture(scope="module")
def fine(pipeline: FacePipeline) -> FacePipeline:
    """The same models with the fine pass only."""
    assert pipeline.config.coarse is not None
    only_fine = copy.copy(pipeline)
    only_fine.config = replace(pipeline.config, coarse=None)
    return only_fine


def assert_same_face(a: ChosenFace | None, b: ChosenFace | None) -> None:
    assert (a is None) == (b is None)
    if a is not None and b is not None:
        assert iou(a.detection, b.detection) > 0.9


def pairs(pipeline: FacePipeline, photo) -> list[tuple[bytes, bytes]]:
    portraits = {name: full_hd_jpeg(name) for name in PORTRAITS}
    small = small_face_scene(pipeline, "obama2.jpg")
    return [*((portraits[a], portraits[b]) for a, b in itertools.permutations(PORTRAITS, 2)),
            (portraits["obama.jpg"], photo("sample1.jpg")), (photo("sample2.jpg"), photo("sample2.jpg")),
            (portraits["obama.jpg"], small), (small, portraits["obama.jpg"])]


def test_the_fine_pass_answers(pipeline: FacePipeline, fine: FacePipeline, photo) -> None:
    for origin, target in pairs(pipeline, photo):
        coarse_answer, fine_answer = pipeline.compare(origin, target), fine.compare(origin, target)
        assert coarse_answer.is_match == fine_answer.is_match
        assert_same_face(coarse_answer.face, fine_answer.face)
        if fine_answer.is_match:  # a non-match may name another face that scores within a hair of it
            assert_same_face(coarse_answer.match, fine_answer.match)
        if fine_answer.match is not None:
            assert abs(coarse_answer.match.similarity - fine_answer.match.similarity) < 1.0


def test_a_small_matching_face_beside_a_large_other_one_is_the_answer(pipeline: FacePipeline,
                                                                     fine: FacePipeline) -> None:
    """The coarse pass sees only the large face, which does not match: the fine pass must still run."""
    backdrop = decode_image(full_hd_jpeg("biden.jpg"), DecodeLimits(decode_long_side=1920)).pixels
    scene = small_face_scene(pipeline, "obama2.jpg", background=backdrop)
    origin = full_hd_jpeg("obama.jpg")
    answer, fine_answer = pipeline.compare(origin, scene), fine.compare(origin, scene)
    assert fine_answer.is_match and answer.is_match
    assert_same_face(answer.match, fine_answer.match)
    assert answer.match.detection.width < 0.05 * answer.match.image_width


def test_two_faces_of_about_one_size_in_the_origin_are_left_to_the_fine_pass(pipeline: FacePipeline) -> None:
    """Coarse boxes a few pixels off could reorder faces of about one size (on LFW photos they did): the
    coarse pass does not choose between them, a face with no rival of its size it does."""
    rule = pipeline.config.coarse
    half = decode_image(full_hd_jpeg("obama.jpg"), DecodeLimits(decode_long_side=1920)).pixels[:, 480:1440]
    two = pipeline.decode(on_full_hd(np.concatenate([half, half], axis=1))).pixels
    one = pipeline.decode(full_hd_jpeg("obama.jpg")).pixels
    (two_found,), (one_found,) = (pipeline.detector.detect([image], rule.canvas) for image in (two, one))
    assert len(two_found) == 2 and two_found[0].area < rule.dominant * two_found[1].area
    assert rule.largest(pipeline.detector, two, two_found) is None
    assert rule.largest(pipeline.detector, one, one_found) is not None


def test_a_non_match_left_to_the_fine_pass_reports_both_faces_quality(pipeline: FacePipeline,
                                                                      fine: FacePipeline) -> None:
    """The coarse answer is dropped on its similarity alone; the answer given still measures both faces."""
    origin, target = full_hd_jpeg("obama.jpg"), full_hd_jpeg("biden.jpg")
    answer, fine_answer = pipeline.compare(origin, target), fine.compare(origin, target)
    assert not answer.is_match and not fine_answer.is_match
    for got, want in ((answer.face, fine_answer.face), (answer.match, fine_answer.match)):
        assert got is not None and want is not None and got.quality is not None and want.quality is not None
        assert got.quality.size_px == want.quality.size_px
        assert abs(got.quality.brightness - want.quality.brightness) < 1.0
        assert abs(got.quality.pose.yaw - want.quality.pose.yaw) < 2.0


@pytest.mark.parametrize("name", ["obama.jpg", "sample1.jpg", "sample4.jpg", "sample6.jpg"])
def test_refine_windows_are_the_fine_canvas_pixels(pipeline: FacePipeline, photo, name: str) -> None:
    """Every window on the largest step's grid against the fine canvas it stands for: the same pixels where its
    region is whole image pixels (the 16:9 portrait), within a level elsewhere (sample1/4/6's letterbox is
    rounded, so its two axes' scales differ: one scale for both put windows up to 111 levels off)."""
    data = full_hd_jpeg(name) if name in PORTRAITS else photo(name)
    pixels = pipeline.decode(data).pixels
    detector = pipeline.detector
    (request,) = detector.inputs([pixels], detector.canvas_size(pixels))
    canvas = request.image().astype(np.int16)
    step = max(detector.steps)
    resized = 0
    for y in range(0, canvas.shape[0] - 128 + 1, step):
        for x in range(0, canvas.shape[1] - 128 + 1, step):
            window = (x, y, min(x + 256, canvas.shape[1]), min(y + 256, canvas.shape[0]))
            difference = np.abs(detector.window_canvas(pixels, window) - canvas[y:window[3], x:window[2]])
            whole = resizable_region(pixels.shape, detector.spec.input.size, detector.max_upscale, window)
            resized += whole is not None
            assert difference.max() <= (0 if whole is not None else 1), window
    assert resized > 0 or name not in PORTRAITS  # a 16:9 portrait's windows are resized


@pytest.mark.parametrize("name", ["sample1.jpg", "sample4.jpg", "sample6.jpg", "obama.jpg"])
def test_refine_boxes_a_face_about_as_the_fine_pass_does(pipeline: FacePipeline, photo, name: str) -> None:
    """Each face the coarse pass finds large enough is boxed on its window about as the fine pass boxes it,
    and closer than the coarse box is (the window's pixels are the canvas's, its edges are not: the network
    sees black beyond them, so the boxes differ by a pixel or two, docs/PERFORMANCE.md)."""
    data = full_hd_jpeg(name) if name in PORTRAITS else photo(name)
    pixels = pipeline.decode(data).pixels
    rule, detector = pipeline.config.coarse, pipeline.detector
    (coarse,) = detector.detect([pixels], rule.canvas)
    (fine,) = detector.detect([pixels])
    refined = [(d, refine(detector, pixels, d, rule.context)) for d in coarse if rule.safe(detector, pixels, d)]
    assert any(box is not None for _, box in refined)
    for found, box in refined:
        if box is not None:
            same = max(fine, key=lambda d: iou(d, box))
            assert iou(same, box) > 0.9
            assert iou(same, box) >= iou(same, found)


def target_photos(pipeline: FacePipeline, photo) -> list[bytes]:
    """Targets of every kind: portraits, group photos, a 50 px face in a scene, a portrait's face in a scene."""
    backdrop = decode_image(full_hd_jpeg("biden.jpg"), DecodeLimits(decode_long_side=1920)).pixels
    return [*(full_hd_jpeg(name) for name in PORTRAITS), *(photo(f"sample{i}.jpg") for i in range(1, 7)),
            small_face_scene(pipeline, "obama2.jpg"), small_face_scene(pipeline, "obama2.jpg", background=backdrop)]


def test_faces_the_coarse_pass_checked_keep_the_check_s_verdict(pipeline: FacePipeline, photo) -> None:
    """The fine pass's boxes of faces the check already kept (on their refined boxes) are not looked at again:
    the same boxes stand as when the whole check runs on the fine boxes."""
    rule = pipeline.config.coarse
    skipped = 0
    for data in target_photos(pipeline, photo):
        image = pipeline.decode(data)
        (coarse,) = pipeline.detector.detect([image.pixels], rule.canvas)
        (kept,) = pipeline.checked([image], [rule.candidates(pipeline.detector, image.pixels, coarse)])
        (fine,) = pipeline.detector.detect([image.pixels])
        assert pipeline._checked_again(image, fine, kept, rule.same_face_iou) == pipeline.checked([image], [fine])[0]
        skipped += bool(kept)
    assert skipped >= 8


def test_a_target_s_boxes_do_not_depend_on_its_batch(pipeline: FacePipeline, photo) -> None:
    """What lets a near-threshold answer reuse the target's fine boxes: the same boxes, checked, whether the
    target is detected alone or batched with the origin (the detector's session: tests/test_photos_at_once.py)."""
    targets = [pipeline.decode(data) for data in target_photos(pipeline, photo)]
    origins = [pipeline.decode(full_hd_jpeg(name)) for name in ("obama.jpg", "biden.jpg")]
    for target in targets:
        alone = pipeline.detect([target])[0]
        assert all(pipeline.detect([origin, target])[1] == alone for origin in origins)


@pytest.mark.parametrize(("origin", "target"), [("obama.jpg", "obama2.jpg"), ("biden.jpg", "obama.jpg")])
@pytest.mark.parametrize("offset", [-1.0, 1.0])
def test_an_answer_near_the_threshold_is_the_fine_pipeline_s(pipeline: FacePipeline, fine: FacePipeline,
                                                             origin: str, target: str, offset: float) -> None:
    """A score within the margin of the threshold that rests on the coarse pass is taken again by the fine pass
    alone (the target's fine boxes reused): the fine pipeline's very answer, to the last digit."""
    a, b = full_hd_jpeg(origin), full_hd_jpeg(target)
    threshold = fine.compare(a, b).match.similarity + offset
    assert pipeline.compare(a, b, threshold) == fine.compare(a, b, threshold)
