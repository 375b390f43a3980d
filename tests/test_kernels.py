"""CUDA preprocessing: the kernels compile for every Jetson architecture, their NumPy references match the
OpenCV path the pipeline uses, and (on a GPU) the kernels match the references."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.align import similarity_matrix
from engine.cuda import kernels, nvrtc, reference
from engine.preprocess import letterbox, to_blob, warp_face
from models.manifest import InputSpec
from tests.assets import asset_path
from tests.gpu import gpu_missing, requires_gpu

DETECTOR = InputSpec("input", (640, 480), "rgb", 127.0, 0.0078125)
RECOGNIZER = InputSpec("input", (112, 112), "rgb", 127.0, 0.0078125)
OPENCV_MAJOR = int(cv2.__version__.split(".")[0])


def nvrtc_missing() -> str | None:
    try:
        nvrtc.version()
    except nvrtc.NvrtcUnavailable as exc:
        return str(exc)
    return None


needs_nvrtc = pytest.mark.skipif(nvrtc_missing() is not None, reason=str(nvrtc_missing()))


def levels(a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    """Differences in uint8 levels between two normalised blobs."""
    return np.abs(a - b) / scale


def noise(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def photo(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(asset_path(name)), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


IMAGES = [
    ("obama.jpg", None), ("sample1.jpg", None), ("biden.jpg", None),
    ("noise 150x150 (enlarge)", (150, 150)), ("noise 97x170", (97, 170)), ("noise 1080x1920 (3x)", (1080, 1920)),
    ("noise 777x1000", (777, 1000)), ("noise 540x960 (1.5x, bilinear)", (540, 960)),
    ("noise 960x1280 (2x, bilinear)", (960, 1280)), ("noise 3000x200", (3000, 200)),
    ("noise 480x640 (same)", (480, 640)), ("noise 50x60 (capped)", (50, 60)),
]


def image_for(name: str, shape: tuple[int, int] | None) -> np.ndarray:
    return photo(name) if shape is None else noise(*shape, seed=sum(shape))


@pytest.mark.parametrize(("name", "shape"), IMAGES, ids=[n for n, _ in IMAGES])
def test_letterbox_reference_matches_the_opencv_path(name: str, shape: tuple[int, int] | None) -> None:
    pixels = image_for(name, shape)
    canvas, scale = letterbox(pixels, DETECTOR.size, 4.0)
    expected = to_blob([canvas], DETECTOR)
    got, got_scale = reference.letterbox_blob(pixels, DETECTOR.size, 4.0, DETECTOR.mean, DETECTOR.scale)
    assert got.shape == expected.shape and got.dtype == np.float32 and got_scale == scale
    diff = levels(got, expected, DETECTOR.scale)
    assert diff.max() <= 1.0 + 1e-4
    assert (diff > 1e-4).mean() < 0.005


def test_letterbox_reference_swaps_channels_for_bgr_input() -> None:
    pixels = noise(60, 80, 1)
    rgb, _ = reference.letterbox_blob(pixels, (80, 60), 1.0, 127.0, 1 / 128)
    bgr, _ = reference.letterbox_blob(pixels[..., ::-1], (80, 60), 1.0, 127.0, 1 / 128, swap_rb=True)
    np.testing.assert_array_equal(rgb, bgr)


def warp_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
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
    return cases


@pytest.mark.skipif(OPENCV_MAJOR < 5, reason="OpenCV 4 rounds warp positions to 1/32 px; the reference is OpenCV 5's")
def test_warp_reference_matches_the_opencv_path() -> None:
    for label, pixels, matrix in warp_cases():
        expected = to_blob([warp_face(pixels, matrix, RECOGNIZER.size)], RECOGNIZER)
        got = reference.warp_blob(pixels, matrix, RECOGNIZER.size, RECOGNIZER.mean, RECOGNIZER.scale)
        diff = levels(got, expected, RECOGNIZER.scale)
        assert diff.max() <= 1.0 + 1e-4, label
        assert (diff > 1e-4).mean() < 0.002, label


def test_inverse_affine_is_the_inverse() -> None:
    matrix = np.array([[0.8, -0.3, 12.0], [0.3, 0.8, -7.5]])
    np.testing.assert_allclose(reference.inverse_affine(matrix), cv2.invertAffineTransform(matrix), atol=1e-12)


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


@pytest.fixture(scope="module")
def gpu():
    if gpu_missing():
        pytest.skip(gpu_missing())
    from engine.backends.tensorrt import cuda_device
    from engine.cuda.launch import CudaPreprocessor

    device = cuda_device()
    with device.active():
        yield device, CudaPreprocessor(device.compute_capability)


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize(("name", "shape"), IMAGES, ids=[n for n, _ in IMAGES])
def test_letterbox_kernel_matches_its_reference(gpu, name: str, shape: tuple[int, int] | None) -> None:
    import pycuda.driver as cuda

    _, preprocessor = gpu
    pixels = image_for(name, shape)
    width, height = DETECTOR.size
    out = cuda.pagelocked_empty((1, 3, height, width), np.float32)
    device_out = cuda.mem_alloc(out.nbytes)
    stream = cuda.Stream()
    preprocessor.letterbox([pixels], int(device_out), DETECTOR.size, 4.0, DETECTOR.mean, DETECTOR.scale, stream)
    cuda.memcpy_dtoh_async(out, device_out, stream)
    stream.synchronize()
    expected, _ = reference.letterbox_blob(pixels, DETECTOR.size, 4.0, DETECTOR.mean, DETECTOR.scale)
    assert levels(out, expected, DETECTOR.scale).max() <= 1.0 + 1e-4


@pytest.mark.gpu
@requires_gpu
def test_warp_kernel_matches_its_reference(gpu) -> None:
    import pycuda.driver as cuda

    _, preprocessor = gpu
    stream = cuda.Stream()
    for label, pixels, matrix in warp_cases():
        out = cuda.pagelocked_empty((1, 3, 112, 112), np.float32)
        device_out = cuda.mem_alloc(out.nbytes)
        preprocessor.warp([(pixels, matrix)], int(device_out), RECOGNIZER.size, RECOGNIZER.mean, RECOGNIZER.scale,
                          stream)
        cuda.memcpy_dtoh_async(out, device_out, stream)
        stream.synchronize()
        expected = reference.warp_blob(pixels, matrix, RECOGNIZER.size, RECOGNIZER.mean, RECOGNIZER.scale)
        assert levels(out, expected, RECOGNIZER.scale).max() <= 1.0 + 1e-4, label
