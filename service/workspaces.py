"""Workspaces: who may call the service, with which keys, threshold, mode, callback secret, allowlist and
liveness policy.

An API key is `fcw_<key id>_<secret>`. Only the key id (random, public, for the lookup) and a SHA-256 of the
secret are stored; the secret is 256 random bits, so an unsalted hash is enough, and the stored hash is
compared in constant time. Having no per-device pepper, a hash exported from one device authenticates the
same key on any other (docs/FLEET.md). A key may carry an expiry (a rotation's grace period): past it, the key
is refused. The callback secret is stored as is: signing needs it.
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
from datetime import datetime, timezone
from pathlib import Path

from service.access import parse_networks
from service.database import Database

MODES = ("sync", "async")
DEFAULT_NAME = "default"
KEY_PREFIX = "fcw"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
KEY_ID = re.compile(r"[0-9a-f]{16}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43,128}")  # base64url; 43 characters carry 256 bits
_KEY = re.compile(rf"{KEY_PREFIX}_({KEY_ID.pattern})_({_SECRET.pattern})")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workspaces (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    enabled INTEGER NOT NULL DEFAULT 1,
    threshold REAL NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('sync', 'async')),
    callback_secret TEXT NOT NULL,
    allowlist TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    require_liveness INTEGER NOT NULL DEFAULT 0,
    liveness_threshold REAL
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    secret_sha256 BLOB NOT NULL,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    created_at REAL NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS api_keys_workspace ON api_keys(workspace_id);
"""
# Columns added after the first release (in the schema above too): added to an older file when it is opened.
_ADDED_COLUMNS = {
    "api_keys": {"expires_at": "REAL"},  # NULL: no expiry
    "workspaces": {"require_liveness": "INTEGER NOT NULL DEFAULT 0",
                   "liveness_threshold": "REAL"},  # NULL: the shipped threshold
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


@dataclass(frozen=True)
class KeyHash:
    """A key as stored and exported: never the key, only its public id and the SHA-256 of its secret."""
    key_id: str
    secret_sha256: bytes
    expires_at: float | None = None  # Unix time; None: no expiry


@dataclass(frozen=True)
class WorkspaceSpec:
    """A workspace as a fleet declares it: settings and key hashes, the same on every device."""
    name: str
    enabled: bool = True
    mode: str = "sync"
    threshold: float = 80.0
    allowlist: tuple[str, ...] = ()
    keys: tuple[KeyHash, ...] = ()
    callback_secret: str | None = None  # None: keep the device's own (a new workspace gets a random one)
    require_liveness: bool = False
    liveness_threshold: float | None = None  # None: the shipped threshold


class WorkspaceError(Exception):
    """A workspace command that cannot be done; the message says why."""


class UnknownWorkspace(WorkspaceError, LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no workspace named {name!r}")


class WorkspaceExists(WorkspaceError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a workspace named {name!r} already exists")


def _new_key() -> str:
    return f"{KEY_PREFIX}_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


def _new_callback_secret() -> str:
    return secrets.token_hex(32)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def key_hash(key: str) -> KeyHash:
    """A key chosen elsewhere (a fleet's secret manager) checked for form, length and alphabet, as its hash."""
    prefix, _, rest = key.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX:
        raise WorkspaceError(f"an API key starts with '{KEY_PREFIX}_'")
    if not KEY_ID.fullmatch(key_id):
        raise WorkspaceError(f"an API key is {KEY_PREFIX}_<key id>_<secret>; the key id is 16 lowercase hex digits")
    if not _SECRET.fullmatch(secret):
        raise WorkspaceError("an API key's secret is 43 to 128 characters of A-Z, a-z, 0-9, '_' and '-'"
                             f" (base64url of at least 32 random bytes), not {len(secret)} characters")
    return KeyHash(key_id, _digest(secret))


def check_settings(name: str, mode: str, threshold: float, allowlist: Iterable[str]) -> tuple[str, ...]:
    """Refuse a bad name, mode, threshold or allowlist; the allowlist as normalized CIDRs."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise WorkspaceError(f"bad workspace name {name!r}: letters, digits, '_', '.', '-', at most 64")
    if mode not in MODES:
        raise WorkspaceError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    _check_threshold("threshold", threshold)
    try:
        return tuple(str(net) for net in parse_networks(allowlist))
    except (TypeError, ValueError) as exc:
        raise WorkspaceError(f"bad allowlist entry: {exc}") from exc


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
        self._add_columns()

    def _add_columns(self) -> None:
        """A data directory from before key expiry or the liveness policy gets their columns on first open."""
        with self.db.write() as conn:
            for table, columns in _ADDED_COLUMNS.items():
                present = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
                for column, declaration in columns.items():
                    if column not in present:
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def authenticate(self, api_key: str) -> Workspace | None:
        """The key's workspace, disabled ones included (the caller answers 403); None for an unknown or
        expired key. The expiry is checked against the clock on every call, so a grace ends on time."""
        match = _KEY.fullmatch(api_key)
        if match is None:
            return None
        key_id, secret = match.groups()
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT w.*, k.secret_sha256 FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id"
                " WHERE k.key_id = ? AND (k.expires_at IS NULL OR k.expires_at > ?)", (key_id, time.time())).fetchone()
        if row is None or not hmac.compare_digest(row["secret_sha256"], _digest(secret)):
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

    def rotate_key(self, name: str, grace: float = 0.0, key: str | None = None) -> str:
        """A new key (`key`, else a random one) for the workspace. Every older key stops working in the same
        transaction, or `grace` seconds from now (never later than an expiry it already had)."""
        new_key = _new_key() if key is None else key
        with self.db.write() as conn:
            workspace_id = self._id_of(conn, name)
            if grace > 0:
                ends = round(time.time() + grace, 3)  # to the millisecond, as exports carry it
                conn.execute("UPDATE api_keys SET expires_at = ? WHERE workspace_id = ?"
                             " AND (expires_at IS NULL OR expires_at > ?)", (ends, workspace_id, ends))
            else:
                conn.execute("DELETE FROM api_keys WHERE workspace_id = ?", (workspace_id,))
            self._add_key(conn, workspace_id, key_hash(new_key))
        return new_key

    def add_key(self, name: str, key: str | None = None) -> str:
        """One more key (`key`, else a random one), the others kept: clients move to it without a gap."""
        new_key = _new_key() if key is None else key
        with self.db.write() as conn:
            self._add_key(conn, self._id_of(conn, name), key_hash(new_key))
        return new_key

    @staticmethod
    def _id_of(conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT id FROM workspaces WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownWorkspace(name)
        return row["id"]

    @staticmethod
    def _add_key(conn: sqlite3.Connection, workspace_id: int, key: KeyHash) -> None:
        conn.execute("DELETE FROM api_keys WHERE expires_at <= ?", (time.time(),))
        try:
            conn.execute("INSERT INTO api_keys (key_id, secret_sha256, workspace_id, created_at, expires_at)"
                         " VALUES (?, ?, ?, ?, ?)",
                         (key.key_id, key.secret_sha256, workspace_id, time.time(), key.expires_at))
        except sqlite3.IntegrityError as exc:
            raise WorkspaceError(f"key id {key.key_id} is already in use") from exc

    def _insert(self, conn: sqlite3.Connection, name: str, mode: str, threshold: float,
                allowlist: Iterable[str]) -> tuple[Workspace, str]:
        cidrs = check_settings(name, mode, threshold, allowlist)
        try:
            cursor = conn.execute(
                "INSERT INTO workspaces (name, threshold, mode, callback_secret, allowlist, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (name, float(threshold), mode, _new_callback_secret(), json.dumps(cidrs), time.time()))
        except sqlite3.IntegrityError as exc:
            raise WorkspaceExists(name) from exc
        key = _new_key()
        self._add_key(conn, cursor.lastrowid, key_hash(key))
        row = conn.execute("SELECT * FROM workspaces WHERE id = ?", (cursor.lastrowid,)).fetchone()
        return _workspace(row), key

    def export(self) -> list[WorkspaceSpec]:
        """Every workspace as a fleet would declare it, with its unexpired key hashes and its callback secret;
        in a fixed order, so that two devices that match the same file export the same text."""
        now = time.time()
        with self.db.read() as conn:
            keys: dict[int, list[KeyHash]] = {}
            for row in conn.execute("SELECT * FROM api_keys WHERE expires_at IS NULL OR expires_at > ?"
                                    " ORDER BY key_id", (now,)):
                keys.setdefault(row["workspace_id"], []).append(
                    KeyHash(row["key_id"], row["secret_sha256"], row["expires_at"]))
            return [WorkspaceSpec(name=w.name, enabled=w.enabled, mode=w.mode, threshold=w.threshold,
                                  allowlist=w.allowlist, keys=tuple(keys.get(w.id, ())),
                                  callback_secret=w.callback_secret, require_liveness=w.require_liveness,
                                  liveness_threshold=w.liveness_threshold)
                    for w in (_workspace(row) for row in conn.execute("SELECT * FROM workspaces ORDER BY name"))]

    def sync(self, specs: Iterable[WorkspaceSpec]) -> list[str]:
        """Make the workspaces match `specs` in one transaction: add, update, re-key, and disable (never
        delete) those left out, whose jobs and callbacks go on. What changed, one line each; none when
        the store already matched. The specs must be valid (checked by the caller, before this)."""
        specs = list(specs)
        changes: list[str] = []
        with self.db.write() as conn:
            now = time.time()
            conn.execute("DELETE FROM api_keys WHERE expires_at <= ?", (now,))
            existing = {row["name"]: _workspace(row) for row in conn.execute("SELECT * FROM workspaces")}
            for spec in specs:
                current = existing.get(spec.name)
                if current is None:
                    workspace_id = self._insert_spec(conn, spec)
                    made_here = "" if spec.callback_secret else " (callback secret made here: the file has none)"
                    changes.append(f"added workspace {spec.name}{made_here}")
                else:
                    workspace_id = current.id
                    changes += self._update(conn, current, spec)
                changes += self._sync_keys(conn, workspace_id, spec, now)
            declared = {spec.name for spec in specs}
            for name, workspace in sorted(existing.items()):
                if name not in declared and workspace.enabled:
                    conn.execute("UPDATE workspaces SET enabled = 0 WHERE id = ?", (workspace.id,))
                    changes.append(f"disabled workspace {name} (not in the file; kept with its jobs)")
        return changes

    @staticmethod
    def _insert_spec(conn: sqlite3.Connection, spec: WorkspaceSpec) -> int:
        cursor = conn.execute(
            "INSERT INTO workspaces (name, enabled, threshold, mode, callback_secret, allowlist, created_at,"
            " require_liveness, liveness_threshold) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (spec.name, int(spec.enabled), float(spec.threshold), spec.mode,
             spec.callback_secret or _new_callback_secret(), json.dumps(list(spec.allowlist)), time.time(),
             int(spec.require_liveness), spec.liveness_threshold))
        return cursor.lastrowid

    @staticmethod
    def _update(conn: sqlite3.Connection, current: Workspace, spec: WorkspaceSpec) -> list[str]:
        wanted = {"enabled": spec.enabled, "mode": spec.mode, "threshold": float(spec.threshold),
                  "allowlist": spec.allowlist, "callback_secret": spec.callback_secret or current.callback_secret,
                  "require_liveness": spec.require_liveness, "liveness_threshold": spec.liveness_threshold}
        differs = [name for name, value in wanted.items() if getattr(current, name) != value]
        if not differs:
            return []
        conn.execute("UPDATE workspaces SET enabled = ?, mode = ?, threshold = ?, allowlist = ?, callback_secret = ?,"
                     " require_liveness = ?, liveness_threshold = ? WHERE id = ?",
                     (int(spec.enabled), spec.mode, float(spec.threshold), json.dumps(list(spec.allowlist)),
                      wanted["callback_secret"], int(spec.require_liveness), spec.liveness_threshold, current.id))
        shown = [name if name == "callback_secret" else f"{name} {getattr(current, name)!r} -> {wanted[name]!r}"
                 for name in differs]
        return [f"updated workspace {spec.name}: {', '.join(shown)}"]

    def _sync_keys(self, conn: sqlite3.Connection, workspace_id: int, spec: WorkspaceSpec, now: float) -> list[str]:
        """Keys are matched by id; one whose hash or workspace differs is replaced. Already expired keys
        in the file are left out, like those `export` leaves out."""
        wanted = {key.key_id: key for key in spec.keys if key.expires_at is None or key.expires_at > now}
        changes = []
        for row in conn.execute("SELECT key_id FROM api_keys WHERE workspace_id = ?", (workspace_id,)).fetchall():
            if row["key_id"] not in wanted:
                conn.execute("DELETE FROM api_keys WHERE key_id = ?", (row["key_id"],))
                changes.append(f"workspace {spec.name}: removed key {row['key_id']}")
        for key in wanted.values():
            row = conn.execute("SELECT * FROM api_keys WHERE key_id = ?", (key.key_id,)).fetchone()
            same = (row is not None and row["workspace_id"] == workspace_id
                    and bytes(row["secret_sha256"]) == key.secret_sha256)
            if same and _same_time(row["expires_at"], key.expires_at):
                continue
            if same:
                conn.execute("UPDATE api_keys SET expires_at = ? WHERE key_id = ?", (key.expires_at, key.key_id))
                changes.append(f"workspace {spec.name}: key {key.key_id} {_expiry_text(key.expires_at)}")
                continue
            if row is not None:
                conn.execute("DELETE FROM api_keys WHERE key_id = ?", (key.key_id,))
            self._add_key(conn, workspace_id, key)
            changes.append(f"workspace {spec.name}: {'replaced' if row else 'added'} key {key.key_id}"
                           + (f", {_expiry_text(key.expires_at)}" if key.expires_at else ""))
        return changes


def _same_time(a: float | None, b: float | None) -> bool:
    """Expiries as files carry them, to the millisecond."""
    return (a is None) == (b is None) and (a is None or abs(a - b) < 0.0005)


def _expiry_text(expires_at: float | None) -> str:
    if expires_at is None:
        return "no longer expires"
    return f"expires at {datetime.fromtimestamp(expires_at, timezone.utc).isoformat(timespec='milliseconds')}"
