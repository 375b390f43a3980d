"""The service's settings: defaults, then a TOML file, then environment variables, then command-line flags.

Every key is documented in docs/CONFIGURATION.md; an unknown key in the file is an error, so a typo is
never silently ignored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from engine.pipeline import PipelineConfig
from engine.profiles import PROFILES
from models import paths
from models.manifest import tomllib

ENV_PREFIX = "FACECOMPARE_"
# The data directory keeps its historical variable; everything else is FACECOMPARE_<KEY>.
ENV_NAMES = {"data_dir": "FACECOMPARE_DATA"}
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def default_data_dir() -> Path:
    """`$FACECOMPARE_DATA`, else `<FACECOMPARE_HOME>/data`."""
    configured = os.environ.get("FACECOMPARE_DATA")
    return Path(configured).expanduser() if configured else paths.home() / "data"


def default_config_path() -> Path:
    return paths.home() / "config.toml"


@dataclass(frozen=True)
class ServiceConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=default_data_dir)
    backend: str = "onnxruntime"
    precision: str = "fp32"
    threads: int = 0
    max_batch: int = 32
    max_wait_ms: float = 2.0
    queue_size: int = 64
    workers: int = 6
    max_body_bytes: int = 16 * 1024 * 1024
    # A connection idle this long (before its first request, between requests, or trickling its headers)
    # is closed; a compare's body must arrive whole within `body_timeout` (else 408 / 1003).
    idle_timeout: float = 15.0
    body_timeout: float = 60.0
    # None: the built-in default (loopback and the private ranges).
    client_allowlist: tuple[str, ...] | None = None
    callback_allowlist: tuple[str, ...] | None = None
    shutdown_timeout: float = 30.0
    # Callback retries: exponential from the base delay, capped, for at least `callback_retry_for` seconds.
    callback_base_delay: float = 1.0
    callback_max_delay: float = 60.0
    callback_retry_for: float = 600.0
    callback_timeout: float = 10.0
    log_level: str = "INFO"
    # A fleet's declared workspaces (docs/FLEET.md), applied at start and on SIGHUP; None: managed by hand.
    workspaces: Path | None = None
    # Prefixes every transactionId, so a load balancer can send a GET of a job to the device that holds it.
    device_id: str = ""
    # engine/profiles.py: "accurate" (the default) or "fast", an option for cameras that see large faces only.
    profile: str = "accurate"
    # While cores are idle, a compare works on its two photos at once (0.71x the time of a lone compare); off
    # for a machine whose cores other processes keep busy, where it only adds the threads' hand-offs.
    photos_at_once: bool = True

    def pipeline_config(self) -> PipelineConfig:
        return PipelineConfig(backend=self.backend, precision=self.precision, max_batch=self.max_batch,
                              threads=self.threads, profile=self.profile, photos_at_once=self.photos_at_once)

    @property
    def max_inflight(self) -> int:
        """Compares admitted at once: every worker busy and a queue's worth waiting; beyond that, 503."""
        return self.workers + self.queue_size


_FIELDS = {f.name: f for f in fields(ServiceConfig)}


def _convert(name: str, value: Any) -> Any:
    """A file or environment value as the field's type; ValueError names the key."""
    kind = str(_FIELDS[name].type)
    try:
        if kind == "bool":
            return _as_bool(value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind == "float":
            return float(value)
        if kind.startswith("Path"):
            return Path(str(value)).expanduser()
        if kind.startswith("tuple"):
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(item).strip() for item in items if str(item).strip())
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"configuration {name}: cannot use {value!r}") from exc


def _as_bool(value: Any) -> bool:
    """TOML's true/false, or in the environment true/false, 1/0, yes/no, on/off."""
    if isinstance(value, bool):
        return value
    words = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise ValueError(value)


def _from_file(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        data = tomllib.load(f)
    table = data.get("service", data)
    unknown = sorted(set(table) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{path}: unknown configuration keys {', '.join(unknown)}")
    return {name: _convert(name, value) for name, value in table.items()}


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values = {}
    for name in _FIELDS:
        variable = ENV_NAMES.get(name, ENV_PREFIX + name.upper())
        if env.get(variable, "") != "":
            values[name] = _convert(name, env[variable])
    return values


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> ServiceConfig:
    """Defaults < TOML file (`path`, `$FACECOMPARE_CONFIG`, or `<home>/config.toml` if present) < env < flags."""
    env = os.environ if env is None else env
    if path is None and env.get("FACECOMPARE_CONFIG"):
        path = Path(env["FACECOMPARE_CONFIG"]).expanduser()
    if path is None and default_config_path().exists():
        path = default_config_path()
    values: dict[str, Any] = _from_file(path) if path is not None else {}
    values.update(_from_env(env))
    values.update({k: _convert(k, v) for k, v in (overrides or {}).items() if v is not None})
    config = replace(ServiceConfig(), **values)
    for name in ("port", "max_batch", "queue_size", "workers", "max_body_bytes"):
        if getattr(config, name) < (0 if name == "port" else 1):
            raise ValueError(f"configuration {name}: {getattr(config, name)} is out of range")
    for name in ("callback_base_delay", "callback_max_delay", "callback_retry_for", "callback_timeout",
                 "idle_timeout", "body_timeout"):
        if not getattr(config, name) > 0:
            raise ValueError(f"configuration {name}: {getattr(config, name)} must be above 0")
    if config.profile not in PROFILES:
        raise ValueError(f"configuration profile: {config.profile!r} is not one of {', '.join(PROFILES)}")
    if config.device_id and not _DEVICE_ID.fullmatch(config.device_id):
        raise ValueError(f"configuration device_id: {config.device_id!r} must be letters, digits, '_', '.', '-'"
                         " (at most 63, starting with a letter or digit)")
    return config
