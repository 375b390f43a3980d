"""INT8 calibration: cache naming, the calibration set, Q/DQ graphs that onnxruntime runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from calibration.naming import calibration_cache_name
from calibration.trt_calibrator import full_batches
from engine.backends.int8 import CALIBRATION_METHODS, DEFAULT_METHOD
from models.manifest import InputSpec

SHA = "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581"


PHOTOS = "c1f2e3d4a5b6" + "0" * 52


def test_calibration_cache_name_carries_model_hash_tensorrt_version_and_photos() -> None:
    name = calibration_cache_name("fr_feature", SHA, "10.3.0", PHOTOS)
    assert name == "fr_feature-87aacdfe5751-trt10.3.0-c1f2e3d4a5b6.calib"
    assert calibration_cache_name("fr_feature", SHA, "8.6.2", PHOTOS) != name
    assert calibration_cache_name("fr_feature", "0" * 64, "10.3.0", PHOTOS) != name
    assert calibration_cache_name("fr_feature", SHA, "10.3.0", "1" * 64) != name
    assert "/" not in calibration_cache_name("a/b c", SHA, "10.3.0+cuda12", PHOTOS)


def test_calibration_cache_name_refuses_a_non_hash() -> None:
    with pytest.raises(ValueError):
        calibration_cache_name("fr_feature", "87aacdfe", "10.3.0", PHOTOS)
    with pytest.raises(ValueError):
        calibration_cache_name("fr_feature", SHA, "10.3.0", "photos")


def test_full_batches_rechunks_and_drops_the_short_tail() -> None:
    batches = [np.full((n, 2), i, dtype=np.float64) for i, n in enumerate([3, 1, 4, 1])]
    out = list(full_batches(iter(batches), 4))
    assert [b.shape for b in out] == [(4, 2), (4, 2)]
    assert all(b.dtype == np.float32 and b.flags.c_contiguous for b in out)
    assert out[0][:, 0].tolist() == [0, 0, 0, 1] and out[1][:, 0].tolist() == [2, 2, 2, 2]


@pytest.fixture(scope="module")
def pipeline():
    from engine.pipeline import FacePipeline

    return FacePipeline()


@pytest.fixture(scope="module")
def calibration(pipeline):
    from calibration.dataset import build_calibration_set
    from tests.assets import asset_path

    photos = [asset_path(n) for n in ("obama.jpg", "obama2.jpg", "biden.jpg", "sample1.jpg", "sample2.jpg")]
    return build_calibration_set(photos, pipeline, max_detector=3, max_faces=12)


def test_calibration_set_is_the_inference_preprocessing(pipeline, calibration) -> None:
    from engine.preprocess import to_blob

    counts = calibration.counts()
    detector, recognizer = pipeline.manifest.for_role("detector")[0], pipeline.manifest.for_role("recognizer")[0]
    assert counts[detector.name] == 3 and counts[recognizer.name] >= 5
    canvas = calibration.images[detector.name][0]
    assert canvas.shape == (*reversed(detector.input.size), 3) and canvas.dtype == np.uint8
    (batch,) = list(calibration.batches(recognizer.name, recognizer.input, 64))
    assert batch.shape == (counts[recognizer.name], 3, 112, 112)
    np.testing.assert_array_equal(batch, to_blob(calibration.images[recognizer.name], recognizer.input))


def test_qdq_graph_is_tensorrt_shaped_and_close_to_fp32(pipeline, calibration, tmp_path: Path) -> None:
    from calibration.qdq import QDQ_OPSET, BlobReader, end_nodes, quantize
    from engine.backends.onnxruntime import OnnxRuntimeBackend

    spec = pipeline.manifest.for_role("landmarks")[0]
    fp32 = pipeline.models[spec.name].prepared
    int8 = quantize(fp32, tmp_path / "lm.int8.onnx",
                    BlobReader(spec.input.name, calibration.images[spec.name], spec.input, stride=4))
    model = onnx.load(str(int8))
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= QDQ_OPSET
    initializers = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    quantizers = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert quantizers, "no Q/DQ nodes"
    # TensorRT takes symmetric INT8 only: every zero point is 0.
    assert all(not initializers[n.input[2]].any() for n in quantizers if len(n.input) > 2)
    excluded = set(end_nodes(onnx.load(str(fp32))))
    assert {"Conv_0", "Gemm_77"} <= excluded
    (blob,) = list(calibration.batches(spec.name, spec.input, 64))
    expected = OnnxRuntimeBackend(fp32).infer({spec.input.name: blob})
    got = OnnxRuntimeBackend(int8, precision="int8").infer({spec.input.name: blob})
    for name, value in expected.items():
        assert np.abs(got[name] - value).max() < 0.05, name


def test_blob_reader_runs_whole_strides_one_sample_at_a_time() -> None:
    from calibration.qdq import BlobReader

    spec = InputSpec("input", (4, 3), "rgb", 0.0, 1.0)
    images = [np.full((3, 4, 3), i, dtype=np.uint8) for i in range(10)]
    reader = BlobReader("input", images, spec, stride=4)
    assert len(reader) == 8 and reader.stride == 4
    reader.set_range(4, 8)
    seen = []
    while (item := reader.get_next()) is not None:
        assert item["input"].shape == (1, 3, 3, 4)
        seen.append(int(item["input"][0, 0, 0, 0]))
    assert seen == [4, 5, 6, 7]


def copied_models(folder: Path) -> dict:
    """The prepared models copied into `folder`, so Q/DQ files can be put beside them."""
    import shutil

    from models.store import PreparedModel, prepared_models

    copies = {}
    for name, model in prepared_models().items():
        prepared = folder / model.prepared.name
        shutil.copyfile(model.prepared, prepared)
        copies[name] = PreparedModel(model.spec, model.original, prepared)
    return copies


def test_precision_int8_runs_the_qdq_models_and_says_how_to_make_them(tmp_path: Path) -> None:
    import shutil

    from engine.pipeline import FacePipeline, PipelineConfig

    copies = copied_models(tmp_path)
    with pytest.raises(FileNotFoundError, match="engines build --precision int8"):
        FacePipeline(PipelineConfig(precision="int8"), models=copies)
    for model in copies.values():
        shutil.copyfile(model.prepared, model.quantized)
    pipeline = FacePipeline(PipelineConfig(precision="int8"), models=copies)
    assert pipeline.backend_info.precision == "int8"
    assert pipeline._onnx_for(pipeline.manifest.for_role("recognizer")[0]).name.endswith(".int8.onnx")


def test_int8_mixed_runs_detector_and_landmarks_in_int8_only(tmp_path: Path) -> None:
    import shutil

    from engine.pipeline import FacePipeline, PipelineConfig

    copies = copied_models(tmp_path)
    for model in copies.values():
        if model.spec.family in ("ultraface", "pfld68"):
            shutil.copyfile(model.prepared, model.quantized)
    pipeline = FacePipeline(PipelineConfig(precision="int8-mixed"), models=copies)
    chosen = {spec.name: pipeline._onnx_for(spec).name for spec in pipeline.manifest.pipeline_models()}
    for role, int8 in (("detector", True), ("landmarks", True), ("recognizer", False)):
        for spec in pipeline.manifest.for_role(role):
            assert chosen[spec.name].endswith(".int8.onnx") == int8, spec.name
            assert pipeline.backends[spec.name].info.precision == ("int8" if int8 else "fp32")


def test_each_calibration_method_is_written_into_its_qdq_model(pipeline, calibration, tmp_path: Path) -> None:
    from calibration.qdq import BlobReader, quantize, recorded_method
    from models.registry import sha256_of

    spec = pipeline.manifest.for_role("landmarks")[0]
    digests = set()
    for method in CALIBRATION_METHODS:
        int8 = quantize(pipeline.models[spec.name].prepared, tmp_path / f"lm-{method}.int8.onnx",
                        BlobReader(spec.input.name, calibration.images[spec.name], spec.input, stride=4),
                        method=method)
        assert recorded_method(int8) == method
        digests.add(sha256_of(int8))
    # A TensorRT engine of the Q/DQ route is cached by the file's sha256: one per method.
    assert len(digests) == len(CALIBRATION_METHODS)
    assert recorded_method(pipeline.models[spec.name].prepared) == ""


@pytest.fixture
def scratch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A FACECOMPARE_HOME holding a copy of the models, and a folder of five test photos to calibrate on."""
    import shutil

    from models import paths
    from tests.assets import asset_path

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg", "sample1.jpg", "sample2.jpg"):
        shutil.copyfile(asset_path(name), photos / name)
    home = tmp_path / "home"
    shutil.copytree(paths.models_dir(), home / "models")
    monkeypatch.setenv("FACECOMPARE_HOME", str(home))
    return home, photos


