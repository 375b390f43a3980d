"""`facecompare doctor` and `engines build` run for real; on a machine without a GPU they must say so."""

from __future__ import annotations

import pytest

from service.cli import main
from tests.gpu import gpu_missing

no_gpu_here = pytest.mark.skipif(gpu_missing() is None, reason="a GPU is here: the no-GPU report cannot be seen")


@no_gpu_here
def test_doctor_says_clearly_there_is_no_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "TensorRT backend: NOT available here" in out
    assert "missing, and the fix:" in out
    assert "engine cache" in out and "NVRTC" in out


@no_gpu_here
def test_engines_build_without_tensorrt_says_what_to_install(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["engines", "build", "--precision", "fp16"]) == 1
    assert "TensorRT engines not built" in capsys.readouterr().out


def test_engines_build_refuses_unknown_precision() -> None:
    with pytest.raises(SystemExit):
        main(["engines", "build", "--precision", "int4"])
