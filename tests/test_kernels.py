"""CUDA preprocessing: each kernel's real source executed (on the CPU here, on the device under `-m gpu`) and held
against the OpenCV path the onnxruntime backend takes; every kernel compiles with NVRTC for every Jetson."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
import pytest

from engine.align import similarity_matrix
from engine.cuda import kernels, nvrtc
from engine.cuda.calls import inverse_affine, kernel_call
from engine.landmarks import crop_box
from engine.preprocess import (
    AlignedCrops,
    Crop,
    ImageInput,
    Letterbox,
    Warp,
    cpu_blob,
    letterbox_geometry,
    shrinks_by_area,
    tensor_shape,
)
from models.manifest import InputSpec, load_manifest
from tests.assets import asset_path
from tests.cuda_emulation import compiler_missing
from tests.gpu import requires_gpu

MANIFEST = load_manifest()
DETECTOR = MANIFEST.for_role("detector")[0]
LANDMARKS = MANIFEST.for_role("landmarks")[0].input
RECOGNIZER = MANIFEST.for_role("recognizer")[0].input
PHOTOS = ["obama.jpg", "obama2.jpg", "biden.jpg", "sample1.jpg", "sample2.jpg", "sample3.jpg"]


def nvrtc_missing() -> str | None:
    try:
        nvrtc.version()
    except nvrtc.NvrtcUnavailable as exc:
        return str(exc)
    return None


needs_nvrtc = pytest.mark.skipif(nvrtc_missing() is not None, reason=str(nvrtc_missing()))
needs_compiler = pytest.mark.skipif(compiler_missing() is not None, reason=str(compiler_missing()))


def noise(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@cache
def photo(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(asset_path(name)), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# Photos shrink by area to 640x480; noise covers bilinear (enlarging, 1.5x and 2x down) and the edge cases.
IMAGES = [
    *((name, None) for name in PHOTOS),
    ("noise 150x150 (enlarge)", (150, 150)), ("noise 97x170", (97, 170)), ("noise 1080x1920 (3x)", (1080, 1920)),
    ("noise 777x1000", (777, 1000)), ("noise 540x960 (1.5x, bilinear)", (540, 960)),
    ("noise 960x1280 (2x, bilinear)", (960, 1280)), ("noise 3000x200", (3000, 200)),
    ("noise 480x640 (same)", (480, 640)), ("noise 50x60 (capped)", (50, 60)),
]


def image_for(name: str, shape: tuple[int, int] | None) -> np.ndarray:
    return photo(name) if shape is None else noise(*shape, seed=sum(shape))


def letterbox_cases() -> list[tuple[str, Letterbox]]:
    """Each image on its fitted canvas and on the full 640x480 one."""
    spec, params = DETECTOR.input, DETECTOR.params
    cases = []
    for name, shape in IMAGES:
        pixels = image_for(name, shape)
        _, width, height = letterbox_geometry(pixels.shape, spec.size, params["max_upscale"])
        fitted = (min(spec.size[0], -(-width // 16) * 16), min(spec.size[1], -(-height // 16) * 16))
        for canvas in dict.fromkeys([fitted, spec.size]):
            cases.append((f"{name} on {canvas[0]}x{canvas[1]}",
                          Letterbox(pixels, spec.size, canvas, float(params["max_upscale"]))))
    return cases


def crop_cases() -> list[tuple[str, Crop]]:
    """The landmark model's square crops of the faces the detector finds in the photos, and of noise."""
    from engine.pipeline import FacePipeline

    pipeline = FacePipeline()
    cases = []
    for name in PHOTOS:
        pixels = photo(name)
        (found,) = pipeline.detector.detect([pixels])
        for index, detection in enumerate(found[:3]):
            box = crop_box(detection, pixels.shape, pipeline.landmarks.expand)
            cases.append((f"{name} face {index}", Crop(pixels, box, LANDMARKS.size)))
    pipeline.close()
    small = noise(150, 170, 3)
    cases += [("noise, enlarged", Crop(small, (10, 20, 40, 40), LANDMARKS.size)),
              ("noise, whole", Crop(small, (0, 0, 169, 149), LANDMARKS.size))]
    return cases


