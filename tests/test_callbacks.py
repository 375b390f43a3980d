"""Callback delivery against real receivers on loopback: signed, retried, durable, never redirected."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from service.access import AddressAllowlist
from service.jobs import RESULT_TTL_S, CallbackDeliverer, JobStore, backoff_delay
from service.workspaces import Workspace, WorkspaceStore
from tests.receiver import Receiver

LOOPBACK = AddressAllowlist(["127.0.0.1/32"])


class Metrics:
    """The deliverer's duck-typed metrics interface, counting."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def callback_delivered(self, outcome: str) -> None:
        self.counts[outcome] += 1

    def callback_retry(self) -> None:
        self.counts["retry"] += 1


def _setup(data_dir: Path) -> tuple[JobStore, WorkspaceStore, Workspace]:
    workspaces = WorkspaceStore(data_dir)
    return JobStore(data_dir), workspaces, workspaces.add("gate", mode="async")[0]


def _finish(store: JobStore, workspace: Workspace, tid: str, url: str) -> dict:
    body = {"statusCode": 200, "apiType": "compare_face", "transactionId": tid, "result": {"note": "é"}}
    store.accept(tid, workspace.id, url)
    store.finish(tid, body)
    return body


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_signed_callback(tmp_path: Path) -> None:
    store, workspaces, workspace = _setup(tmp_path)
    metrics = Metrics()

    async def scenario() -> None:
        async with Receiver() as receiver:
            deliverer = CallbackDeliverer(store, workspaces, LOOPBACK, metrics=metrics)
            await deliverer.start()
            body = _finish(store, workspace, "t1", receiver.url)
            deliverer.wake()
            await receiver.wait_for(1)
            await _until(lambda: store.delivery("t1").state == "delivered")
            await deliverer.stop()
        [received] = receiver.requests
        assert json.loads(received.body) == body
        assert received.headers["X-FaceCompare-Transaction-Id"] == "t1"
        assert received.headers["Content-Type"].startswith("application/json")
        expected = hmac.new(workspace.callback_secret.encode(), received.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(received.headers["X-FaceCompare-Signature"], f"sha256={expected}")

    asyncio.run(scenario())
    assert metrics.counts == {"delivered": 1}
    assert store.result("t1", workspace.id)["transactionId"] == "t1"


def test_third_try_lands_after_two_500s(tmp_path: Path) -> None:
    store, workspaces, workspace = _setup(tmp_path)
    metrics = Metrics()

    async def scenario() -> None:
        async with Receiver(statuses=[500, 500]) as receiver:
            deliverer = CallbackDeliverer(store, workspaces, LOOPBACK, metrics=metrics, base_delay=0.05)
            _finish(store, workspace, "t1", receiver.url)
            await deliverer.start()
            await receiver.wait_for(3)
            await _until(lambda: store.delivery("t1").state == "delivered")
            await deliverer.stop()
            assert len({r.body for r in receiver.requests}) == 1  # the same signed bytes every time
            assert len({r.headers["X-FaceCompare-Signature"] for r in receiver.requests}) == 1

    asyncio.run(scenario())
    assert metrics.counts == {"retry": 2, "delivered": 1}
    assert store.delivery("t1").attempts == 3


def test_gives_up_after_the_retry_window_and_keeps_the_result(tmp_path: Path) -> None:
    store, workspaces, workspace = _setup(tmp_path)
    metrics = Metrics()

    async def scenario() -> None:
        async with Receiver(status=503) as receiver:
            deliverer = CallbackDeliverer(store, workspaces, LOOPBACK, metrics=metrics, base_delay=0.02,
                                          max_delay=0.05, retry_for=0.3)
            _finish(store, workspace, "t1", receiver.url)
            await deliverer.start()
            await _until(lambda: store.delivery("t1").state == "failed")
            await deliverer.stop()
            assert len(receiver.requests) >= 3

    asyncio.run(scenario())
    assert metrics.counts["failed"] == 1 and metrics.counts["retry"] >= 2
    assert store.delivery("t1").last_error == "HTTP 503"
    assert store.result("t1", workspace.id)["statusCode"] == 200


def test_pending_delivery_survives_a_restart(tmp_path: Path) -> None:
    store, workspaces, workspace = _setup(tmp_path)

    async def scenario() -> None:
        async with Receiver(status=500) as receiver:
            first = CallbackDeliverer(store, workspaces, LOOPBACK, base_delay=0.3)
            await first.start()
            _finish(store, workspace, "t1", receiver.url)
            first.wake()
            await receiver.wait_for(1)
            await first.stop()
            assert store.delivery("t1").state == "pending"
            tried = len(receiver.requests)

            receiver.status = 200
            again = JobStore(tmp_path)
            second = CallbackDeliverer(again, WorkspaceStore(tmp_path), LOOPBACK, base_delay=0.3)
            await second.start()
            await _until(lambda: again.delivery("t1").state == "delivered")
            await second.stop()
            assert len(receiver.requests) == tried + 1

    asyncio.run(scenario())


def test_recovered_job_is_called_back_with_1002(tmp_path: Path) -> None:
    store, workspaces, workspace = _setup(tmp_path)

    async def scenario() -> None:
        async with Receiver() as receiver:
            store.accept("lost", workspace.id, receiver.url)  # the process died before finishing it
            again = JobStore(tmp_path)
            assert again.recover() == 1
            deliverer = CallbackDeliverer(again, workspaces, LOOPBACK)
            await deliverer.start()
            await receiver.wait_for(1)
            await deliverer.stop()
            [received] = receiver.requests
            body = json.loads(received.body)
            assert (body["errorCode"], body["statusCode"], body["transactionId"]) == (1002, 500, "lost")

    asyncio.run(scenario())


def test_stop_flushes_what_is_due(tmp_path: Path) -> None:
    store, workspaces, workspace = _setup(tmp_path)

    async def scenario() -> None:
        async with Receiver() as receiver:
            deliverer = CallbackDeliverer(store, workspaces, LOOPBACK, poll_interval=600)
            await deliverer.start()
            await asyncio.sleep(0.1)  # the first round found nothing; the task now sleeps
            _finish(store, workspace, "t1", receiver.url)  # and nobody wakes it
            await deliverer.stop()
            assert len(receiver.requests) == 1

    asyncio.run(scenario())
    assert store.delivery("t1").state == "delivered"


def test_redirects_are_not_followed(tmp_path: Path) -> None:
    store, workspaces, workspace = _setup(tmp_path)
    both = AddressAllowlist(["127.0.0.1/32", "127.0.0.3/32"])

    async def scenario() -> None:
        async with Receiver(host="127.0.0.3") as elsewhere, Receiver(redirect_to="") as redirector:
            redirector.redirect_to = elsewhere.url
            for name, allowlist in (("narrow", LOOPBACK), ("wide", both)):
                deliverer = CallbackDeliverer(store, workspaces, allowlist, base_delay=60)
                _finish(store, workspace, name, redirector.url)
                await deliverer.start()
                await _until(lambda name=name: store.delivery(name).attempts == 1)
                await deliverer.stop()
                assert store.delivery(name).state == "pending"
                assert store.delivery(name).last_error == "HTTP 307"
            assert len(redirector.requests) == 2 and elsewhere.requests == []

    asyncio.run(scenario())


def test_deliveries_to_disallowed_addresses_never_connect(tmp_path: Path) -> None:
    """A URL that passed the check at acceptance but points elsewhere now (a rebinding name, a changed list)."""
    store, workspaces, workspace = _setup(tmp_path)
    metrics = Metrics()

    async def scenario() -> None:
        async with Receiver(host="127.0.0.3") as far, Receiver() as near:
            _finish(store, workspace, "literal", far.url)
            _finish(store, workspace, "name", f"http://localhost:{near.port}/hook")
            deliverer = CallbackDeliverer(store, workspaces, AddressAllowlist(["127.0.0.2/32"]), metrics=metrics,
                                          base_delay=60)
            await deliverer.start()
            await _until(lambda: metrics.counts["retry"] == 2)
            await deliverer.stop()
            assert far.requests == [] and near.requests == []
        for tid in ("literal", "name"):
            assert "allowlist" in store.delivery(tid).last_error

    asyncio.run(scenario())


def test_backoff_grows_is_capped_and_jittered() -> None:
    for attempts, ceiling in ((1, 1.0), (2, 2.0), (4, 8.0), (7, 60.0), (500, 60.0)):
        delays = {backoff_delay(attempts, 1.0, 60.0) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(delays) > 1


def test_expired_results_are_purged_in_the_background(tmp_path: Path) -> None:
    store, workspaces, workspace = _setup(tmp_path)
    store.record("old", workspace.id, {"statusCode": 200})
    store.record("new", workspace.id, {"statusCode": 200})
    with store.db.write() as conn:
        conn.execute("UPDATE jobs SET created_at = created_at - ? WHERE transaction_id = 'old'", (RESULT_TTL_S + 1,))

    async def scenario() -> None:
        deliverer = CallbackDeliverer(store, workspaces, LOOPBACK)
        await deliverer.start()
        await _until(lambda: _count(store) == 1)
        await deliverer.stop()

    asyncio.run(scenario())
    assert store.result("new", workspace.id) == {"statusCode": 200}


def _count(store: JobStore) -> int:
    with store.db.read() as conn:
        return conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
