"""`POST /modules/compare` (and `/v1/compare`), `GET /modules/compare/{transactionId}`: admission, then work."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import HttpVersion11, web

from engine.errors import ApiError, CallbackRequired, Forbidden, NotReady, Unauthorized
from engine.liveness import LivenessCheck
from engine.pipeline import CompareResult
from service.access import AddressAllowlist
from service.deps import SERVICES, Services
from service.middleware import TRANSACTION_ID, NotFound
from service.parsing import CompareRequest, parse_compare
from service.response import accepted_body, compare_body, error_body, stored_body
from service.workspaces import Workspace

log = logging.getLogger("facecompare.compare")

# An accepted job that meets a full queue waits and tries again rather than failing at once.
JOB_ATTEMPTS = 5


def admit(request: web.Request, services: Services) -> Workspace:
    """Client address, then key, then workspace: 403 for an address or a disabled workspace, 401 for a key.

    The key is looked up on every request, so a rotation or a disabling from the command line applies to
    the very next one. The lookup runs on the event loop itself: a read of a small WAL-mode file on this
    thread's kept connection, which no writer makes wait, costs about 0.02 ms, where handing it to a thread
    and back cost 0.6 ms of a compare's wall time (docs/PERFORMANCE.md, sixth round).
    """
    remote = request.remote or ""
    if not services.client_allowlist.allows(remote):
        raise Forbidden("client address is not allowed")
    key = request.headers.get("x-api-key", "").strip()
    if not key:
        raise Unauthorized("x-api-key is missing")
    workspace = services.workspaces.authenticate(key)
    if workspace is None:
        raise Unauthorized("unknown x-api-key")
    if not workspace.enabled:
        raise Forbidden("workspace is disabled")
    if workspace.allowlist and not AddressAllowlist(workspace.allowlist).allows(remote):
        raise Forbidden("client address is not allowed for this workspace")
    return workspace


def liveness_check(workspace: Workspace, parsed: CompareRequest) -> LivenessCheck | None:
    """Checked when the request asks or the workspace requires it; only the workspace's setting refuses."""
    if not (parsed.liveness_check or workspace.require_liveness):
        return None
    return LivenessCheck(threshold=workspace.liveness_threshold, required=workspace.require_liveness)


async def compare(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    transaction_id = request[TRANSACTION_ID]
    workspace = admit(request, services)
    parsed = await parse_compare(request, services.config.max_body_bytes, services.config.body_timeout)
    threshold = workspace.threshold if parsed.threshold is None else parsed.threshold
    liveness = liveness_check(workspace, parsed)
    if parsed.callback_url is None:
        if workspace.mode == "async":
            raise CallbackRequired()
        return web.json_response(await _compare_now(services, transaction_id, workspace.id, parsed, threshold,
                                                    liveness))
    await services.check_callback(parsed.callback_url)
    services.runtime.check_ready()
    await asyncio.to_thread(services.jobs.accept, transaction_id, workspace.id, parsed.callback_url)
    task = asyncio.create_task(_run_job(services, transaction_id, parsed, threshold, liveness))
    services.background.add(task)
    task.add_done_callback(services.background.discard)
    return web.json_response(accepted_body(transaction_id), status=202)


async def _compare_now(services: Services, transaction_id: str, workspace_id: int, parsed: CompareRequest,
                       threshold: float, liveness: LivenessCheck | None) -> dict[str, Any]:
    """A synchronous compare; its result (or its error, unless a retry is expected) is kept for GET, the
    result recorded by the thread that computed it, before the answer is sent."""
    def record(result: CompareResult) -> dict[str, Any]:
        body = compare_body(result, transaction_id)
        services.jobs.record(transaction_id, workspace_id, stored_body(body))
        return body

    try:
        return await services.runtime.compare(parsed.origin, parsed.target, threshold, liveness, record)
    except ApiError as error:
        if not isinstance(error, NotReady):
            await asyncio.to_thread(services.jobs.record, transaction_id, workspace_id,
                                    error_body(error, transaction_id))
        raise


async def _compare_patiently(services: Services, parsed: CompareRequest, threshold: float,
                             liveness: LivenessCheck | None) -> CompareResult:
    for _ in range(JOB_ATTEMPTS - 1):
        try:
            return await services.runtime.compare(parsed.origin, parsed.target, threshold, liveness)
        except NotReady as busy:
            await asyncio.sleep(busy.retry_after)
    return await services.runtime.compare(parsed.origin, parsed.target, threshold, liveness)


async def _run_job(services: Services, transaction_id: str, parsed: CompareRequest, threshold: float,
                   liveness: LivenessCheck | None) -> None:
    """An accepted job: compare, store the final body (result or error) and wake the deliverer."""
    try:
        body = compare_body(await _compare_patiently(services, parsed, threshold, liveness), transaction_id)
    except ApiError as error:
        body = error_body(error, transaction_id)
    except Exception:
        log.exception("job failed")
        body = error_body(ApiError(), transaction_id)
    try:
        finished = await asyncio.to_thread(services.jobs.finish, transaction_id, stored_body(body))
    except Exception:
        log.exception("job result not stored; it is answered with 1002 after a restart")
        return
    if not finished:
        log.warning("job already had its final result; this one is dropped")
        return
    services.deliverer.wake()
    log.info("job finished", extra={"fields": {"statusCode": body["statusCode"]}})


async def result(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    workspace = admit(request, services)
    body = await asyncio.to_thread(services.jobs.result, request.match_info["transaction_id"], workspace.id)
    if body is None:
        raise NotFound("unknown transactionId")
    return web.json_response(body)


async def continue_within_cap(request: web.Request) -> None:
    """`Expect: 100-continue`: invite the body only when its declared length is within the cap.

    Otherwise no 100 is sent and the handler answers 413 at once, so the client never sends the body.
    Other expectations are ignored rather than answered outside the error middleware.
    """
    expected = request.headers.get("Expect", "").lower() == "100-continue"
    length = request.content_length
    if expected and request.version == HttpVersion11 and (
            length is None or length <= request.app[SERVICES].config.max_body_bytes):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0


def add_routes(app: web.Application) -> None:
    for path in ("/modules/compare", "/v1/compare"):
        app.router.add_post(path, compare, expect_handler=continue_within_cap)
    app.router.add_get("/modules/compare/{transaction_id}", result)