@pytest.mark.parametrize("extra", [
    ["--method", "entropy"],  # no --calibration: the method would describe nothing
    ["--method", "percentile", "--implicit", "--calibration", "."],  # TensorRT's calibrator is entropy
])
def test_engines_build_refuses_a_method_it_cannot_apply(extra: list[str], scratch_home, capsys) -> None:
    from service.cli import main

    assert main(["engines", "build", "--precision", "int8", *extra]) == 2
    assert "--method" in capsys.readouterr().out
    assert not (scratch_home[0] / "calibration").exists()


def test_engines_build_refuses_an_unknown_method() -> None:
    from service.cli import main

    with pytest.raises(SystemExit):
        main(["engines", "build", "--precision", "int8", "--method", "kl-magic", "--calibration", ".", "--onnx-only"])


@pytest.mark.parametrize("asked", [None, next(m for m in CALIBRATION_METHODS if m != DEFAULT_METHOD)])
def test_engines_build_records_the_calibration_method(asked: str | None, scratch_home, capsys) -> None:
    from calibration.qdq import recorded_method
    from engine.backends.int8 import read_route
    from engine.pipeline import FacePipeline, PipelineConfig
    from models import paths
    from service.cli import main

    method = asked or DEFAULT_METHOD
    assert main(["engines", "build", "--precision", "int8", *(["--method", asked] if asked else []),
                 "--calibration", str(scratch_home[1]), "--onnx-only", "--photos", "2", "--faces", "4"]) == 0
    assert f"calibration method: {method}" in capsys.readouterr().out
    route = read_route(paths.calibration_dir())
    assert route.name == "qdq" and route.method == method and len(route.calibration) == 64
    pipeline = FacePipeline(PipelineConfig(precision="int8-mixed"))
    assert {recorded_method(pipeline._onnx_for(spec)) for spec in pipeline.manifest.pipeline_models()
            if pipeline.backends[spec.name].info.precision == "int8"} == {method}


def test_write_qdq_models_quantizes_only_the_roles_asked_for(scratch_home) -> None:
    from calibration.build import write_qdq_models
    from calibration.dataset import build_calibration_set
    from engine.backends.int8 import read_route
    from engine.pipeline import FacePipeline
    from models import paths

    pipeline = FacePipeline()
    photos = sorted(scratch_home[1].iterdir())
    calibration = build_calibration_set(photos, pipeline, max_detector=2, max_faces=4)
    written = write_qdq_models(calibration, "d" * 64, roles={"landmarks"})
    landmarks = {spec.name for spec in pipeline.manifest.for_role("landmarks")}
    assert set(written) == landmarks
    for spec in pipeline.manifest.pipeline_models():
        assert pipeline.models[spec.name].quantized.exists() == (spec.name in landmarks), spec.name
    assert read_route(paths.calibration_dir()).calibration == "d" * 64
