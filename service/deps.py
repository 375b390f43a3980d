"""What the handlers need, held by the application: the runtime, metrics, and the state layer's stores.

The stores block on SQLite (and an fsync for durable writes), so handlers call them through
`asyncio.to_thread`, never on the event loop itself; the one exception is the key lookup of every request, a
read that WAL mode never makes wait for a writer (service/routes_compare.py, `admit`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from service.access import AddressAllowlist
from service.config import ServiceConfig
from service.jobs import CallbackDeliverer, JobStore
from service.metrics import Metrics
from service.runtime import Runtime
from service.workspaces import WorkspaceStore


@dataclass
class Services:
    config: ServiceConfig
    metrics: Metrics
    runtime: Runtime
    workspaces: WorkspaceStore
    jobs: JobStore
    deliverer: CallbackDeliverer
    client_allowlist: AddressAllowlist
    # Raises BadInput (1003) for a callbackUrl that is not http(s) or resolves outside the callback allowlist.
    check_callback: Callable[[str], Awaitable[None]]
    background: set[asyncio.Task] = field(default_factory=set)


SERVICES = web.AppKey("services", Services)
