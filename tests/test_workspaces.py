"""Workspaces on a real SQLite file: keys only as hashes, rotation, disabling, the CLI, WAL."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from service.cli import main
from service.config import default_data_dir
from service.workspaces import UnknownWorkspace, WorkspaceError, WorkspaceExists, WorkspaceStore

REPO = Path(__file__).resolve().parents[1]


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service.cli", "workspace", *args, "--data-dir", str(data_dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def _data_bytes(data_dir: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(data_dir.iterdir()) if path.is_file())


def test_add_and_authenticate(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path)
    workspace, key = store.add("kiosk", mode="async", threshold=72.5, allowlist=["10.1.2.3/16"])
    assert (workspace.name, workspace.mode, workspace.threshold, workspace.enabled) == ("kiosk", "async", 72.5, True)
    assert workspace.allowlist == ("10.1.0.0/16",)
    assert len(workspace.callback_secret) == 64
    assert store.authenticate(key) == workspace
    assert store.by_id(workspace.id) == workspace
    assert store.get("kiosk") == workspace
    assert store.by_id(workspace.id + 1) is None


def test_unknown_and_malformed_keys(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path)
    _, key = store.add("kiosk")
    prefix, key_id, secret = key.split("_", 2)
    forged = f"{prefix}_{key_id}_{'A' * len(secret)}"  # a known key id with a wrong secret
    for candidate in ("", "x", key + "x", key[:-1], forged, key.upper(), f"{prefix}_{'0' * 16}_{secret}"):
        assert store.authenticate(candidate) is None


def test_several_keys_and_rotation(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path)
    workspace, first = store.add("gate")
    second = store.add_key("gate")
    assert store.authenticate(first) == store.authenticate(second) == workspace
    third = store.rotate_key("gate")
    assert store.authenticate(first) is None and store.authenticate(second) is None
    assert store.authenticate(third) == workspace


def test_disabled_workspaces_are_returned(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path)
    _, key = store.add("gate")
    store.set_enabled("gate", False)
    disabled = store.authenticate(key)
    assert disabled is not None and not disabled.enabled
    store.set_enabled("gate", True)
    assert store.authenticate(key).enabled


def test_ensure_default(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path)
    key = store.ensure_default()
    assert key is not None and store.authenticate(key).name == "default"
    assert store.ensure_default() is None
    other = WorkspaceStore(tmp_path / "other")
    other.add("kiosk")
    assert other.ensure_default() is None
    assert [w.name for w in other.list()] == ["kiosk"]


def test_refusals(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path)
    store.add("kiosk")
    with pytest.raises(WorkspaceExists):
        store.add("kiosk")
    for call in (lambda: store.rotate_key("nope"), lambda: store.set_enabled("nope", False),
                 lambda: store.add_key("nope"), lambda: store.get("nope")):
        with pytest.raises(UnknownWorkspace, match="nope"):
            call()
    for kwargs in ({"name": "bad name"}, {"name": ""}, {"name": "x", "mode": "batch"},
                   {"name": "x", "threshold": 101.0}, {"name": "x", "threshold": float("nan")},
                   {"name": "x", "allowlist": ["10.0.0.0/33"]}):
        with pytest.raises(WorkspaceError):
            store.add(**kwargs)
    assert [w.name for w in store.list()] == ["kiosk"]


def test_keys_never_stored_in_clear(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path)
    keys = [store.add(f"w{i}")[1] for i in range(3)] + [store.rotate_key("w0"), store.add_key("w1")]
    reader = store.db._connect(durable=True)  # an open connection keeps the -wal file on disk
    try:
        reader.execute("SELECT count(*) FROM workspaces").fetchone()
        data = _data_bytes(tmp_path)
    finally:
        reader.close()
    for key in keys:
        secret = key.split("_", 2)[2]
        assert key.encode() not in data and secret.encode() not in data


def test_wal_mode_and_owner_only(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path)
    store.add("kiosk")
    assert store.db.journal_mode() == "wal"
    header = store.db.path.read_bytes()[:20]
    assert header[:16] == b"SQLite format 3\x00" and header[18:20] == b"\x02\x02"  # WAL read and write versions
    assert store.db.path.stat().st_mode & 0o077 == 0


def test_concurrent_threads(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path)
    _, key = store.add("kiosk")
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            store.add(f"t{i}")
            for _ in range(20):
                assert store.authenticate(key).name == "kiosk"
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(store.list()) == 9


def test_cli_subprocess(tmp_path: Path) -> None:
    added = _cli(tmp_path, "add", "gate", "--mode", "async", "--threshold", "70", "--allow", "10.0.0.0/8", "--json")
    assert added.returncode == 0, added.stderr
    created = json.loads(added.stdout)
    assert set(created) == {"name", "apiKey", "callbackSecret"} and created["name"] == "gate"
    store = WorkspaceStore(tmp_path)
    workspace = store.authenticate(created["apiKey"])
    assert (workspace.mode, workspace.threshold, workspace.allowlist) == ("async", 70.0, ("10.0.0.0/8",))
    assert workspace.callback_secret == created["callbackSecret"]

    listed = _cli(tmp_path, "list", "--json")
    assert listed.returncode == 0 and created["apiKey"] not in listed.stdout
    assert json.loads(listed.stdout)[0]["name"] == "gate"
    assert created["apiKey"] not in _cli(tmp_path, "list").stdout

    assert _cli(tmp_path, "disable", "gate").returncode == 0
    assert not store.authenticate(created["apiKey"]).enabled
    assert _cli(tmp_path, "enable", "gate").returncode == 0
    assert store.authenticate(created["apiKey"]).enabled

    rotated = _cli(tmp_path, "rotate-key", "gate", "--json")
    assert rotated.returncode == 0
    assert store.authenticate(created["apiKey"]) is None
    assert store.authenticate(json.loads(rotated.stdout)["apiKey"]).name == "gate"

    for args in (("disable", "nope"), ("rotate-key", "nope"), ("add", "gate"), ("add", "x", "--allow", "nonsense")):
        refused = _cli(tmp_path, *args)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr and refused.stderr.strip()


def test_cli_plain_output_and_default_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FACECOMPARE_DATA", str(tmp_path / "env-data"))
    assert default_data_dir() == tmp_path / "env-data"
    assert main(["workspace", "add", "kiosk"]) == 0
    key = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("fcw_"))
    assert WorkspaceStore(tmp_path / "env-data").authenticate(key).name == "kiosk"

    monkeypatch.delenv("FACECOMPARE_DATA")
    monkeypatch.setenv("FACECOMPARE_HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / "data"
