"""Health, readiness, metrics, info, the OpenAPI document and the demo page."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from service.deps import SERVICES
from service.metrics import CONTENT_TYPE
from service.middleware import NotFound
from service.openapi import openapi_document

STATIC_DIR = Path(__file__).with_name("static")
# A fixed set, so no request path ever reaches the file system.
STATIC_FILES = {path.name: path for path in STATIC_DIR.iterdir() if path.is_file()}


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 once every model is loaded and warmed up; the NotReady error (503, Retry-After) before."""
    request.app[SERVICES].runtime.check_ready()
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    response = web.Response(body=request.app[SERVICES].metrics.render())
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


async def info(request: web.Request) -> web.Response:
    runtime = request.app[SERVICES].runtime
    runtime.check_ready()
    return web.json_response(runtime.info)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_FILES["index.html"])


async def static(request: web.Request) -> web.FileResponse:
    path = STATIC_FILES.get(request.match_info["name"])
    if path is None:
        raise NotFound("no such file")
    return web.FileResponse(path)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/info", info)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
