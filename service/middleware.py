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
# After an error answer, what is left of the body is read and dropped (nginx's lingering close), so a client
# that sends it all before reading (urllib, requests) reads the answer rather than a reset connection.
# Bounded: at most this many body caps in bytes, this many seconds in all, this many waiting for the next
# bytes. A body declared longer than the bytes bound is not read: its connection just closes.
DRAIN_BODY_CAPS = 4
DRAIN_TIMEOUT_S = 10.0
DRAIN_IDLE_S = 2.0
# Answers after which the connection closes, drained or not: the body is over the cap, or too slow to arrive.
CLOSING_STATUSES = (BodyTooLarge.http_status, BodyTimedOut.http_status)


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


async def _answer(request: web.Request, response: web.StreamResponse) -> bool:
    """Send the answer now, so that the counting and logging after it are off the client's wait (aiohttp
    finds it sent and only finishes the connection's turn). False when the client has gone: aiohttp finds
    the same when it tries to send the answer itself."""
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        return False
    return True


async def _answer_then_drain(request: web.Request, response: web.StreamResponse, body_cap: int) -> None:
    """Send the error answer now, then read and drop the rest of the body within the bounds above.

    A 408's body is not drained (it was too slow already). If the bounds end the drain first, aiohttp
    closes the connection with the rest unread, as it would have without the drain.
    """
    if not await _answer(request, response):
        return
    limit = DRAIN_BODY_CAPS * body_cap
    if (response.status == BodyTimedOut.http_status or not request.body_exists or request.content.is_eof()
            or (request.content_length or 0) > limit):
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_TIMEOUT_S
    read = 0
    try:
        while read <= limit and (left := deadline - loop.time()) > 0:
            chunk = await asyncio.wait_for(request.content.readany(), min(DRAIN_IDLE_S, left))
            if not chunk:
                return
            read += len(chunk)
    except (asyncio.TimeoutError, OSError, HttpProcessingError, web.HTTPException):
        return


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
    if error_code:
        if response.status in CLOSING_STATUSES:
            response.force_close()
        await _answer_then_drain(request, response, request.app[SERVICES].config.max_body_bytes)
    else:
        await _answer(request, response)
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
