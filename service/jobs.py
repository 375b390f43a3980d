"""Async jobs: a durable outbox in SQLite, and the task that delivers it as signed callbacks.

Each transaction keeps its workspace, callback URL, state and final body (the API's JSON response body, as
the exact text that is signed and POSTed), never an image, crop or embedding. A job is accepted before its
202 is sent and finished exactly once; finishing queues its delivery in the same transaction, so a crash
leaves either an accepted job (answered with 1002 by `recover()` on the next start) or a finished one
with its delivery queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from engine.errors import InferenceFailed
from service.access import AddressAllowlist, guarded_socket_factory
from service.database import Database
from service.response import error_body
from service.workspaces import WorkspaceStore

log = logging.getLogger(__name__)

RESULT_TTL_S = 24 * 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    transaction_id TEXT PRIMARY KEY,
    workspace_id INTEGER NOT NULL,
    callback_url TEXT,
    state TEXT NOT NULL CHECK (state IN ('accepted', 'finished')),
    body TEXT,
    created_at REAL NOT NULL,
    finished_at REAL,
    CHECK ((state = 'accepted') = (body IS NULL))
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
CREATE TABLE IF NOT EXISTS deliveries (
    transaction_id TEXT PRIMARY KEY REFERENCES jobs(transaction_id),
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    first_attempt_at REAL,
    last_error TEXT,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_attempt_at);
"""


@dataclass(frozen=True)
class Delivery:
    transaction_id: str
    workspace_id: int
    callback_url: str
    body: str  # the exact JSON text that is signed and POSTed
    state: str  # "pending" | "delivered" | "failed"
    attempts: int
    first_attempt_at: float | None
    last_error: str | None


