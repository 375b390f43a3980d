"""The workspaces file: what `workspace export` writes and `workspace import` and the `workspaces` setting read.

TOML by default, JSON when the file ends in `.json` or starts with `{`. Keys appear only as their id and the
SHA-256 of their secret; callback secrets only when asked for. A file is checked whole, and any problem is
named with where it is, before anything is applied.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import tomli_w

from models.manifest import tomllib
from service.workspaces import KEY_ID, MODES, KeyHash, WorkspaceError, WorkspaceSpec, check_settings

FORMAT_VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CALLBACK_SECRET = re.compile(r"[A-Za-z0-9_-]{32,256}")
_WORKSPACE_FIELDS = {"name", "enabled", "mode", "threshold", "allowlist", "callbackSecret", "keys", "requireLiveness",
                     "livenessThreshold"}
_KEY_FIELDS = {"id", "sha256", "expiresAt"}


class WorkspaceFileError(WorkspaceError):
    """A workspaces file that cannot be applied; nothing of it was."""


def dump(specs: Iterable[WorkspaceSpec], *, as_json: bool = False, with_secrets: bool = False) -> str:
    document = {"version": FORMAT_VERSION, "workspaces": [_workspace_entry(s, with_secrets) for s in specs]}
    return json.dumps(document, indent=2) + "\n" if as_json else tomli_w.dumps(document)


def _workspace_entry(spec: WorkspaceSpec, with_secrets: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": spec.name, "enabled": spec.enabled, "mode": spec.mode,
                             "threshold": spec.threshold, "allowlist": list(spec.allowlist),
                             "requireLiveness": spec.require_liveness}
    if spec.liveness_threshold is not None:
        entry["livenessThreshold"] = spec.liveness_threshold
    if with_secrets and spec.callback_secret:
        entry["callbackSecret"] = spec.callback_secret
    entry["keys"] = [_key_entry(key) for key in spec.keys]
    return entry


def _key_entry(key: KeyHash) -> dict[str, str]:
    entry = {"id": key.key_id, "sha256": key.secret_sha256.hex()}
    if key.expires_at is not None:
        entry["expiresAt"] = datetime.fromtimestamp(key.expires_at, timezone.utc).isoformat(timespec="milliseconds")
    return entry


def load(path: Path) -> list[WorkspaceSpec]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkspaceFileError(f"{path}: cannot read: {exc}") from exc
    return parse(text, as_json=path.suffix.lower() == ".json" or text.lstrip().startswith("{"), source=str(path))


def parse(text: str, *, as_json: bool, source: str = "workspaces file") -> list[WorkspaceSpec]:
    """The file's workspaces, every one checked; WorkspaceFileError names the first problem and where it is."""
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates) if as_json else tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise WorkspaceFileError(f"{source}: not valid {'JSON' if as_json else 'TOML'}: {exc}") from exc
    try:
        return _specs(document)
    except WorkspaceError as exc:
        raise WorkspaceFileError(f"{source}: {exc}") from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"duplicate field {repeated[0]!r}")
    return dict(pairs)


def _specs(document: Any) -> list[WorkspaceSpec]:
    if not isinstance(document, dict):
        raise WorkspaceError("the top level must be a table with `version` and `workspaces`")
    _only(document, {"version", "workspaces"}, "the top level")
    if document.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise WorkspaceError(f"version {document['version']!r} is not supported (this build reads {FORMAT_VERSION})")
    entries = document.get("workspaces")
    if not isinstance(entries, list):
        raise WorkspaceError("`workspaces` must be a list (an empty list disables every workspace)")
    specs = [_spec(entry, f"workspaces[{index}]") for index, entry in enumerate(entries)]
    names: set[str] = set()
    key_ids: dict[str, str] = {}
    for spec in specs:
        if spec.name in names:
            raise WorkspaceError(f"workspace {spec.name!r} appears twice")
        names.add(spec.name)
        for key in spec.keys:
            if key.key_id in key_ids:
                raise WorkspaceError(f"key id {key.key_id} appears twice (workspaces {key_ids[key.key_id]!r}"
                                     f" and {spec.name!r})")
            key_ids[key.key_id] = spec.name
    return specs