def warp_cases() -> list[tuple[str, Warp]]:
    obama = photo("obama.jpg")
    h, w = obama.shape[:2]
    # Five points roughly where a face's eyes, nose and mouth are, at several sizes, angles and positions.
    face = np.array([[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.38, 0.72], [0.62, 0.72]])
    cases = []
    for i, (cx, cy, size, angle) in enumerate([(0.5, 0.4, 0.3, 0.0), (0.3, 0.3, 0.15, 0.4), (0.02, 0.98, 0.2, -0.7),
                                                (0.5, 0.5, 0.04, 0.1)]):
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points = ((face - 0.5) @ rotation.T) * size * w + (cx * w, cy * h)
        cases.append((f"obama {i}", obama, similarity_matrix(points.astype(np.float32))))
    cases.append(("noise, half outside", noise(150, 170, 7), np.array([[0.77, -0.23, -40.3], [0.23, 0.77, 13.3]])))
    return [(f"{label}{' flipped' if flip else ''}", Warp(pixels, matrix, RECOGNIZER.size, flip))
            for label, pixels, matrix in cases for flip in (False, True)]


def agreement(got: np.ndarray, expected: np.ndarray, spec: InputSpec) -> float:
    """The share of values within one uint8 level of the OpenCV path."""
    assert got.shape == expected.shape and got.dtype == np.float32 and not np.isnan(got).any()
    return float((np.abs(got - expected) / spec.scale <= 1.0 + 1e-4).mean())


def emulate(request: ImageInput, spec: InputSpec) -> np.ndarray:
    from tests.cuda_emulation import kernels as emulated

    call = kernel_call(request, spec)
    out = np.full((1, *tensor_shape(request, spec)), np.nan, dtype=np.float32)
    emulated()[call.kernel](*call.size, np.ascontiguousarray(request.pixels), *call.source, out, *call.destination)
    return out


def test_the_cases_cover_area_and_bilinear_shrinking() -> None:
    modes = {shrinks_by_area(letterbox_geometry(r.pixels.shape, r.fit, r.max_upscale)[0]) for _, r in letterbox_cases()}
    assert modes == {True, False}


