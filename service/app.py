"""The aiohttp application and its life: listen at once, load models behind, drain and stop on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable

from aiohttp import web

from service import routes_compare, routes_ops
from service.access import DEFAULT_ALLOWLIST, AddressAllowlist, check_callback_url
from service.config import ServiceConfig
from service.deps import SERVICES, Services
from service.jobs import CallbackDeliverer, JobStore
from service.metrics import Metrics
from service.middleware import api_middleware
from service.runtime import Runtime
from service.workspace_reload import WorkspacesReloader
from service.workspaces import WorkspaceStore

log = logging.getLogger("facecompare.app")


def create_app(services: Services) -> web.Application:
    """The application over ready-made services; the caller owns their construction (tests included)."""
    app = web.Application(middlewares=[api_middleware], client_max_size=services.config.max_body_bytes)
    app[SERVICES] = services
    routes_compare.add_routes(app)
    routes_ops.add_routes(app)
    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    return app


async def _start(app: web.Application) -> None:
    services = app[SERVICES]
    services.runtime.start_loading()
    recovered = await asyncio.to_thread(services.jobs.recover)
    if recovered:
        log.warning("unfinished jobs answered with 1002", extra={"fields": {"jobs": recovered}})
    await services.deliverer.start()


async def _stop(app: web.Application) -> None:
    """After the last request: let accepted jobs finish, stop the deliverer, then the inference workers."""
    services = app[SERVICES]
    if services.background:
        _, unfinished = await asyncio.wait(set(services.background), timeout=services.config.shutdown_timeout)
        for task in unfinished:
            task.cancel()
        if unfinished:
            log.warning("jobs left unfinished; answered with 1002 on the next start",
                        extra={"fields": {"jobs": len(unfinished)}})
    await services.deliverer.stop()
    await asyncio.get_running_loop().run_in_executor(None, services.runtime.close)


def services_from_config(config: ServiceConfig, metrics: Metrics | None = None) -> Services:
    """The production wiring: the state layer's stores in the data directory, allowlists from the config."""
    metrics = metrics or Metrics()
    workspaces = WorkspaceStore(config.data_dir)
    jobs = JobStore(config.data_dir)
    callback_allowlist = AddressAllowlist(_or_default(config.callback_allowlist))

    async def check_callback(url: str) -> None:
        await check_callback_url(url, callback_allowlist)

    deliverer = CallbackDeliverer(jobs, workspaces, callback_allowlist, metrics=metrics,
                                  base_delay=config.callback_base_delay, max_delay=config.callback_max_delay,
                                  retry_for=config.callback_retry_for, request_timeout=config.callback_timeout)
    return Services(config=config, metrics=metrics, runtime=Runtime(config, metrics), workspaces=workspaces,
                    jobs=jobs, deliverer=deliverer,
                    client_allowlist=AddressAllowlist(_or_default(config.client_allowlist)),
                    check_callback=check_callback)


def _or_default(configured: tuple[str, ...] | None) -> Iterable[str]:
    return DEFAULT_ALLOWLIST if configured is None else configured


def make_runner(app: web.Application, config: ServiceConfig) -> web.AppRunner:
    """No lingering by aiohttp: the error middleware drains what is left of a refused body itself, bounded in
    bytes as well as time (aiohttp's lingering close is bounded in time only); past those bounds the
    connection just closes.

    aiohttp's keep-alive timer also runs from a connection's start and closes it if no whole request head
    has arrived by then, so `idle_timeout` frees idle connections and slow-header (slowloris) clients alike.
    Requests are logged by the middleware, as JSON, so aiohttp's own access log is off.
    """
    return web.AppRunner(app, handle_signals=False, access_log=None, lingering_time=0,
                         keepalive_timeout=config.idle_timeout, shutdown_timeout=config.shutdown_timeout)


def _sighup_handler(services: Services, config: ServiceConfig) -> Callable[[], None]:
    """Reload the `workspaces` file; without one, say so rather than die (SIGHUP's default)."""
    if config.workspaces is not None:
        return WorkspacesReloader(services.workspaces, config.workspaces).request
    return lambda: log.warning("SIGHUP: no workspaces file is configured, nothing to reload")


async def serve(app: web.Application, config: ServiceConfig) -> None:
    """Listen until SIGTERM or SIGINT, then stop accepting, finish in-flight requests and jobs, and return.
    SIGHUP applies the configured `workspaces` file again."""
    runner = make_runner(app, config)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _sighup_handler(app[SERVICES], config))
    port = runner.addresses[0][1] if runner.addresses else config.port
    log.info("listening", extra={"fields": {"host": config.host, "port": port}})
    await stop.wait()
    log.info("stopping")
    await runner.cleanup()
    log.info("stopped")
