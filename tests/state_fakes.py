"""Temporary in-memory stand-ins for the state layer (service/workspaces.py, access.py, jobs.py).

They follow the agreed interfaces so the HTTP layer can be tested before the state layer lands; they are
not what is under test here, and go once the real modules are merged.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.errors import BadInput
from service.config import ServiceConfig
from service.deps import Services
from service.metrics import Metrics
from service.runtime import Runtime

DEFAULT_ALLOWLIST = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


@dataclass(frozen=True)
class Workspace:
    id: int
    name: str
    enabled: bool
    threshold: float
    mode: str
    callback_secret: str
    allowlist: tuple[str, ...]


class WorkspaceStore:
    def __init__(self, data_dir: Path) -> None:
        self._keys: dict[str, int] = {}
        self._by_id: dict[int, Workspace] = {}

    def add(self, name: str, mode: str = "sync", threshold: float = 80.0,
            allowlist: tuple[str, ...] = ()) -> tuple[Workspace, str]:
        workspace = Workspace(len(self._by_id) + 1, name, True, threshold, mode, secrets.token_hex(16),
                              tuple(allowlist))
        key = secrets.token_urlsafe(24)
        self._by_id[workspace.id] = workspace
        self._keys[key] = workspace.id
        return workspace, key

    def authenticate(self, api_key: str) -> Workspace | None:
        workspace_id = self._keys.get(api_key)
        return None if workspace_id is None else self._by_id[workspace_id]

    def ensure_default(self) -> str | None:
        return None if self._by_id else self.add("default")[1]

    def by_id(self, workspace_id: int) -> Workspace | None:
        return self._by_id.get(workspace_id)

    def disable(self, workspace_id: int) -> None:
        self._by_id[workspace_id] = replace(self._by_id[workspace_id], enabled=False)


class AddressAllowlist:
    def __init__(self, cidrs: Iterable[str]) -> None:
        self._networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]

    def allows(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._networks)


class JobStore:
    def __init__(self, data_dir: Path) -> None:
        self._rows: dict[str, tuple[int, dict[str, Any] | None]] = {}
        self.accepted: list[tuple[str, int, str]] = []

    def accept(self, transaction_id: str, workspace_id: int, callback_url: str) -> None:
        self.accepted.append((transaction_id, workspace_id, callback_url))
        self._rows[transaction_id] = (workspace_id, None)

    def finish(self, transaction_id: str, body: dict[str, Any]) -> None:
        self._rows[transaction_id] = (self._rows[transaction_id][0], body)

    def record(self, transaction_id: str, workspace_id: int, body: dict[str, Any]) -> None:
        self._rows[transaction_id] = (workspace_id, body)

    def result(self, transaction_id: str, workspace_id: int) -> dict[str, Any] | None:
        owner, body = self._rows.get(transaction_id, (None, None))
        if owner != workspace_id:
            return None
        return body if body is not None else {"status": "pending"}

    def recover(self) -> int:
        return 0


class CallbackDeliverer:
    def __init__(self) -> None:
        self.wakes = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def wake(self) -> None:
        self.wakes += 1


def fake_services(config: ServiceConfig) -> Services:
    callback_allowlist = AddressAllowlist(DEFAULT_ALLOWLIST)

    async def check_callback(url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not callback_allowlist.allows(parts.hostname or ""):
            raise BadInput("callbackUrl is not allowed")

    metrics = Metrics()
    return Services(config=config, metrics=metrics, runtime=Runtime(config, metrics),
                    workspaces=WorkspaceStore(config.data_dir), jobs=JobStore(config.data_dir),
                    deliverer=CallbackDeliverer(), client_allowlist=AddressAllowlist(DEFAULT_ALLOWLIST),
                    make_allowlist=AddressAllowlist, check_callback=check_callback)
