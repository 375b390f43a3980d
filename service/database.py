"""SQLite files in the data directory, opened the same way by every store.

A short-lived connection per call keeps the stores safe to use from any thread (the event loop, inference
workers, the command line) and from several processes at once; SQLite's own locking orders the writers.
One more connection stays open, unused, for the store's life: when the last connection to a WAL database
closes, SQLite checkpoints the log into the file and deletes it, with its fsyncs, so without it every call
paid that (a synchronous compare's result record took 18 ms of wall time and 1.5 ms of CPU instead of
0.3 and 0.2; docs/PERFORMANCE.md). The log is checkpointed as it grows instead (SQLite's default).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 10.0


class Database:
    """One SQLite file in WAL mode, so that readers never wait for the writer and a crash never tears a write.

    Durable writes use `synchronous=FULL`: in WAL mode `NORMAL` survives a killed process but may lose the
    last commits on power loss, and an accepted job must outlive a power cut once its 202 is sent. Writes
    whose loss is harmless may ask for `NORMAL` and skip the fsync.
    """

    def __init__(self, path: Path, schema: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Owner-only before SQLite sees it; SQLite gives the -wal and -shm files the same mode.
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        self.path = path
        conn = self._connect(durable=True)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(schema)
        finally:
            conn.close()
        self._keeper = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        self._keeper.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the log, as a reader

    def _connect(self, durable: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        return conn

    @contextmanager
    def write(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction holding the write lock from its start, so a read-then-write cannot race."""
        conn = self._connect(durable)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect(durable=True)
        try:
            yield conn
        finally:
            conn.close()

    def journal_mode(self) -> str:
        with self.read() as conn:
            return conn.execute("PRAGMA journal_mode").fetchone()[0]
