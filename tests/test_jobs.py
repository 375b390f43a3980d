"""The job store on real SQLite: durable acceptance, exactly one final result, recovery after a crash."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from service.jobs import RESULT_TTL_S, JobStore

REPO = Path(__file__).resolve().parents[1]
HOOK = "http://127.0.0.1:9/hook"


def _body(tid: str, similarity: float = 91.5) -> dict:
    return {"statusCode": 200, "apiType": "compare_face", "transactionId": tid,
            "result": {"faceMatch": {"similarity": similarity}}}


def test_wal_and_synchronous(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    assert store.db.journal_mode() == "wal"
    with store.db.write() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_the_log_outlives_each_call(tmp_path: Path) -> None:
    """The store keeps a connection open, so closing a call's connection does not checkpoint and delete the
    log (and fsync) on every result recorded."""
    jobs = JobStore(tmp_path)
    jobs.record("t-1", 1, {"statusCode": 200})
    assert (tmp_path / "jobs.sqlite3-wal").exists()
    assert jobs.result("t-1", 1) == {"statusCode": 200}


def test_accept_finish_result(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.accept("t1", 1, HOOK)
    assert store.result("t1", 1) == {"status": "pending"}
    assert store.result("t1", 2) is None and store.result("nope", 1) is None
    assert store.due() == []
    assert store.finish("t1", _body("t1"))
    assert store.result("t1", 1) == _body("t1")
    assert store.result("t1", 2) is None
    [delivery] = store.due()
    assert (delivery.transaction_id, delivery.workspace_id, delivery.callback_url) == ("t1", 1, HOOK)
    assert json.loads(delivery.body) == _body("t1") and delivery.state == "pending" and delivery.attempts == 0
    with pytest.raises(ValueError):
        store.accept("t1", 1, HOOK)


def test_second_finish_is_ignored(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.accept("t1", 1, HOOK)
    assert store.finish("t1", _body("t1", 10.0))
    assert not store.finish("t1", _body("t1", 99.0))
    assert not store.finish("unknown", _body("unknown"))
    assert store.result("t1", 1)["result"]["faceMatch"]["similarity"] == 10.0
    assert [d.transaction_id for d in store.due()] == ["t1"]


def test_concurrent_finishes_make_one_result(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.accept("t1", 1, HOOK)
    wins: list[bool] = []
    threads = [threading.Thread(target=lambda i=i: wins.append(store.finish("t1", _body("t1", i)))) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(wins) == [False] * 7 + [True]
    assert len(store.due()) == 1


def test_sync_results_are_kept_without_delivery(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.record("s1", 3, _body("s1"))
    store.record("s1", 3, _body("s1", 1.0))
    assert store.result("s1", 3) == _body("s1")
    assert store.result("s1", 4) is None
    assert store.due() == [] and store.delivery("s1") is None


def test_expiry_and_purge(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.record("old", 1, _body("old"))
    store.accept("queued", 1, HOOK)
    store.finish("queued", _body("queued"))
    store.accept("sent", 1, HOOK)
    store.finish("sent", _body("sent"))
    store.mark_delivered("sent")
    later = time.time() + RESULT_TTL_S + 60
    assert store.result("old", 1, now=later) is None
    assert store.result("old", 1) == _body("old")
    assert store.purge_expired(now=time.time()) == 0
    assert store.purge_expired(now=later) == 2
    assert store.result("old", 1) is None and store.result("sent", 1) is None and store.delivery("sent") is None
    assert store.result("queued", 1) == _body("queued")  # its delivery is still pending


def test_delivery_bookkeeping(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    for tid in ("a", "b", "c"):
        store.accept(tid, 1, HOOK)
        store.finish(tid, _body(tid))
    now = time.time()
    store.schedule_retry("a", now + 100, "HTTP 500", now=now)
    store.mark_failed("b", "gave up", now=now)
    assert [d.transaction_id for d in store.due()] == ["c"]
    assert [d.transaction_id for d in store.due(now=now + 101)] == ["c", "a"]  # by due time
    assert abs(store.next_due_at() - now) < 5
    a = store.delivery("a")
    assert (a.state, a.attempts, a.last_error, a.first_attempt_at) == ("pending", 1, "HTTP 500", now)
    store.schedule_retry("a", now + 200, "timeout", now=now + 101)
    assert (store.delivery("a").attempts, store.delivery("a").first_attempt_at) == (2, now)
    store.mark_delivered("c")
    store.mark_delivered("b")  # a failed delivery stays failed
    assert [store.delivery(t).state for t in "abc"] == ["pending", "failed", "delivered"]
    assert store.next_due_at() == pytest.approx(now + 200)


def test_recover_answers_unfinished_jobs_once(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.accept("lost1", 1, HOOK)
    store.accept("lost2", 2, HOOK)
    store.accept("done", 1, HOOK)
    store.finish("done", _body("done"))
    assert JobStore(tmp_path).recover() == 2
    for tid, workspace in (("lost1", 1), ("lost2", 2)):
        body = store.result(tid, workspace)
        assert body == {"statusCode": 500, "apiType": "compare_face", "transactionId": tid, "errorCode": 1002,
                        "message": body["message"]}
        assert body["message"].startswith("Failed to compare face.")
    assert sorted(d.transaction_id for d in store.due()) == ["done", "lost1", "lost2"]
    assert store.recover() == 0
    assert not store.finish("lost1", _body("lost1"))
    assert len(store.due()) == 3


_CHILD = """
import sys, time
from pathlib import Path
from service.jobs import JobStore
store = JobStore(Path(sys.argv[1]))
if sys.argv[2] == "accept":
    store.accept("crashed", 1, "http://127.0.0.1:9/hook")
    print("accepted", flush=True)
    time.sleep(60)
