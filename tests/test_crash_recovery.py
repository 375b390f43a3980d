"""SIGKILL at random points of an async load, several times over, then one clean run: no transaction is lost.

Every transaction answered 202 gets exactly one final result (the compare's, or 1002 "interrupted by a
restart" when the kill came mid-inference), delivered at least once, the same bytes on every attempt and
the same body GET returns; afterwards both SQLite stores are in WAL mode, pass `integrity_check`, and
the outbox holds no job without its final body nor a finished one without its delivery.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.loop_thread import LoopThread
from tests.receiver import Receiver
from tests.service_process import ServiceProcess
from tests.test_service_e2e import FAST_RETRIES, PAIR, assert_one_final_result, for_transaction, wait_delivered

SEED = 20240606
CYCLES = 3
SENDERS = 3
# Each cycle's load runs this long (drawn from the seeded RNG) before the SIGKILL.
KILL_AFTER_S = (0.2, 2.0)


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    with LoopThread() as running:
        yield running


def send_until_killed(server: ServiceProcess, key: str, callback_url: str, accepted: list[str]) -> None:
    """Async compares one after another until the server stops answering; keeps every 202's transaction id."""
    session = requests.Session()
    while True:
        try:
            response = session.post(server.url + "/modules/compare", json={**PAIR, "callbackUrl": callback_url},
                                    headers={"x-api-key": key}, timeout=30)
        except requests.ConnectionError:
            return
        assert response.status_code == 202, response.text
        accepted.append(response.json()["transactionId"])


def load_then_kill(server: ServiceProcess, key: str, callback_url: str, after: float) -> list[str]:
    accepted: list[str] = []
    senders = [threading.Thread(target=send_until_killed, args=(server, key, callback_url, accepted))
               for _ in range(SENDERS)]
    for sender in senders:
        sender.start()
    time.sleep(after)
    server.kill()
    for sender in senders:
        sender.join(30)
    return accepted


def check_store(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    return conn


def test_sigkill_during_async_load_loses_no_transaction(tmp_path: Path, loop: LoopThread) -> None:
    rng = random.Random(SEED)
    data_dir = tmp_path / "data"
    receiver = loop.run(Receiver().__aenter__())
    accepted: list[str] = []
    key = ""
    try:
        for _ in range(CYCLES):
            server = ServiceProcess(data_dir, **FAST_RETRIES).start()
            key = key or server.printed_key or ""
            server.wait_ready()
            accepted += load_then_kill(server, key, receiver.url, rng.uniform(*KILL_AFTER_S))
        assert len(accepted) >= CYCLES, "the load was too short to test anything"
        with ServiceProcess(data_dir, **FAST_RETRIES) as last:
            outcomes = {}
            for transaction_id in accepted:
                attempts = wait_delivered(loop, receiver, transaction_id, timeout=60)
                body = assert_one_final_result(attempts, last, key, transaction_id)
                outcomes[transaction_id] = (body["statusCode"], body.get("errorCode"))
            last.terminate()
            assert last.wait(60) == 0
    finally:
        loop.run(receiver.__aexit__())
    assert set(outcomes.values()) <= {(200, None), (500, 1002)}, outcomes
    assert (500, 1002) in outcomes.values(), "no kill came mid-inference"
    interrupted = [json.loads(r.body) for r in receiver.requests if json.loads(r.body)["statusCode"] == 500]
    assert all(body["message"].endswith("interrupted by a restart") for body in interrupted)
    check_store(data_dir / "workspaces.sqlite3").close()
    jobs = check_store(data_dir / "jobs.sqlite3")
    try:
        assert jobs.execute("SELECT count(*) FROM jobs WHERE state != 'finished'").fetchone()[0] == 0
        assert jobs.execute("SELECT count(*) FROM jobs j LEFT JOIN deliveries d USING (transaction_id)"
                            " WHERE j.callback_url IS NOT NULL AND d.state IS NOT 'delivered'").fetchone()[0] == 0
        stored = {row[0] for row in jobs.execute("SELECT transaction_id FROM jobs")}
    finally:
        jobs.close()
    # Jobs written just before a kill whose 202 never left are answered too; each delivered exactly one body.
    assert set(accepted) <= stored
    for transaction_id in stored:
        assert len({r.body for r in for_transaction(receiver, transaction_id)}) == 1
