"""Shared fixtures: the real models (fetched once into the cache) and the real test photos."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from engine.pipeline import FacePipeline, PipelineConfig
from models.store import fetch_models
from tests.assets import asset_path
from tests.http_helpers import Served, served


@pytest.fixture(scope="session")
def pipeline() -> FacePipeline:
    fetch_models()
    return FacePipeline(PipelineConfig(threads=2))


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real server on loopback with a fresh data directory, one per test module (modules may override it)."""
    with served(tmp_path_factory.mktemp("data")) as running:
        yield running


@pytest.fixture(scope="session")
def photo():
    """Bytes of a test photo by name (see tests/assets.toml)."""
    return lambda name: asset_path(name).read_bytes()


def save_image(image: Image.Image, image_format: str, **options) -> bytes:
    """Image bytes with Pillow: how tests make PNG, BMP, CMYK and EXIF-rotated variants."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def encode(pixels: np.ndarray, image_format: str, **options) -> bytes:
    return save_image(Image.fromarray(pixels), image_format, **options)