else:
    i = 0
    while True:
        store.accept(f"t{i}", 1, "http://127.0.0.1:9/hook")
        store.finish(f"t{i}", {"statusCode": 200, "transactionId": f"t{i}"})
        store.accept(f"u{i}", 1, "http://127.0.0.1:9/hook")
        i += 1
        if i == 20:
            print("busy", flush=True)
"""


def _start_and_kill(data_dir: Path, mode: str, ready: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(data_dir), mode], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == ready
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def _assert_consistent(data_dir: Path) -> None:
    conn = sqlite3.connect(data_dir / "jobs.sqlite3")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finished_without = conn.execute("SELECT count(*) FROM jobs j WHERE state = 'finished' AND NOT EXISTS"
                                        " (SELECT 1 FROM deliveries d WHERE d.transaction_id = j.transaction_id)")
        assert finished_without.fetchone()[0] == 0
        accepted_with = conn.execute("SELECT count(*) FROM jobs j JOIN deliveries d USING (transaction_id)"
                                     " WHERE j.state = 'accepted'")
        assert accepted_with.fetchone()[0] == 0
    finally:
        conn.close()


def test_killed_after_accept_recovers(tmp_path: Path) -> None:
    _start_and_kill(tmp_path, "accept", "accepted")
    _assert_consistent(tmp_path)
    store = JobStore(tmp_path)
    assert store.result("crashed", 1) == {"status": "pending"}
    assert store.recover() == 1
    assert store.result("crashed", 1)["errorCode"] == 1002
    assert [d.transaction_id for d in store.due()] == ["crashed"]
    assert store.recover() == 0


def test_killed_mid_stream_leaves_a_consistent_outbox(tmp_path: Path) -> None:
    _start_and_kill(tmp_path, "stream", "busy")
    _assert_consistent(tmp_path)
    store = JobStore(tmp_path)
    with store.db.read() as conn:
        accepted = conn.execute("SELECT count(*) FROM jobs WHERE state = 'accepted'").fetchone()[0]
        total = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
    assert total >= 40
    assert store.recover() == accepted
    _assert_consistent(tmp_path)
    with store.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM jobs WHERE state = 'accepted'").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM deliveries").fetchone()[0] == total


def test_each_thread_keeps_its_connection_and_sees_every_commit(tmp_path: Path) -> None:
    """Connections are kept per thread, not opened per call; a result recorded by one thread (a compare
    worker) is found at once by another thread's kept connection (a GET right after the answer), including
    one that read before the record."""
    jobs = JobStore(tmp_path)

    def kept() -> sqlite3.Connection:
        with jobs.db.read() as conn:
            return conn

    with ThreadPoolExecutor(1, thread_name_prefix="reader") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="writer") as writer:
        assert reader.submit(jobs.result, "t-0", 1).result() is None
        first = reader.submit(kept).result()
        for index in range(20):
            writer.submit(jobs.record, f"t-{index}", 1, _body(f"t-{index}")).result()
            assert reader.submit(jobs.result, f"t-{index}", 1).result() == _body(f"t-{index}")
        assert reader.submit(kept).result() is first
        assert writer.submit(kept).result() is not first


def test_a_failed_write_leaves_the_kept_connection_usable(tmp_path: Path) -> None:
    """A write that raises is rolled back, so the thread's next write starts its own transaction."""
    jobs = JobStore(tmp_path)
    jobs.accept("t1", 1, HOOK)
    with pytest.raises(ValueError):
        jobs.accept("t1", 1, HOOK)
    with pytest.raises(RuntimeError), jobs.db.write() as conn:
        conn.execute("INSERT INTO jobs (transaction_id, workspace_id, state, created_at)"
                     " VALUES ('t2', 1, 'accepted', ?)", (time.time(),))
        raise RuntimeError("abandoned")
    jobs.accept("t3", 1, HOOK)
    assert jobs.result("t2", 1) is None
    assert jobs.result("t3", 1) == {"status": "pending"}
