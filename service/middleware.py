"""The one place where errors become responses, and where every request is counted, timed and logged."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from engine.errors import ApiError, BadInput, BodyTooLarge, NotReady
from service import logs
from service.deps import SERVICES
from service.parsing import BodyTimedOut
from service.response import error_body, new_transaction_id

log = logging.getLogger("facecompare.http")

TRANSACTION_ID = web.RequestKey("transaction_id", str)
# How long an error answer may wait for the rest of a refused body to arrive.
DRAIN_TIMEOUT_S = 10.0
# Answers after which what is left of the body is dropped unread: over the cap, or too slow to arrive.
UNREAD_BODY_STATUSES = (BodyTooLarge.http_status, BodyTimedOut.http_status)


class NotFound(ApiError):
    http_status, error_code, message = 404, 1003, "Failed to process data"


class MethodNotAllowed(ApiError):
    http_status, error_code, message = 405, 1003, "Failed to process data"

    def __init__(self, reason: str | None = None, allowed: frozenset[str] = frozenset()) -> None:
        super().__init__(reason)
        self.allowed = allowed


def error_response(error: ApiError, transaction_id: str) -> web.Response:
    """The contract's error body with its status; Retry-After for 503, Allow for 405."""
    response = web.json_response(error_body(error, transaction_id), status=error.http_status)
    if isinstance(error, NotReady):
        response.headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, MethodNotAllowed):
        response.headers["Allow"] = ", ".join(sorted(error.allowed))
    return response


def _from_http(exc: web.HTTPException) -> ApiError:
    """aiohttp's own HTTP errors (no route, wrong method, body over the cap) as API errors."""
    if isinstance(exc, web.HTTPNotFound):
        return NotFound("no such route")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return MethodNotAllowed(f"{exc.method} is not allowed here", frozenset(exc.allowed_methods))
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return BodyTooLarge("request body is over its cap")
    if exc.status < 500:
        return BadInput(exc.reason)
    return ApiError()


async def _drain(request: web.Request, limit: int) -> None:
    """Read and drop what is left of a body refused before it was read (a bad key, a bad part), up to the
    body cap and for a bounded time, so the client reads the error instead of a reset connection.

    A body declared over the cap is never read: that connection just closes after the 413.
    """
    if not request.body_exists or (request.content_length or 0) > limit:
        return

    async def read_up_to_limit() -> None:
        read = 0
        while read <= limit and (chunk := await request.content.readany()):
            read += len(chunk)

    try:
        await asyncio.wait_for(read_up_to_limit(), DRAIN_TIMEOUT_S)
    except (asyncio.TimeoutError, OSError, HttpProcessingError, web.HTTPException):
        return  # the connection closes after the answer, as it would have without the drain


def _route(request: web.Request) -> str:
    """The route's pattern, never the raw path, so metric labels stay few."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def api_middleware(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    transaction_id = new_transaction_id(request.app[SERVICES].config.device_id)
    request[TRANSACTION_ID] = transaction_id
    token = logs.transaction_id.set(transaction_id)
    started = time.monotonic()
    error_code = ""
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            raise _from_http(exc) from exc
    except ApiError as error:
        error_code = str(error.error_code)
        response = error_response(error, transaction_id)
    except Exception:
        log.exception("unhandled error")
        error_code = str(ApiError.error_code)
        response = error_response(ApiError(), transaction_id)
    if response.status in UNREAD_BODY_STATUSES:
        response.force_close()  # the rest of the body is never read, so the connection cannot be reused
    elif error_code:
        await _drain(request, request.app[SERVICES].config.max_body_bytes)
    seconds = time.monotonic() - started
    route = _route(request)
    metrics = request.app[SERVICES].metrics
    metrics.requests.labels(route=route, status=str(response.status), error_code=error_code).inc()
    metrics.request_seconds.labels(route=route).observe(seconds)
    log.info("request", extra={"fields": {
        "method": request.method, "route": route, "status": response.status, "errorCode": error_code or None,
        "ms": round(seconds * 1000, 1), "remote": request.remote}})
    logs.transaction_id.reset(token)
    return response
