"""Where fetched and prepared files live: a cache directory, never the repository."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """`$FACECOMPARE_HOME`, else `~/.cache/facecompare`."""
    configured = os.environ.get("FACECOMPARE_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "facecompare"


def downloads_dir() -> Path:
    return home() / "downloads"


def models_dir() -> Path:
    return home() / "models"


def engines_dir() -> Path:
    """TensorRT engines and timing caches: built on the device, never shipped (they are tied to GPU and version)."""
    return home() / "engines"


def calibration_dir() -> Path:
    return home() / "calibration"
