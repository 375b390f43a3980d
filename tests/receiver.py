"""A real HTTP receiver on a loopback address, for callback tests: records each request's raw bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered


@dataclass
class Receiver:
    """Answers with `statuses` in turn, then `status`; redirects everything when `redirect_to` is set."""

    host: str = "127.0.0.1"
    statuses: list[int] = field(default_factory=list)
    status: int = 200
    redirect_to: str | None = None
    requests: list[Received] = field(default_factory=list)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{self.port}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self.redirect_to:
            self.requests.append(Received(dict(request.headers), body, 307))
            raise web.HTTPTemporaryRedirect(self.redirect_to)
        status = self.statuses.pop(0) if self.statuses else self.status
        self.requests.append(Received(dict(request.headers), body, status))
        return web.Response(status=status)

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` requests arrived; fails after `timeout` seconds."""
        await self.wait_until(lambda: len(self.requests) >= count, timeout,
                              lambda: f"{len(self.requests)} of {count} requests came")

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0,
                         why: Callable[[], str] = lambda: "timed out") -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            assert asyncio.get_running_loop().time() < deadline, why()
            await asyncio.sleep(0.01)
