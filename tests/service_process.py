"""`facecompare serve` as a real subprocess on loopback, and the `facecompare` command line beside it.

The server is configured by a TOML file of its own (so a stray `$FACECOMPARE_HOME/config.toml` never leaks
in), listens on a free port of 127.0.0.1, and every line it writes is kept: stdout for the printed key,
stderr for the JSON logs.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
KEY_PATTERN = re.compile(r"fcw_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
_SCRIPT = Path(sys.executable).with_name("facecompare")
# The installed console script when there is one; the same entry point through `-m` otherwise.
FACECOMPARE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "service.cli"]


def facecompare(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run one `facecompare` command to its end; fails the test on a non-zero exit."""
    done = subprocess.run([*FACECOMPARE, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done


def add_workspace(data_dir: Path, name: str, *options: str) -> dict[str, str]:
    """`facecompare workspace add NAME --json`: {name, apiKey, callbackSecret}."""
    return json.loads(facecompare("workspace", "add", name, "--json", "--data-dir", str(data_dir), *options).stdout)


def _toml(settings: dict[str, Any]) -> str:
    """Flat settings as TOML: JSON's strings, numbers and lists of strings are valid TOML values."""
    return "".join(f"{name} = {json.dumps(value)}\n" for name, value in settings.items())


class ServiceProcess:
    """One `facecompare serve` over `data_dir`; a context manager that SIGKILLs it if still running at exit."""

    def __init__(self, data_dir: Path, *, repo: Path = REPO, **settings: Any) -> None:
        """`repo`: the checkout whose code serves (another worktree runs through `-m`, not the installed script)."""
        self.data_dir = data_dir
        self.repo = repo
        self.config_path = data_dir.with_name(data_dir.name + ".toml")
        self.config_path.write_text(_toml(settings))
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.port = 0
        self._listening = threading.Event()
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def printed_key(self) -> str | None:
        """The default workspace's key, when this start created it."""
        match = KEY_PATTERN.search("".join(self.stdout))
        return match.group(0) if match else None

    def start(self, timeout: float = 60) -> ServiceProcess:
        self._listening.clear()
        command = FACECOMPARE if self.repo == REPO else [sys.executable, "-m", "service.cli"]
        self._process = subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(self.data_dir),
             "--config", str(self.config_path)],
            cwd=self.repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        for stream, lines in ((self._process.stdout, self.stdout), (self._process.stderr, self.stderr)):
            threading.Thread(target=self._read, args=(stream, lines), daemon=True).start()
        if not self._listening.wait(timeout):
            self.kill()
            raise RuntimeError("server did not start:\n" + "".join(self.stderr[-20:]))
        return self

    def _read(self, stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)
            if lines is self.stderr and '"listening"' in line:
                entry = json.loads(line)
                if entry["msg"] == "listening":
                    self.port = int(entry["port"])
                    self._listening.set()

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from now until /readyz says 200."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if requests.get(self.url + "/readyz", timeout=5).status_code == 200:
                return time.monotonic() - started
            time.sleep(0.05)
        raise TimeoutError("server not ready")

    def logs(self) -> list[dict[str, Any]]:
        """Every stderr line as the JSON object it must be."""
        return [json.loads(line) for line in list(self.stderr)]

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, as in a crash or a power cut."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
        self.wait(30)

    def terminate(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        return None if self._process is None else self._process.wait(timeout)

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
