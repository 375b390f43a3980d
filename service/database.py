"""SQLite files in the data directory, opened the same way by every store.

Each thread keeps its own connections (one for durable writes and reads, one for writes that may skip the
fsync), opened on its first call and reused: a connection belongs to one thread, so the stores stay safe to
use from any thread (the event loop's helpers, inference workers, the command line), and SQLite's own
locking orders the writers of several processes. Opening a connection per call cost more than the query it
ran (0.2 ms of CPU and about 30 system calls for a request's key lookup and its result record;
docs/PERFORMANCE.md). A kept connection sees every commit made before its next statement, as long as no
cursor of an earlier call is left half-read (its read snapshot would stay open): every store reads its
cursors to the end, or drops them, inside the call.

One more connection stays open, unused, for the store's life: when the last connection to a WAL database
closes, SQLite checkpoints the log into the file and deletes it, with its fsyncs, so without it a process
whose threads come and go would pay that again and again. The log is checkpointed as it grows instead
(SQLite's default).
"""

from __future__ import annotations

import os
import sqlite3
import threading
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
        self._local = threading.local()

    def _connect(self, durable: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        return conn

    def _connection(self, durable: bool) -> sqlite3.Connection:
        """This thread's connection of that kind, opened on its first use."""
        kind = "durable" if durable else "relaxed"
        conn = getattr(self._local, kind, None)
        if conn is None:
            conn = self._connect(durable)
            setattr(self._local, kind, conn)
        return conn

    @contextmanager
    def write(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction holding the write lock from its start, so a read-then-write cannot race."""
        conn = self._connection(durable)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection for reads; read each cursor to its end (or drop it) inside the block."""
        yield self._connection(durable=True)

    def journal_mode(self) -> str:
        with self.read() as conn:
            return conn.execute("PRAGMA journal_mode").fetchone()[0]
