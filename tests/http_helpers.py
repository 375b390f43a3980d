"""Shared by the HTTP tests: one served app with the real models and state layer, photos as bytes, crops."""

from __future__ import annotations

import base64
import io
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from PIL import Image

from service.app import create_app, services_from_config
from service.config import ServiceConfig
from service.deps import Services
from tests.assets import asset_path
from tests.http_server import ServerThread


@dataclass
class Served:
    server: ServerThread
    services: Services
    key: str

    @property
    def url(self) -> str:
        return self.server.url

    def compare(self, payload: dict[str, Any] | None = None, *, files: dict[str, Any] | None = None,
                data: dict[str, Any] | None = None, key: str | None = None, path: str = "/modules/compare",
                **kwargs: Any) -> requests.Response:
        headers = {"x-api-key": self.key if key is None else key}
        return requests.post(self.url + path, json=payload, files=files, data=data, headers=headers, timeout=60,
                             **kwargs)


@contextmanager
def served(data_dir: Path, wait_ready: bool = True, extra_routes: Any = None, **config: Any) -> Iterator[Served]:
    """A real server on loopback over the real models and stores in `data_dir`, with one sync workspace."""
    services = services_from_config(ServiceConfig(data_dir=data_dir, **config))
    _, key = services.workspaces.add("tests")
    app = create_app(services)
    if extra_routes is not None:
        extra_routes(app)
    with ServerThread(app) as server:
        if wait_ready:
            server.wait_ready()
        yield Served(server, services, key)


def photo(name: str) -> bytes:
    return asset_path(name).read_bytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=95)
    return out.getvalue()


def crop(name: str, centre: tuple[int, int], size: int) -> bytes:
    """A square crop of a photo around a point, as JPEG."""
    with Image.open(asset_path(name)) as image:
        x, y = centre
        half = size // 2
        return jpeg(image.crop((max(0, x - half), max(0, y - half), min(image.width, x + half),
                                min(image.height, y + half))))


def blank_png(width: int = 320, height: int = 240) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (128, 128, 128)).save(out, "PNG")
    return out.getvalue()


def centre(box: dict[str, float], width: int, height: int) -> tuple[float, float]:
    """A Rekognition box's centre in pixels of an image of `width` x `height`."""
    return (box["Left"] + box["Width"] / 2) * width, (box["Top"] + box["Height"] / 2) * height


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)
