"""The face pipeline end to end on ONNX Runtime with the real models and photos."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from engine.coarse import iou
from engine.detector import priors_for
from engine.pipeline import FacePipeline, intra_op_threads
from engine.preprocess import to_blob
from tests.conftest import encode, save_image


@pytest.mark.parametrize("other", ["obama2.jpg", "obama3.jpg"])
def test_same_person_matches(pipeline: FacePipeline, photo, other: str) -> None:
    result = pipeline.compare(photo("obama.jpg"), photo(other))
    assert result.is_match, result.match


def test_different_people_do_not_match(pipeline: FacePipeline, photo) -> None:
    result = pipeline.compare(photo("obama.jpg"), photo("biden.jpg"))
    assert result.face is not None and result.match is not None
    assert not result.is_match
    assert result.match.similarity < 60


def test_group_photo_against_one_of_its_faces(pipeline: FacePipeline, photo) -> None:
    group = pipeline.decode(photo("sample1.jpg"))
    (found,) = pipeline.detector.detect([group.pixels])
    assert len(found) >= 3
    for chosen in found[:3]:
        margin = chosen.width * 0.6
        x1, y1 = int(max(chosen.x1 - margin, 0)), int(max(chosen.y1 - margin, 0))
        x2, y2 = int(min(chosen.x2 + margin, group.width)), int(min(chosen.y2 + margin, group.height))
        crop = encode(np.ascontiguousarray(group.pixels[y1:y2, x1:x2]), "PNG")
        result = pipeline.compare(crop, photo("sample1.jpg"))
        assert result.is_match
        assert iou(result.match.detection, chosen) > 0.9


@pytest.mark.parametrize("image_format,mode", [("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "P"), ("PNG", "I;16"),
                                               ("BMP", "RGB"), ("JPEG", "L"), ("JPEG", "CMYK")])
def test_every_image_type(pipeline: FacePipeline, photo, image_format: str, mode: str) -> None:
    pixels = pipeline.decode(photo("obama.jpg")).pixels
    image = Image.fromarray(pixels)
    if mode == "I;16":
        # A real 16-bit photo spans 0..65535: each 8-bit level times 257.
        converted = Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257)
    else:
        converted = image.convert(mode)
    data = save_image(converted, image_format)
    result = pipeline.compare(photo("obama2.jpg"), data)
    assert result.is_match


def test_32_bit_png(pipeline: FacePipeline, photo) -> None:
    assert pipeline.decode(photo("32bit.png")).format == "png"
    result = pipeline.compare(photo("obama.jpg"), photo("32bit.png"))
    assert result.face is not None and result.match is not None


@pytest.mark.parametrize("orientation,transpose", [(3, Image.Transpose.ROTATE_180), (6, Image.Transpose.ROTATE_90),
                                                   (8, Image.Transpose.ROTATE_270)])
def test_exif_rotation_gives_upright_answer(pipeline: FacePipeline, photo, orientation: int, transpose) -> None:
    upright = pipeline.decode(photo("obama.jpg"))
    stored = Image.fromarray(upright.pixels).transpose(transpose)
    exif = Image.Exif()
    exif[0x0112] = orientation
    rotated = save_image(stored, "JPEG", exif=exif, quality=95)
    decoded = pipeline.decode(rotated)
    assert (decoded.width, decoded.height) == (upright.width, upright.height)
    plain = pipeline.compare(photo("obama2.jpg"), photo("obama.jpg"))
    turned = pipeline.compare(photo("obama2.jpg"), rotated)
    assert turned.is_match
    assert iou(turned.match.detection, plain.match.detection) > 0.8
    assert abs(turned.match.similarity - plain.match.similarity) < 5


def test_no_face_is_an_answer(pipeline: FacePipeline, photo) -> None:
    rng = np.random.default_rng(1)
    noise = encode(rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8), "PNG")
    no_origin = pipeline.compare(noise, photo("obama.jpg"))
    assert no_origin.face is None and no_origin.match is None and not no_origin.is_match
    no_target = pipeline.compare(photo("obama.jpg"), noise)
    assert no_target.face is not None and no_target.match is None and not no_target.is_match


def test_small_faces_in_full_hd_scenes_are_found(pipeline: FacePipeline, photo) -> None:
    """A 50x50 face in a 1920x1080 image must be found (the API's rule), wherever it sits."""
    source = pipeline.decode(photo("obama.jpg"))
    (faces,) = pipeline.detector.detect([source.pixels])
    face = faces[0]
    side = max(face.width, face.height) * 1.3
    cx, cy = (face.x1 + face.x2) / 2, (face.y1 + face.y2) / 2
    patch = source.pixels[int(cy - side / 2): int(cy + side / 2), int(cx - side / 2): int(cx + side / 2)]
    scale = 50 / max(face.width, face.height)
    patch_side = round(patch.shape[0] * scale)
    small = np.asarray(Image.fromarray(np.ascontiguousarray(patch)).resize((patch_side, patch_side), Image.LANCZOS))
    scene_rng = np.random.default_rng(2)
    for x, y in [(100, 100), (900, 500), (1800, 960), (40, 1000)]:
        scene = np.full((1080, 1920, 3), scene_rng.integers(60, 200), dtype=np.uint8)
        scene[y : y + patch_side, x : x + patch_side] = small
        decoded = pipeline.decode(encode(scene, "JPEG", quality=95))
        (found,) = pipeline.detector.detect([decoded.pixels])
        assert found, f"no face found at {(x, y)}"
        # Boxes are in the decoded pixels, which a large JPEG has fewer of (DCT-scaled decoding).
        to_full_hd = 1920 / decoded.width
        box = found[0]
        assert x - 10 < (box.x1 + box.x2) / 2 * to_full_hd < x + patch_side + 10
        assert 30 < box.width * to_full_hd < 80


def test_batch_of_n_equals_batch_of_one(pipeline: FacePipeline, photo) -> None:
    images = [pipeline.decode(photo(name)).pixels for name in ("obama.jpg", "biden.jpg", "obama2.jpg")]
    together = pipeline.detector.detect(images)
    alone = [pipeline.detector.detect([image])[0] for image in images]
    for batched, single in zip(together, alone, strict=True):
        np.testing.assert_allclose([(d.x1, d.y1, d.x2, d.y2) for d in batched],
                                   [(d.x1, d.y1, d.x2, d.y2) for d in single], atol=1e-3)
    faces_together = pipeline.faces(images, [f[:1] for f in together])
    faces_alone = [pipeline.faces([image], [f[:1]])[0] for image, f in zip(images, alone, strict=True)]
    for batched, single in zip(faces_together, faces_alone, strict=True):
        np.testing.assert_allclose(batched[0].embedding, single[0].embedding, atol=1e-5)


@pytest.mark.parametrize(("shape", "canvas"), [
    ((1080, 1920), (640, 368)), ((540, 960), (640, 368)), ((250, 250), (256, 256)), ((150, 150), (160, 160)),
    ((1, 1), (16, 16)), ((200, 3000), (640, 48)), ((480, 640), (640, 480)), ((2000, 2000), (480, 480)),
])
def test_detector_canvas_fits_the_image(pipeline: FacePipeline, shape: tuple[int, int],
                                        canvas: tuple[int, int]) -> None:
    assert pipeline.detector.canvas_size(np.zeros((*shape, 3), dtype=np.uint8)) == canvas


@pytest.mark.parametrize("name", ["obama.jpg", "obama2.jpg", "biden.jpg", "sample1.jpg", "sample2.jpg"])
def test_fitted_canvas_finds_the_faces_of_the_full_canvas(pipeline: FacePipeline, photo, name: str) -> None:
    """The fitted canvas holds the same pixels; only the padding beyond the image differs."""
    pixels = pipeline.decode(photo(name)).pixels
    detector = pipeline.detector
    assert detector.canvas_size(pixels) != detector.spec.input.size
    fitted = detector.detect([pixels])[0]
    canvases, (scale,) = detector.canvases([pixels])
    outputs = detector.backend.infer({detector.spec.input.name: to_blob(canvases, detector.spec.input)})
    priors = priors_for(detector.spec.input.size, detector.min_sizes, detector.steps)
    full = detector._faces(outputs["scores"][0][:, 1], outputs["regression"][0], scale, priors,
                           detector.spec.input.size)
    assert len(fitted) == len(full) > 0
    for a, b in zip(fitted, full, strict=True):
        assert iou(a, b) > 0.98 and abs(a.score - b.score) < 0.01


def test_threads_zero_shares_the_cores_among_the_models(monkeypatch: pytest.MonkeyPatch) -> None:
    for cores, models, expected in ((2, 4, 1), (8, 4, 2), (16, 4, 4), (1, 4, 1)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, n=cores: set(range(n)))
        assert intra_op_threads(0, models) == expected
    assert intra_op_threads(3, 4) == 3
