"""What the handlers need, held by the application: the runtime, metrics, and the state layer's objects.

The state layer (workspaces, access checks, job outbox) is passed in, so the HTTP layer is built and tested
against its interface alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from service.config import ServiceConfig
from service.metrics import Metrics
from service.runtime import Runtime


class Allowlist(Protocol):
    def allows(self, address: str) -> bool: ...


@dataclass
class Services:
    config: ServiceConfig
    metrics: Metrics
    runtime: Runtime
    workspaces: Any
    jobs: Any
    deliverer: Any
    client_allowlist: Allowlist
    # Builds a workspace's own allowlist from its CIDRs.
    make_allowlist: Callable[[Iterable[str]], Allowlist]
    # Raises BadInput (1003) for a callbackUrl that is not http(s) or resolves outside the callback allowlist.
    check_callback: Callable[[str], Awaitable[None]]
    background: set[asyncio.Task] = field(default_factory=set)


SERVICES = web.AppKey("services", Services)
