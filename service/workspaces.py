"""Workspaces: who may call the service, with which keys, threshold, mode, callback secret, allowlist and
liveness policy.

An API key is `fcw_<key id>_<secret>`. Only the key id (random, public, for the lookup) and a SHA-256 of the
secret are stored; the secret is 256 random bits, so an unsalted hash is enough, and the stored hash is
compared in constant time. The callback secret is stored as is: signing needs it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from service.access import parse_networks
from service.database import Database

MODES = ("sync", "async")
DEFAULT_NAME = "default"
KEY_PREFIX = "fcw"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_KEY = re.compile(rf"{KEY_PREFIX}_([0-9a-f]{{16}})_([A-Za-z0-9_-]{{43}})")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workspaces (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    enabled INTEGER NOT NULL DEFAULT 1,
    threshold REAL NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('sync', 'async')),
    callback_secret TEXT NOT NULL,
    allowlist TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    secret_sha256 BLOB NOT NULL,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS api_keys_workspace ON api_keys(workspace_id);
"""
# Columns added after the first release: added to an older file when it is opened.
_ADDED_COLUMNS = {
    "require_liveness": "INTEGER NOT NULL DEFAULT 0",
    "liveness_threshold": "REAL",  # NULL: the shipped threshold
}


@dataclass(frozen=True)
class Workspace:
    id: int
    name: str
    enabled: bool
    threshold: float
    mode: str  # "sync" | "async"
    callback_secret: str
    allowlist: tuple[str, ...]  # CIDRs, empty = use the global one
    require_liveness: bool = False  # every compare checks the target's liveness; not live is no match
    liveness_threshold: float | None = None  # None: the shipped threshold


class WorkspaceError(Exception):
    """A workspace command that cannot be done; the message says why."""


