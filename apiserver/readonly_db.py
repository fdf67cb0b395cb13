"""Read-only access to the projection database.

Every connection is opened with ``mode=ro`` and ``PRAGMA query_only``, so even a
bug in a query cannot write: SQLite refuses. Queries are plain functions of a
SQLAlchemy ``Connection``.

A query first runs on the event loop's own thread, with a time budget. Almost
every dashboard query is an indexed page that takes well under a millisecond,
and handing it to a thread cost more than the query: with one thread per
connection the threads and the event loop queue for the GIL, and the API
benchmark served 430-930 requests/s per worker where running in place serves
920-1,580 (tests/bench/bench_api.py). A query that overruns the budget (a
regex over a large table, a cold cache, a busy database) is interrupted by
SQLite and run again on a pool thread, so it can delay the worker's other
requests by at most the budget.

The file may not exist yet (apiserver started before projectord's first run):
then every query raises :class:`DatabaseUnavailable`, which the app answers with
503, and the next request tries again.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool, StaticPool

T = TypeVar("T")


# Every commit of projectord empties a reader's page cache at its next
# transaction; through a memory map those pages are read again without a
# system call or a copy each. Measured under the API benchmark: 570 against
# 485 requests/s. The mapped pages are the OS's file cache, shared and
# reclaimable, but they count in the process's RSS (as RssFile).
MMAP_BYTES = 4 << 30


class DatabaseUnavailable(Exception):
    """The database file cannot be opened or read."""


# SQLite calls the progress handler every this many virtual-machine steps (a few
# microseconds): often enough to keep to the budget, rarely enough to cost nothing.
_PROGRESS_STEPS = 2000


def connect_read_only(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """A stdlib connection that cannot write: ``mode=ro`` plus ``query_only``."""
    if not path.is_file():
        raise DatabaseUnavailable(f"database file {path} does not exist yet")
    uri = f"file:{path.resolve().as_posix()}?mode=ro"
    conn = sqlite3.connect(
        uri,
        uri=True,
        check_same_thread=False,
        timeout=busy_timeout_ms / 1000,
        isolation_level=None,  # transactions are begun explicitly, below
    )
    conn.execute("PRAGMA query_only = ON")
    conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    return conn


def _one_snapshot_per_transaction(engine: Any) -> None:
    # SQLAlchemy's pysqlite dialect would otherwise issue BEGIN lazily per
    # statement; one snapshot per query function keeps multi-statement reads
    # (a page and its total) consistent.
    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


class ReadDatabase:
    """Read-only connections to one database file: one in place, a pool on threads.

    ``inline_ms`` is how long a query may run on the event loop's thread
    before it is moved to the pool; 0 sends every query to the pool.
    """

    def __init__(
        self,
        path: Path,
        connections: int = 8,
        busy_timeout_ms: int = 5000,
        inline_ms: int = 20,
    ) -> None:
        self.path = path
        self.engine = create_engine(
            "sqlite://",
            creator=lambda: connect_read_only(path, busy_timeout_ms),
            poolclass=QueuePool,
            pool_size=connections,
            max_overflow=0,
            pool_pre_ping=False,
        )
        _one_snapshot_per_transaction(self.engine)
        # A thread per connection, so no query waits for a thread while a
        # connection is free. A plain executor: anyio's thread pool, which
        # Starlette offers, cost a sixth of the CPU of a hot request in locking.
        self.threads = ThreadPoolExecutor(connections, thread_name_prefix="db")
        self.inline_budget = inline_ms / 1000
        self._deadline = 0.0
        # No busy wait in place: a locked database is over budget at once.
        self.inline_engine = create_engine(
            "sqlite://",
            creator=lambda: self._connect_inline(path),
            poolclass=StaticPool,
        )
        _one_snapshot_per_transaction(self.inline_engine)

    def _connect_inline(self, path: Path) -> sqlite3.Connection:
        conn = connect_read_only(path, busy_timeout_ms=0)
        # A non-zero return interrupts the statement with "interrupted".
        conn.set_progress_handler(lambda: time.monotonic() > self._deadline, _PROGRESS_STEPS)
        return conn

    def query(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one read transaction (blocking)."""
        return self._query(self.engine, fn, *args)

    def _query(self, engine: Any, fn: Callable[..., T], *args: Any) -> T:
        try:
            with engine.connect() as conn:
                with conn.begin():
                    return fn(conn, *args)
        except DatabaseUnavailable:
            raise
        except DBAPIError as exc:
            if isinstance(exc.orig, sqlite3.OperationalError | sqlite3.DatabaseError):
                raise DatabaseUnavailable(str(exc.orig)) from exc
            raise

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in place, or on a pool thread once over budget."""
        if self.inline_budget > 0:
            # Yield once first: a caller whose every await completes at once (an
            # in-process client, a pipelined connection) must not starve the rest.
            await asyncio.sleep(0)
            self._deadline = time.monotonic() + self.inline_budget
            try:
                return self._query(self.inline_engine, fn, *args)
            except DatabaseUnavailable as exc:
                if not is_over_budget(exc):
                    raise
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.threads, self.query, fn, *args)

    def close(self) -> None:
        self.threads.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()
        self.inline_engine.dispose()


def is_over_budget(error: Exception) -> bool:
    """Whether an in-place run stopped for time (interrupted, or would wait for a lock)."""
    message = str(error).lower()
    return message == "interrupted" or "locked" in message or "busy" in message
