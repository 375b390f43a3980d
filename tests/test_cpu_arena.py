"""Every ONNX Runtime session of the pipeline draws from the process's one CPU arena (engine/backends/
onnxruntime.py, `shared_cpu_arena`): a session with an arena of its own would keep its own peak again, and
the models' peaks would add up."""

from __future__ import annotations

from engine.backends.onnxruntime import OnnxRuntimeBackend
from engine.pipeline import FacePipeline


def test_every_model_of_the_pipeline_uses_the_shared_arena(pipeline: FacePipeline, photo) -> None:
    result = pipeline.compare(photo("obama.jpg"), photo("obama2.jpg"))
    assert result.face is not None and result.match is not None
    assert pipeline.backends
    for name, backend in pipeline.backends.items():
        assert isinstance(backend, OnnxRuntimeBackend), name
        options = backend._session.get_session_options()
        assert options.get_session_config_entry("session.use_env_allocators") == "1", name