def _dump(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(transaction_id=row["transaction_id"], workspace_id=row["workspace_id"],
                    callback_url=row["callback_url"], body=row["body"], state=row["state"],
                    attempts=row["attempts"], first_attempt_at=row["first_attempt_at"],
                    last_error=row["last_error"])


_DELIVERY_SELECT = ("SELECT d.*, j.workspace_id, j.callback_url, j.body FROM deliveries d"
                    " JOIN jobs j ON j.transaction_id = d.transaction_id")


class JobStore:
    """The jobs and the callback outbox of one data directory (`jobs.sqlite3`). Calls block on SQLite (and
    an fsync for durable writes): from the event loop, run them with `asyncio.to_thread`."""

    def __init__(self, data_dir: Path) -> None:
        self.db = Database(Path(data_dir) / "jobs.sqlite3", _SCHEMA)

    def accept(self, transaction_id: str, workspace_id: int, callback_url: str) -> None:
        """Record an accepted async job; it is on disk when this returns, so the 202 may be sent."""
        try:
            with self.db.write() as conn:
                conn.execute("INSERT INTO jobs (transaction_id, workspace_id, callback_url, state, created_at)"
                             " VALUES (?, ?, ?, 'accepted', ?)",
                             (transaction_id, workspace_id, callback_url, time.time()))
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"transaction {transaction_id} already exists") from exc

    def finish(self, transaction_id: str, body: dict[str, Any]) -> bool:
        """Store an accepted job's final body and queue its delivery, atomically. Only the first finish of
        a transaction counts; a later one (or one for an unknown id) is ignored and returns False."""
        text = _dump(body)
        with self.db.write() as conn:
            return self._finish(conn, transaction_id, text, time.time())

    @staticmethod
    def _finish(conn: sqlite3.Connection, transaction_id: str, text: str, now: float) -> bool:
        row = conn.execute("SELECT callback_url FROM jobs WHERE transaction_id = ? AND state = 'accepted'",
                           (transaction_id,)).fetchone()
        if row is None:
            return False
        conn.execute("UPDATE jobs SET state = 'finished', body = ?, finished_at = ? WHERE transaction_id = ?",
                     (text, now, transaction_id))
        if row["callback_url"]:
            conn.execute("INSERT INTO deliveries (transaction_id, state, next_attempt_at, updated_at)"
                         " VALUES (?, 'pending', ?, ?)", (transaction_id, now, now))
        return True

    def record(self, transaction_id: str, workspace_id: int, body: dict[str, Any]) -> None:
        """Keep a synchronous result for GET. The client already has it, so this write skips the fsync."""
        now = time.time()
        with self.db.write(durable=False) as conn:
            conn.execute("INSERT OR IGNORE INTO jobs (transaction_id, workspace_id, state, body, created_at,"
                         " finished_at) VALUES (?, ?, 'finished', ?, ?, ?)",
                         (transaction_id, workspace_id, _dump(body), now, now))

    def result(self, transaction_id: str, workspace_id: int, now: float | None = None) -> dict[str, Any] | None:
        """The final body, `{"status": "pending"}` before it, or None: unknown, another workspace's, or
        older than 24 hours."""
        cutoff = (time.time() if now is None else now) - RESULT_TTL_S
        with self.db.read() as conn:
            row = conn.execute("SELECT state, body FROM jobs WHERE transaction_id = ? AND workspace_id = ?"
                               " AND created_at >= ?", (transaction_id, workspace_id, cutoff)).fetchone()
        if row is None:
            return None
        return {"status": "pending"} if row["state"] == "accepted" else json.loads(row["body"])

    def recover(self) -> int:
        """Answer every job accepted but never finished (the process died) with a 1002 body and queue its
        callback. Call once on start, before any worker runs; returns how many were recovered."""
        now = time.time()
        with self.db.write() as conn:
            ids = [row[0] for row in conn.execute("SELECT transaction_id FROM jobs WHERE state = 'accepted'")]
            for transaction_id in ids:
                body = error_body(InferenceFailed("interrupted by a restart"), transaction_id)
                self._finish(conn, transaction_id, _dump(body), now)
        return len(ids)

    def purge_expired(self, now: float | None = None) -> int:
        """Forget finished results older than 24 hours, except those whose delivery is still pending."""
        cutoff = (time.time() if now is None else now) - RESULT_TTL_S
        with self.db.write(durable=False) as conn:
            conn.execute("DELETE FROM deliveries WHERE state != 'pending' AND transaction_id IN"
                         " (SELECT transaction_id FROM jobs WHERE created_at < ?)", (cutoff,))
            return conn.execute("DELETE FROM jobs WHERE created_at < ? AND state = 'finished' AND transaction_id"
                                " NOT IN (SELECT transaction_id FROM deliveries)", (cutoff,)).rowcount

    def due(self, now: float | None = None, limit: int = 32) -> list[Delivery]:
        """Pending deliveries whose next attempt is due, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(f"{_DELIVERY_SELECT} WHERE d.state = 'pending' AND d.next_attempt_at <= ?"
                                " ORDER BY d.next_attempt_at LIMIT ?",
                                (time.time() if now is None else now, limit)).fetchall()
        return [_delivery(row) for row in rows]

    def next_due_at(self) -> float | None:
        """When the next pending delivery is due (possibly in the past), None when none is pending."""
        with self.db.read() as conn:
            return conn.execute("SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'").fetchone()[0]

    def delivery(self, transaction_id: str) -> Delivery | None:
        with self.db.read() as conn:
            row = conn.execute(f"{_DELIVERY_SELECT} WHERE d.transaction_id = ?", (transaction_id,)).fetchone()
        return _delivery(row) if row else None

    def mark_delivered(self, transaction_id: str, now: float | None = None) -> None:
        self._after_attempt(transaction_id, "delivered", None, None, now)

    def schedule_retry(self, transaction_id: str, next_attempt_at: float, error: str,
                       now: float | None = None) -> None:
        self._after_attempt(transaction_id, "pending", error, next_attempt_at, now)

    def mark_failed(self, transaction_id: str, error: str, now: float | None = None) -> None:
        """Give up on a delivery; the result stays available to GET."""
        self._after_attempt(transaction_id, "failed", error, None, now)

    def _after_attempt(self, transaction_id: str, state: str, error: str | None, next_attempt_at: float | None,
                       now: float | None) -> None:
        now = time.time() if now is None else now
        with self.db.write() as conn:
            conn.execute("UPDATE deliveries SET state = ?, attempts = attempts + 1, last_error = ?,"
                         " next_attempt_at = coalesce(?, next_attempt_at),"
                         " first_attempt_at = coalesce(first_attempt_at, ?), updated_at = ?"
                         " WHERE transaction_id = ? AND state = 'pending'",
                         (state, error, next_attempt_at, now, now, transaction_id))


class CallbackMetrics(Protocol):
    """What the deliverer reports to an optional metrics object (duck-typed, e.g. Prometheus counters)."""

    def callback_delivered(self, outcome: str) -> None:
        """A delivery ended: outcome "delivered" (a 2xx) or "failed" (gave up after the retry window)."""

    def callback_retry(self) -> None:
        """An attempt failed and another one is scheduled."""


def signature(body: bytes, secret: str) -> str:
    """The `X-FaceCompare-Signature` value: HMAC-SHA256 of the raw body with the workspace's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_delay(attempts: int, base: float, cap: float) -> float:
    """Exponential and capped, with jitter so that retries to one receiver do not arrive in step."""
    ceiling = min(cap, base * 2.0 ** min(attempts - 1, 32))
    return ceiling / 2.0 + random.uniform(0.0, ceiling / 2.0)