@needs_compiler
@pytest.mark.parametrize(("label", "request_"), letterbox_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_emulated_letterbox_kernel_matches_opencv(label: str, request_: Letterbox) -> None:
    assert agreement(emulate(request_, DETECTOR.input), cpu_blob(DETECTOR.input, [request_]), DETECTOR.input) >= 0.995


@needs_compiler
def test_emulated_landmark_crop_kernel_matches_opencv() -> None:
    cases = crop_cases()
    assert len(cases) >= 8
    for label, request in cases:
        assert agreement(emulate(request, LANDMARKS), cpu_blob(LANDMARKS, [request]), LANDMARKS) >= 0.995, label


@needs_compiler
def test_emulated_warp_kernel_matches_opencv_with_and_without_flip() -> None:
    for label, request in warp_cases():
        assert agreement(emulate(request, RECOGNIZER), cpu_blob(RECOGNIZER, [request]), RECOGNIZER) >= 0.995, label


@needs_compiler
def test_emulated_liveness_crop_kernel_matches_opencv() -> None:
    """The liveness model's square crops (BGR planes) of the faces in the photos."""
    from engine.pipeline import FacePipeline

    pipeline = FacePipeline()
    liveness = pipeline.liveness
    spec = liveness.spec.input
    for name in PHOTOS:
        pixels = photo(name)
        (found,) = pipeline.detector.detect([pixels])
        for request in liveness.inputs([(pixels, d) for d in found[:3]]):
            assert agreement(emulate(request, spec), cpu_blob(spec, [request]), spec) >= 0.995, name
    pipeline.close()


@needs_compiler
def test_emulated_crop_kernel_writes_rgb_for_an_rgb_model() -> None:
    request = Crop(photo("obama.jpg"), (300, 200, 300, 300), (112, 112))
    assert agreement(emulate(request, RECOGNIZER), cpu_blob(RECOGNIZER, [request]), RECOGNIZER) >= 0.995


@needs_compiler
def test_emulated_kernels_write_bgr_planes_for_a_bgr_model() -> None:
    rgb = InputSpec("input", (80, 80), "rgb", 127.5, 1 / 128)
    bgr = InputSpec("input", (80, 80), "bgr", 127.5, 1 / 128)
    pixels = noise(120, 100, 5)
    for request in (Letterbox(pixels, (80, 80), (80, 80), 1.0), Crop(pixels, (10, 10, 60, 60), (80, 80)),
                    Warp(pixels, np.array([[0.8, 0.1, -3.0], [-0.1, 0.8, 4.0]]), (80, 80))):
        np.testing.assert_array_equal(emulate(request, bgr), emulate(request, rgb)[:, ::-1])


def test_a_flipped_row_is_the_mirror_of_the_plain_one() -> None:
    _, plain = warp_cases()[0]
    both = cpu_blob(RECOGNIZER, [plain, Warp(plain.pixels, plain.matrix, plain.size, flip=True)])
    np.testing.assert_array_equal(both[1], both[0][..., ::-1])


def test_recognizers_sharing_their_crops_get_the_blobs_each_would_make_alone() -> None:
    other = InputSpec("input", RECOGNIZER.size, "rgb", 127.0, 1 / 128)  # the ensemble's members differ so
    (_, plain), (_, second) = [case for case in warp_cases() if not case[1].flip][:2]
    crops = AlignedCrops()
    for spec in (RECOGNIZER, other):
        shared = [Warp(request.pixels, request.matrix, request.size, flip, crops=crops)
                  for request in (plain, second) for flip in (False, True)]
        alone = [Warp(request.pixels, request.matrix, request.size, flip) for request in (plain, second)
                 for flip in (False, True)]
        np.testing.assert_array_equal(cpu_blob(spec, shared), cpu_blob(spec, alone))
    assert crops.warp(plain.pixels, plain.matrix, plain.size) is crops.warp(plain.pixels, plain.matrix, plain.size)


def test_kernel_calls_refuse_what_the_kernels_cannot_do() -> None:
    with pytest.raises(ValueError, match="shrinks more than"):
        kernel_call(Letterbox(noise(40000, 64, 1), (640, 480), (640, 480), 1.0), DETECTOR.input)
    with pytest.raises(ValueError, match="uint8"):
        kernel_call(Crop(np.zeros((8, 8), np.uint8), (0, 0, 4, 4), (64, 64)), LANDMARKS)
    with pytest.raises(ValueError, match="grey"):
        kernel_call(Warp(noise(8, 8, 1), np.eye(2, 3), (4, 4)), LANDMARKS)


def test_inverse_affine_is_the_inverse() -> None:
    matrix = np.array([[0.8, -0.3, 12.0], [0.3, 0.8, -7.5]])
    np.testing.assert_allclose(inverse_affine(matrix), cv2.invertAffineTransform(matrix), atol=1e-12)


@needs_nvrtc
def test_every_kernel_compiles_for_every_jetson_architecture() -> None:
    results = kernels.check()
    assert {(r.file, r.arch) for r in results} == {(f, a) for f in kernels.KERNELS for a in kernels.ARCHS}
    assert [r for r in results if r.error] == []


@needs_nvrtc
def test_a_broken_kernel_fails_the_check() -> None:
    text = kernels.source("warp.cu")
    broken = text.replace("float fx = sx - floor_x", "float fx = sx - undeclared_name")
    renamed = text.replace("void warp_normalise(", "void warp_normalised(")
    results = kernels.check({"warp.cu": broken}, archs=("sm_87",)) + kernels.check({"warp.cu": renamed},
                                                                                  archs=("sm_53",))
    assert all(r.error for r in results)
    assert "undeclared_name" in results[0].error
    assert "no kernel warp_normalise" in results[1].error


@pytest.mark.gpu
@requires_gpu
def test_kernels_on_the_device_match_opencv() -> None:
    from service.self_test import pycuda_run

    cases = [(label, r, DETECTOR.input) for label, r in letterbox_cases()] + \
        [(label, r, LANDMARKS) for label, r in crop_cases()] + [(label, r, RECOGNIZER) for label, r in warp_cases()]
    for label, request, spec in cases:
        assert agreement(pycuda_run(request, spec), cpu_blob(spec, [request]), spec) >= 0.995, label