def _spec(entry: Any, where: str) -> WorkspaceSpec:
    if not isinstance(entry, dict):
        raise WorkspaceError(f"{where}: a workspace must be a table")
    name = entry.get("name")
    if isinstance(name, str):
        where = f"{where} ({name!r})"
    _only(entry, _WORKSPACE_FIELDS, where)
    enabled, mode = entry.get("enabled", True), entry.get("mode", "sync")
    threshold, allowlist = entry.get("threshold", 80.0), entry.get("allowlist", [])
    if not isinstance(enabled, bool):
        raise WorkspaceError(f"{where}: enabled must be true or false")
    if not isinstance(mode, str):
        raise WorkspaceError(f"{where}: mode must be one of {', '.join(MODES)}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise WorkspaceError(f"{where}: threshold must be a number within 0-100")
    if not isinstance(allowlist, list) or not all(isinstance(cidr, str) for cidr in allowlist):
        raise WorkspaceError(f"{where}: allowlist must be a list of CIDRs")
    try:
        cidrs = check_settings(name, mode, float(threshold), allowlist)
    except WorkspaceError as exc:
        raise WorkspaceError(f"{where}: {exc}") from exc
    require_liveness, liveness_threshold = entry.get("requireLiveness", False), entry.get("livenessThreshold")
    if not isinstance(require_liveness, bool):
        raise WorkspaceError(f"{where}: requireLiveness must be true or false")
    if liveness_threshold is not None and (
            isinstance(liveness_threshold, bool) or not isinstance(liveness_threshold, (int, float))
            or not 0.0 <= liveness_threshold <= 100.0):
        raise WorkspaceError(f"{where}: livenessThreshold must be a number within 0-100 (absent: the shipped one)")
    secret = entry.get("callbackSecret")
    if secret is not None and not (isinstance(secret, str) and _CALLBACK_SECRET.fullmatch(secret)):
        raise WorkspaceError(f"{where}: callbackSecret must be 32 to 256 characters of A-Z, a-z, 0-9, '_', '-'")
    keys = entry.get("keys", [])
    if not isinstance(keys, list):
        raise WorkspaceError(f"{where}: keys must be a list of {{id, sha256}}")
    return WorkspaceSpec(name=name, enabled=enabled, mode=mode, threshold=float(threshold), allowlist=cidrs,
                         keys=tuple(_key(key, f"{where} keys[{index}]") for index, key in enumerate(keys)),
                         callback_secret=secret, require_liveness=require_liveness,
                         liveness_threshold=None if liveness_threshold is None else float(liveness_threshold))


def _key(entry: Any, where: str) -> KeyHash:
    if not isinstance(entry, dict):
        raise WorkspaceError(f"{where}: a key must be a table {{id, sha256}}")
    _only(entry, _KEY_FIELDS, where)
    key_id, digest = entry.get("id"), entry.get("sha256")
    if not (isinstance(key_id, str) and KEY_ID.fullmatch(key_id)):
        raise WorkspaceError(f"{where}: id must be 16 lowercase hex digits (the part after 'fcw_')")
    if not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
        raise WorkspaceError(f"{where}: sha256 must be 64 lowercase hex digits (the SHA-256 of the key's secret)")
    return KeyHash(key_id, bytes.fromhex(digest), _expiry(entry.get("expiresAt"), where))


def _expiry(value: Any, where: str) -> float | None:
    """RFC 3339 with an offset (a TOML date-time is taken as is), to the millisecond."""
    if value is None:
        return None
    when = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            when = None
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise WorkspaceError(f"{where}: expiresAt must be a date and time with its offset, such as"
                             " 2026-12-01T21:30:00Z")
    return round(when.timestamp(), 3)


def _only(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if "apiKey" in unknown or "key" in unknown:
        raise WorkspaceError(f"{where}: a file never holds a key, only its hash: list it under keys as {{id, sha256}}"
                             " (`facecompare workspace export` writes them)")
    if unknown:
        raise WorkspaceError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
