"""`facecompare doctor --self-test`: without a GPU it lists every check as skipped, with why, and exits 0; its
kernel check itself is exercised on the kernels' sources run on the CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.preprocess import cpu_blob
from service.cli import main
from service.self_test import COMPARE, FP16, INT8, KERNELS, MEMORY, TIMINGS, kernels_check, run_checks
from tests.cuda_emulation import compiler_missing
from tests.gpu import gpu_missing, requires_gpu
from tests.test_kernels import emulate

no_gpu_here = pytest.mark.skipif(gpu_missing() is None, reason="a GPU is here: the no-GPU report cannot be seen")


@no_gpu_here
def test_without_a_gpu_the_self_test_lists_its_checks_as_skipped_and_exits_0(capsys: pytest.CaptureFixture[str]
                                                                                ) -> None:
    assert main(["doctor", "--self-test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["gpu"] is False
    assert [c["name"] for c in report["checks"]] == [KERNELS, MEMORY, FP16, INT8, COMPARE, TIMINGS]
    assert all(c["status"] == "skipped" and c["detail"] for c in report["checks"])


@pytest.mark.skipif(compiler_missing() is not None, reason=str(compiler_missing()))
def test_the_kernel_check_passes_the_real_kernels_and_fails_a_wrong_one() -> None:
    good = kernels_check(emulate, "emulated")
    assert good.status == "pass", good.detail
    assert "100.00% within 1" in good.detail

    def two_levels_off(request, spec) -> np.ndarray:
        return cpu_blob(spec, [request]) + np.float32(2 * spec.scale)

    assert kernels_check(two_levels_off, "wrong").status == "fail"


@pytest.mark.gpu
@requires_gpu
def test_the_self_test_passes_on_this_gpu() -> None:
    gpu, _, checks = run_checks()
    assert gpu and [c for c in checks if c.status == "fail"] == []