class CallbackDeliverer:
    """An asyncio task that POSTs due deliveries, at least once each, retrying with backoff for at least
    `retry_for` seconds from the first attempt. Connections go only to addresses in the callback
    allowlist, checked at connect time, and redirects are never followed. Being the outbox's only
    background task, it also purges expired results every `purge_interval` seconds."""

    def __init__(self, store: JobStore, workspaces: WorkspaceStore, allowlist: AddressAllowlist, *,
                 metrics: CallbackMetrics | None = None, base_delay: float = 1.0, max_delay: float = 60.0,
                 retry_for: float = 600.0, request_timeout: float = 10.0, batch_size: int = 16,
                 poll_interval: float = 30.0, flush_timeout: float = 5.0, purge_interval: float = 3600.0) -> None:
        self._store, self._workspaces, self._allowlist, self._metrics = store, workspaces, allowlist, metrics
        self._base_delay, self._max_delay, self._retry_for = base_delay, max_delay, retry_for
        self._request_timeout, self._batch_size = request_timeout, batch_size
        self._poll_interval, self._flush_timeout = poll_interval, flush_timeout
        self._purge_interval, self._next_purge = purge_interval, 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_event: asyncio.Event | None = None
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake_event = asyncio.Event()
        self._stopping = False
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(socket_factory=guarded_socket_factory(self._allowlist),
                                           limit=self._batch_size),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=self._request_timeout))
        self._task = asyncio.create_task(self._run(self._wake_event), name="callback-deliverer")

    def wake(self) -> None:
        """Look for due deliveries now (after a `finish`); safe to call from any thread."""
        loop, event = self._loop, self._wake_event
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    async def stop(self) -> None:
        """End the task, then make one last attempt at what is due, bounded by `flush_timeout`; what is
        left stays pending in SQLite for the next start."""
        if self._task is None or self._session is None:
            return
        self._stopping = True
        self.wake()
        await self._task
        try:
            await asyncio.wait_for(self._deliver_due(limit=1000), self._flush_timeout)
        except asyncio.TimeoutError:
            log.warning("callback flush timed out; the rest stays queued")
        await self._session.close()
        self._task = self._session = None

    async def _run(self, wake_event: asyncio.Event) -> None:
        while not self._stopping:
            wake_event.clear()
            try:
                await self._purge_when_due()
                await self._deliver_due(self._batch_size)
                delay = await self._idle_delay()
            except Exception:  # a busy or broken database must not end deliveries for good
                log.exception("callback delivery round failed")
                delay = self._poll_interval
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake_event.wait(), delay)

    async def _purge_when_due(self) -> None:
        if time.monotonic() >= self._next_purge:
            await asyncio.to_thread(self._store.purge_expired)
            self._next_purge = time.monotonic() + self._purge_interval

    async def _idle_delay(self) -> float:
        next_due = await asyncio.to_thread(self._store.next_due_at)
        if next_due is None:
            return self._poll_interval
        return min(max(next_due - time.time(), 0.0), self._poll_interval)

    async def _deliver_due(self, limit: int) -> None:
        due = await asyncio.to_thread(self._store.due, limit=limit)
        outcomes = await asyncio.gather(*(self._attempt(delivery) for delivery in due), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                log.error("callback bookkeeping failed", exc_info=outcome)

    async def _attempt(self, delivery: Delivery) -> None:
        workspace = await asyncio.to_thread(self._workspaces.by_id, delivery.workspace_id)
        if workspace is None:
            error: str | None = "its workspace no longer exists"
        else:
            error = await self._post(delivery, workspace.callback_secret)
        now = time.time()
        first = delivery.first_attempt_at or now
        tid = {"fields": {"transactionId": delivery.transaction_id}}
        if error is None:
            await asyncio.to_thread(self._store.mark_delivered, delivery.transaction_id, now)
            log.info("callback delivered", extra=tid)
            self._report("callback_delivered", "delivered")
        elif workspace is None or now - first >= self._retry_for:
            await asyncio.to_thread(self._store.mark_failed, delivery.transaction_id, error, now)
            log.warning("callback failed for good: %s", error, extra=tid)
            self._report("callback_delivered", "failed")
        else:
            retry_at = now + backoff_delay(delivery.attempts + 1, self._base_delay, self._max_delay)
            await asyncio.to_thread(self._store.schedule_retry, delivery.transaction_id, retry_at, error, now)
            log.info("callback attempt failed, will retry: %s", error, extra=tid)
            self._report("callback_retry")

    async def _post(self, delivery: Delivery, secret: str) -> str | None:
        """One POST; None on a 2xx, else why it failed."""
        if self._session is None:
            return "the deliverer is stopped"
        body = delivery.body.encode()
        headers = {"Content-Type": "application/json",
                   "X-FaceCompare-Transaction-Id": delivery.transaction_id,
                   "X-FaceCompare-Signature": signature(body, secret)}
        try:
            async with self._session.post(delivery.callback_url, data=body, headers=headers,
                                          allow_redirects=False) as response:
                return None if 200 <= response.status < 300 else f"HTTP {response.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"[:500]

    def _report(self, name: str, *args: str) -> None:
        if self._metrics is not None:
            getattr(self._metrics, name)(*args)