class UnknownWorkspace(WorkspaceError, LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no workspace named {name!r}")


class WorkspaceExists(WorkspaceError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a workspace named {name!r} already exists")


def _new_key() -> tuple[str, str, bytes]:
    """A fresh key, its key id and the hash of its secret."""
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    return f"{KEY_PREFIX}_{key_id}_{secret}", key_id, hashlib.sha256(secret.encode()).digest()


def _workspace(row: sqlite3.Row) -> Workspace:
    return Workspace(id=row["id"], name=row["name"], enabled=bool(row["enabled"]), threshold=row["threshold"],
                     mode=row["mode"], callback_secret=row["callback_secret"],
                     allowlist=tuple(json.loads(row["allowlist"])), require_liveness=bool(row["require_liveness"]),
                     liveness_threshold=row["liveness_threshold"])


def _check_threshold(name: str, value: float) -> None:
    if not 0.0 <= value <= 100.0:
        raise WorkspaceError(f"{name} must be within 0-100, not {value}")


class WorkspaceStore:
    """The workspaces of one data directory (`workspaces.sqlite3`)."""

    def __init__(self, data_dir: Path) -> None:
        self.db = Database(Path(data_dir) / "workspaces.sqlite3", _SCHEMA)
        with self.db.write() as conn:
            present = {row["name"] for row in conn.execute("PRAGMA table_info(workspaces)")}
            for column, declaration in _ADDED_COLUMNS.items():
                if column not in present:
                    conn.execute(f"ALTER TABLE workspaces ADD COLUMN {column} {declaration}")

    def authenticate(self, api_key: str) -> Workspace | None:
        """The key's workspace, disabled ones included (the caller answers 403); None for an unknown key."""
        match = _KEY.fullmatch(api_key)
        if match is None:
            return None
        key_id, secret = match.groups()
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT w.*, k.secret_sha256 FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id"
                " WHERE k.key_id = ?", (key_id,)).fetchone()
        if row is None or not hmac.compare_digest(row["secret_sha256"], hashlib.sha256(secret.encode()).digest()):
            return None
        return _workspace(row)

    def add(self, name: str, mode: str = "sync", threshold: float = 80.0,
            allowlist: Iterable[str] = (), require_liveness: bool = False,
            liveness_threshold: float | None = None) -> tuple[Workspace, str]:
        """Create a workspace; its API key is returned here and never again."""
        with self.db.write() as conn:
            key = self._insert(conn, name, mode, threshold, allowlist)[1]
            self._set_liveness(conn, name, require_liveness, liveness_threshold)
        return self.get(name), key

    def update(self, name: str, *, threshold: float | None = None, require_liveness: bool | None = None,
               liveness_threshold: float | None = None) -> Workspace:
        """Change the given settings of a workspace; the next request uses them."""
        with self.db.write() as conn:
            row = conn.execute("SELECT * FROM workspaces WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise UnknownWorkspace(name)
            if threshold is not None:
                _check_threshold("threshold", threshold)
                conn.execute("UPDATE workspaces SET threshold = ? WHERE name = ?", (float(threshold), name))
            current = _workspace(row)
            self._set_liveness(conn, name, current.require_liveness if require_liveness is None else require_liveness,
                               current.liveness_threshold if liveness_threshold is None else liveness_threshold)
        return self.get(name)

    @staticmethod
    def _set_liveness(conn: sqlite3.Connection, name: str, required: bool, threshold: float | None) -> None:
        if threshold is not None:
            _check_threshold("liveness threshold", threshold)
        conn.execute("UPDATE workspaces SET require_liveness = ?, liveness_threshold = ? WHERE name = ?",
                     (int(required), None if threshold is None else float(threshold), name))

    def ensure_default(self) -> str | None:
        """On first start, create `default` and return its key (once); None when any workspace exists."""
        with self.db.write() as conn:
            if conn.execute("SELECT 1 FROM workspaces LIMIT 1").fetchone():
                return None
            return self._insert(conn, DEFAULT_NAME, "sync", 80.0, ())[1]

    def list(self) -> list[Workspace]:
        with self.db.read() as conn:
            return [_workspace(row) for row in conn.execute("SELECT * FROM workspaces ORDER BY name")]

    def get(self, name: str) -> Workspace:
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM workspaces WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownWorkspace(name)
        return _workspace(row)

    def by_id(self, id: int) -> Workspace | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM workspaces WHERE id = ?", (id,)).fetchone()
        return _workspace(row) if row else None

    def set_enabled(self, name: str, enabled: bool) -> None:
        with self.db.write() as conn:
            if conn.execute("UPDATE workspaces SET enabled = ? WHERE name = ?", (int(enabled), name)).rowcount == 0:
                raise UnknownWorkspace(name)

    def rotate_key(self, name: str) -> str:
        """A new key for the workspace; every older key stops working in the same transaction."""
        with self.db.write() as conn:
            row = conn.execute("SELECT id FROM workspaces WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise UnknownWorkspace(name)
            conn.execute("DELETE FROM api_keys WHERE workspace_id = ?", (row["id"],))
            return self._add_key(conn, row["id"])

    def add_key(self, name: str) -> str:
        """One more key for the workspace, the others kept: lets clients move to a new key without a gap."""
        with self.db.write() as conn:
            row = conn.execute("SELECT id FROM workspaces WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise UnknownWorkspace(name)
            return self._add_key(conn, row["id"])

    @staticmethod
    def _add_key(conn: sqlite3.Connection, workspace_id: int) -> str:
        key, key_id, digest = _new_key()
        conn.execute("INSERT INTO api_keys (key_id, secret_sha256, workspace_id, created_at) VALUES (?, ?, ?, ?)",
                     (key_id, digest, workspace_id, time.time()))
        return key

    def _insert(self, conn: sqlite3.Connection, name: str, mode: str, threshold: float,
                allowlist: Iterable[str]) -> tuple[Workspace, str]:
        if not _NAME.fullmatch(name):
            raise WorkspaceError(f"bad workspace name {name!r}: letters, digits, '_', '.', '-', at most 64")
        if mode not in MODES:
            raise WorkspaceError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        _check_threshold("threshold", threshold)
        try:
            cidrs = tuple(str(net) for net in parse_networks(allowlist))
        except ValueError as exc:
            raise WorkspaceError(f"bad allowlist entry: {exc}") from exc
        try:
            cursor = conn.execute(
                "INSERT INTO workspaces (name, threshold, mode, callback_secret, allowlist, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (name, float(threshold), mode, secrets.token_hex(32), json.dumps(cidrs), time.time()))
        except sqlite3.IntegrityError as exc:
            raise WorkspaceExists(name) from exc
        key = self._add_key(conn, cursor.lastrowid)
        row = conn.execute("SELECT * FROM workspaces WHERE id = ?", (cursor.lastrowid,)).fetchone()
        return _workspace(row), key
