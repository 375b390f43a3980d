"""A fleet's workspaces: export and import of key hashes, the declared file and SIGHUP, keys from stdin, grace."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import tomli_w
from hypothesis import strategies as st

from service.cli import main
from service.config import load_config
from service.workspace_file import WorkspaceFileError, dump, parse
from service.workspaces import WorkspaceSpec, WorkspaceStore, key_hash
from tests.fuzzing import run_property, scaled
from tests.http_helpers import b64, photo, served
from tests.service_process import FACECOMPARE, REPO, ServiceProcess, facecompare


def fleet_key() -> str:
    """A key as a fleet's secret manager would make one."""
    return f"fcw_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


def key_entry(key: str, **extra: str) -> dict[str, str]:
    _, key_id, secret = key.split("_", 2)
    return {"id": key_id, "sha256": hashlib.sha256(secret.encode()).hexdigest(), **extra}


def workspace(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`facecompare workspace ...` as its own process, its stdin a pipe."""
    return subprocess.run([*FACECOMPARE, "workspace", *args, "--data-dir", str(data_dir)], cwd=REPO,
                          input=stdin, capture_output=True, text=True, timeout=60)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """The same command line in this process (each subprocess costs seconds of imports): (status, out, err)."""

    def run(data_dir: Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            status = main(["workspace", *args, "--data-dir", str(data_dir)])
        except SystemExit as exit_:
            status, message = (exit_.code, "") if isinstance(exit_.code, int) else (1, str(exit_.code))
            out, err = capsys.readouterr()
            return status, out, err + message
        out, err = capsys.readouterr()
        return status, out, err

    return run


def authenticates(url: str, key: str) -> int:
    """The status of a GET for an unknown job: 404 once the key is taken, 401 when it is not."""
    return requests.get(f"{url}/modules/compare/{'0' * 32}", headers={"x-api-key": key}, timeout=30).status_code


def test_export_imported_elsewhere_authenticates_the_same_keys_over_http(tmp_path: Path, cli) -> None:
    first = tmp_path / "first"
    gate_workspace, generated = WorkspaceStore(first).add("gate", threshold=75, allowlist=["10.0.0.0/8", "127.0.0.0/8"])
    created = {"apiKey": generated, "callbackSecret": gate_workspace.callback_secret}
    chosen = fleet_key()
    assert workspace(first, "add-key", "gate", "--key-from-stdin", stdin=chosen + "\n").returncode == 0
    exported = tmp_path / "fleet.toml"
    exported.write_text(facecompare("workspace", "export", "--data-dir", str(first)).stdout)
    second = tmp_path / "second"
    status, imported, _ = cli(second, "import", str(exported))
    assert status == 0 and "added workspace gate (callback secret made here: the file has none)" in imported
    # The same through JSON, on a third device.
    exported_json = tmp_path / "fleet.json"
    exported_json.write_text(cli(first, "export", "--json")[1])
    third = tmp_path / "third"
    assert cli(third, "import", str(exported_json))[0] == 0
    for key in (created["apiKey"], chosen):
        assert WorkspaceStore(third).authenticate(key).name == "gate"

    with served(second, wait_ready=False) as api:
        for key in (created["apiKey"], chosen):
            assert authenticates(api.url, key) == 404
        assert authenticates(api.url, fleet_key()) == 401
        wrong = created["apiKey"][:-1] + ("B" if created["apiKey"].endswith("A") else "A")
        assert authenticates(api.url, wrong) == 401
    gate = WorkspaceStore(second).get("gate")
    assert (gate.threshold, gate.allowlist, gate.mode) == (75.0, ("10.0.0.0/8", "127.0.0.0/8"), "sync")
    # Without --with-secrets the second device signs its callbacks with a secret of its own.
    assert gate.callback_secret != created["callbackSecret"]


def test_export_holds_no_key_and_callback_secrets_only_when_asked(tmp_path: Path, cli) -> None:
    store = WorkspaceStore(tmp_path)
    added = [store.add(name) for name in ("gate", "kiosk")]
    keys = [key for _, key in added] + [store.add_key("gate"), store.rotate_key("kiosk", grace=60)]
    callback_secrets = [workspace.callback_secret for workspace, _ in added]
    for options in ((), ("--json",)):
        status, out, err = cli(tmp_path, "export", *options)
        assert status == 0 and len(WorkspaceStore(tmp_path).export()) == len(parse(out, as_json=bool(options)))
        for key in keys:
            assert key.split("_", 2)[2] not in out and key_entry(key)["sha256"] in out
        assert not any(secret in out for secret in callback_secrets)
        assert err == ""
        status, out, err = cli(tmp_path, "export", *options, "--with-secrets")
        assert all(secret in out for secret in callback_secrets) and "secret" in err
        assert not any(key.split("_", 2)[2] in out for key in keys)


def test_import_matches_the_file_and_twice_changes_nothing(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path / "device")
    _, old_key = store.add("gate")
    store.add("legacy")
    new_key = fleet_key()
    document = {"version": 1, "workspaces": [
        {"name": "gate", "threshold": 70, "mode": "async",
         "keys": [key_entry(new_key), key_entry(fleet_key(), expiresAt="2099-01-01T00:00:00.123+01:00")]},
        {"name": "lobby", "enabled": False, "allowlist": ["192.168.1.0/24"], "callbackSecret": "s" * 64,
         "keys": [key_entry(fleet_key())]},
    ]}
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(document))

    changes = store.sync(parse(path.read_text(), as_json=True))
    assert "updated workspace gate: mode 'sync' -> 'async', threshold 80.0 -> 70.0" in changes
    assert f"workspace gate: removed key {old_key.split('_')[1]}" in changes
    assert f"workspace gate: added key {new_key.split('_')[1]}" in changes
    assert "added workspace lobby" in changes
    assert "disabled workspace legacy (not in the file; kept with its jobs)" in changes
    assert store.authenticate(old_key) is None and store.authenticate(new_key).threshold == 70.0
    assert store.get("lobby").callback_secret == "s" * 64 and not store.get("lobby").enabled
    assert store.get("legacy").enabled is False

    before = store.export()
    assert store.sync(parse(path.read_text(), as_json=True)) == []
    assert store.export() == before
    # The export round-trips too: importing what a device exports changes nothing on it.
    for as_json in (False, True):
        assert store.sync(parse(dump(before, as_json=as_json, with_secrets=True), as_json=as_json)) == []
    cli = facecompare("workspace", "import", str(path), "--data-dir", str(tmp_path / "device"))
    assert cli.stdout.startswith("no changes")


def test_add_key_from_stdin_is_checked_and_keys_coexist(tmp_path: Path, cli) -> None:
    _, generated = WorkspaceStore(tmp_path).add("gate")
    chosen = fleet_key()
    done = workspace(tmp_path, "add-key", "gate", "--key-from-stdin", stdin=chosen + "\n")
    assert done.returncode == 0 and chosen not in done.stdout and chosen.split("_")[1] in done.stdout
    store = WorkspaceStore(tmp_path)
    assert store.authenticate(chosen).name == store.authenticate(generated).name == "gate"
    key_id = secrets.token_hex(8)
    bad = {
        f"fcw_{key_id}_{'A' * 42}": "43 to 128 characters",  # too short: under 256 bits
        f"fcw_{key_id}_{'A' * 129}": "43 to 128 characters",
        f"fcw_{key_id}_{'A' * 42}+": "43 to 128 characters",  # '+' is not base64url
        f"fcw_{key_id.upper()}_{'A' * 43}": "16 lowercase hex",
        f"fcw_{key_id[:15]}_{'A' * 43}": "16 lowercase hex",
        f"key_{key_id}_{'A' * 43}": "starts with 'fcw_'",
        "": "starts with 'fcw_'",
        chosen: "already in use",
    }
    for key, problem in bad.items():
        status, out, err = cli(tmp_path, "add-key", "gate", "--key-from-stdin", stdin=key + "\n")
        assert status == 1 and problem in err and out == "", (key, err)
        assert key in ("", chosen) or key.split("_", 2)[-1] not in err
    assert len(store.export()[0].keys) == 2


def test_grace_period_ends_on_time(tmp_path: Path) -> None:
    grace = 1.0
    store = WorkspaceStore(tmp_path / "first")
    _, old_key = store.add("gate")
    started = time.time()
    new_key = store.rotate_key("gate", grace=grace)
    rotated = time.time()
    # A second device given the export during the grace period ends the old key at the same instant.
    other = WorkspaceStore(tmp_path / "second")
    other.sync(parse(dump(store.export()), as_json=False))
    assert dump(other.export()) == dump(store.export())
    for device in (store, other):
        assert device.authenticate(old_key) is not None and device.authenticate(new_key) is not None
    time.sleep(max(0.0, started + grace - 0.25 - time.time()))
    assert all(device.authenticate(old_key) is not None for device in (store, other))
    time.sleep(max(0.0, rotated + grace + 0.01 - time.time()))
    for device in (store, other):
        assert device.authenticate(old_key) is None and device.authenticate(new_key) is not None
    # Expired keys leave the exports, so a later import never brings them back.
    assert [key.key_id for key in store.export()[0].keys] == [new_key.split("_")[1]]


def test_rotate_key_grace_from_the_command_line(tmp_path: Path, cli) -> None:
    _, old_key = WorkspaceStore(tmp_path).add("gate")
    chosen = fleet_key()
    status, _, err = cli(tmp_path, "rotate-key", "gate", "--grace", "10m", "--key-from-stdin", stdin=chosen)
    assert status == 0 and "600 s" in err
    store = WorkspaceStore(tmp_path)
    assert store.authenticate(old_key) is not None and store.authenticate(chosen) is not None
    (old,) = [key for key in store.export()[0].keys if key.expires_at is not None]
    assert old.key_id == old_key.split("_")[1] and 590 < old.expires_at - time.time() <= 600
    assert cli(tmp_path, "rotate-key", "gate", "--grace", "soon")[0] == 2
    assert cli(tmp_path, "rotate-key", "gate")[0] == 0  # no grace: both stop at once
    assert store.authenticate(old_key) is None and store.authenticate(chosen) is None


GOOD = {"name": "gate", "keys": [{"id": "0123456789abcdef", "sha256": "ab" * 32}]}
BAD_FILES = [
    ("not-json.json", "{\"workspaces\": [", "not valid JSON"),
    ("not-toml.toml", "[[workspaces]\nname = ", "not valid TOML"),
    ("top.json", "[]", "top level must be a table"),
    ("dup-field.json", '{"workspaces": [], "workspaces": []}', "duplicate field 'workspaces'"),
    ("version.json", {"version": 2, "workspaces": []}, "version 2 is not supported"),
    ("list.json", {"workspaces": {"gate": {}}}, "`workspaces` must be a list"),
    ("dup-name.json", {"workspaces": [GOOD, {"name": "gate"}]}, "workspace 'gate' appears twice"),
    ("dup-key.json", {"workspaces": [{"name": "new"}, GOOD, {"name": "b", "keys": GOOD["keys"]}]},
     "key id 0123456789abcdef appears twice"),
    ("hash.json", {"workspaces": [{"name": "gate", "keys": [{"id": "0123456789abcdef", "sha256": "ab" * 31}]}]},
     "workspaces[0] ('gate') keys[0]: sha256 must be 64 lowercase hex"),
    ("hash-hex.json", {"workspaces": [{"name": "gate", "keys": [{"id": "0123456789abcdef", "sha256": "zz" * 32}]}]},
     "sha256 must be 64 lowercase hex"),
    ("key-id.json", {"workspaces": [{"name": "gate", "keys": [{"id": "xyz", "sha256": "ab" * 32}]}]},
     "id must be 16 lowercase hex"),
    ("plain.json", {"workspaces": [{"name": "gate", "apiKey": "fcw_0123456789abcdef_" + "A" * 43}]},
     "never holds a key"),
    ("mode.json", {"workspaces": [{"name": "new"}, {"name": "gate", "mode": "batch"}]},
     "workspaces[1] ('gate'): mode must be one of sync, async, not 'batch'"),
    ("threshold.json", {"workspaces": [{"name": "gate", "threshold": 101}]}, "threshold must be within 0-100"),
    ("threshold-type.json", {"workspaces": [{"name": "gate", "threshold": "80"}]}, "threshold must be a number"),
    ("cidr.json", {"workspaces": [{"name": "gate", "allowlist": ["10.0.0.0/33"]}]}, "bad allowlist entry"),
    ("name.json", {"workspaces": [{"name": "bad name"}]}, "bad workspace name 'bad name'"),
    ("unknown.json", {"workspaces": [{"name": "gate", "treshold": 70}]}, "unknown field 'treshold'"),
    ("enabled.json", {"workspaces": [{"name": "gate", "enabled": "yes"}]}, "enabled must be true or false"),
    ("secret.json", {"workspaces": [{"name": "gate", "callbackSecret": "short"}]}, "callbackSecret must be"),
    ("expiry.json", {"workspaces": [{"name": "gate", "keys": [{**GOOD["keys"][0], "expiresAt": "2030-01-01T00:00"}]}]},
     "expiresAt must be a date and time with its offset"),
]


@pytest.mark.parametrize(("name", "content", "problem"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_a_bad_file_changes_nothing_and_names_its_problem(tmp_path: Path, cli, name: str, content: object,
                                                          problem: str) -> None:
    store = WorkspaceStore(tmp_path / "device")
    _, key = store.add("gate")
    store.add("kiosk")
    before = store.export()
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    status, out, err = cli(tmp_path / "device", "import", str(path))
    assert status == 1 and out == ""
    assert problem in err and str(path) in err
    assert store.export() == before and store.authenticate(key) is not None


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=80)
    | st.sampled_from(["gate", "sync", "async", "10.0.0.0/8", "0123456789abcdef", "ab" * 32, "2030-01-01T00:00Z"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "mode", "threshold", "enabled", "allowlist", "keys", "id", "sha256", "expiresAt",
                         "callbackSecret", "workspaces", "version", "x"]), inner, max_size=5),
    max_leaves=20)


@st.composite
def workspace_documents(draw: st.DrawFn) -> tuple[str, bool]:
    """A valid file with some of its values replaced by anything JSON holds, or text that is no file at all."""
    document = {"version": 1, "workspaces": [{**GOOD, "threshold": 80, "allowlist": ["10.0.0.0/8"]}]}
    entry = document["workspaces"][0]
    for field in draw(st.lists(st.sampled_from(sorted(entry)), max_size=3)):
        entry[field] = draw(JSON_VALUES)
    if draw(st.booleans()):
        document = draw(JSON_VALUES)
    as_json = draw(st.booleans())
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=200)), as_json
    try:
        return (json.dumps(document) if as_json else tomli_w.dumps(document)), as_json
    except (TypeError, ValueError, AttributeError):  # TOML has no null and no top-level list
        return json.dumps(document, allow_nan=True), True


def test_fuzzed_files_are_applied_or_refused_by_name(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path)
    outcomes = {"applied": 0, "refused": 0}

    def check(case: tuple[str, bool]) -> None:
        text, as_json = case
        try:
            specs = parse(text, as_json=as_json)
        except WorkspaceFileError as error:
            assert str(error).startswith("workspaces file: ")
            outcomes["refused"] += 1
            return
        store.sync(specs)  # a file that passed the check never fails in the database
        assert store.sync(specs) == []
        outcomes["applied"] += 1

    assert run_property(workspace_documents(), 300, check) == scaled(300)
    assert min(outcomes.values()) > 10


def test_a_database_from_before_key_expiry_is_upgraded(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path)
    _, key = store.add("gate")
    with sqlite3.connect(store.db.path) as conn:
        conn.execute("ALTER TABLE api_keys DROP COLUMN expires_at")
    upgraded = WorkspaceStore(tmp_path)
    assert upgraded.authenticate(key).name == "gate"
    assert upgraded.rotate_key("gate", grace=60) and upgraded.authenticate(key) is not None


def test_configuration_names_the_workspaces_file_and_the_device(tmp_path: Path) -> None:
    config = load_config(env={"FACECOMPARE_WORKSPACES": "~/fleet.toml", "FACECOMPARE_DEVICE_ID": "gate-07"})
    assert config.workspaces == Path("~/fleet.toml").expanduser() and config.device_id == "gate-07"
    assert load_config(env={}).workspaces is None and load_config(env={}).device_id == ""
    for bad in ("-gate", "gate 7", "g/7", "x" * 64):
        with pytest.raises(ValueError, match="device_id"):
            load_config(env={"FACECOMPARE_DEVICE_ID": bad})


def test_serve_refuses_to_start_on_a_bad_workspaces_file(tmp_path: Path) -> None:
    declared = tmp_path / "fleet.toml"
    declared.write_text('[[workspaces]]\nname = "gate"\nmode = "batch"\n')
    config = tmp_path / "config.toml"
    config.write_text(f"workspaces = {json.dumps(str(declared))}\n")
    done = subprocess.run([*FACECOMPARE, "serve", "--port", "0", "--config", str(config), "--data-dir",
                           str(tmp_path / "data")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "mode must be one of" in done.stderr and str(declared) in done.stderr
    assert WorkspaceStore(tmp_path / "data").list() == []


def test_sighup_without_a_workspaces_file_is_only_logged(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path / "data") as server:
        os.kill(server.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not any(e["msg"].startswith("SIGHUP") for e in server.logs()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
        assert authenticates(server.url, server.printed_key) == 404
    assert any(e["msg"].startswith("SIGHUP: no workspaces file") for e in server.logs())


def _declare(path: Path, workspaces: list[dict]) -> None:
    path.write_text(dump([WorkspaceSpec(**w) for w in workspaces]))


def _reloads(server: ServiceProcess) -> int:
    return sum(entry["msg"].startswith("workspaces file") for entry in server.logs())


def test_sighup_reload_under_load_drops_no_request(tmp_path: Path) -> None:
    gate_key, kiosk_key = fleet_key(), fleet_key()
    declared = tmp_path / "fleet.toml"
    gate = {"name": "gate", "keys": (key_hash(gate_key),)}
    _declare(declared, [gate])
    with ServiceProcess(tmp_path / "data", workspaces=str(declared), device_id="gate-07") as server:
        assert server.printed_key is None  # the file declares the workspaces: no `default`
        assert authenticates(server.url, gate_key) == 404
        server.wait_ready()
        headers = {"x-api-key": gate_key}
        payload = {"originFace": b64(photo("sample1.jpg")), "targetFace": b64(photo("sample2.jpg"))}
        first = requests.post(server.url + "/modules/compare", json=payload, headers=headers, timeout=60).json()
        transaction_id = first["transactionId"]
        assert re.fullmatch(r"gate-07-[0-9a-f]{32}", transaction_id)
        result_url = f"{server.url}/modules/compare/{transaction_id}"

        statuses: list[int] = []
        reloading = threading.Event()
        reloading.set()
        deadline = time.monotonic() + 60

        def load(make_request, most: int) -> None:
            for _ in range(most):
                if not reloading.is_set() or time.monotonic() > deadline:
                    return
                try:
                    statuses.append(make_request().status_code)
                except requests.RequestException:
                    statuses.append(0)

        def get() -> requests.Response:
            return requests.get(result_url, headers=headers, timeout=30)

        def post() -> requests.Response:
            return requests.post(server.url + "/modules/compare", json=payload, headers=headers, timeout=60)

        threads = [threading.Thread(target=load, args=(get, 2000)) for _ in range(3)]
        threads.append(threading.Thread(target=load, args=(post, 50)))
        for thread in threads:
            thread.start()
        for round_ in range(12):
            # Each reload changes something: the threshold, a second workspace in and out; one file is broken.
            if round_ == 7:
                declared.write_text("not = [valid")
            else:
                kiosk = [{"name": "kiosk", "keys": (key_hash(kiosk_key),)}] if round_ % 2 else []
                _declare(declared, [{**gate, "threshold": 70.0 + round_}, *kiosk])
            done, waited = _reloads(server), time.monotonic() + 10
            os.kill(server.pid, signal.SIGHUP)
            while _reloads(server) == done and time.monotonic() < waited:
                time.sleep(0.01)
            assert _reloads(server) == done + 1, f"SIGHUP {round_} was not answered by a reload"
        reloading.clear()
        for thread in threads:
            thread.join(60)
        assert len(statuses) > 12 and set(statuses) == {200}

        assert authenticates(server.url, kiosk_key) == 404
        assert requests.get(result_url, headers=headers, timeout=30).json()["transactionId"] == transaction_id
    logs = server.logs()
    assert sum(entry["msg"] == "workspaces file applied" for entry in logs) == 1 + 11
    (refused,) = [entry for entry in logs if entry["msg"].startswith("workspaces file refused")]
    assert refused["error"].startswith(f"{declared}: not valid TOML")
    assert [e["changes"] for e in logs if e["msg"] == "workspaces file applied"][-1] == [
        "updated workspace gate: threshold 80.0 -> 81.0", "updated workspace kiosk: enabled False -> True"]
    assert WorkspaceStore(tmp_path / "data").get("gate").threshold == 81.0
    assert gate_key not in "".join(server.stderr) and kiosk_key not in "".join(server.stderr)
