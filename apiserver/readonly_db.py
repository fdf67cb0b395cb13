"""Read-only access to the projection database.

Every connection is opened with ``mode=ro`` and ``PRAGMA query_only``, so even a
bug in a query cannot write: SQLite refuses. Queries are plain functions of a
SQLAlchemy ``Connection`` run on a worker thread, so the event loop keeps serving
while one of them reads.

The file may not exist yet (apiserver started before projectord's first run):
then every query raises :class:`DatabaseUnavailable`, which the app answers with
503, and the next request tries again.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

T = TypeVar("T")


# Every commit of projectord empties a reader's page cache at its next
# transaction; through a memory map those pages are read again without a
# system call or a copy each. Measured under the API benchmark: 570 against
# 485 requests/s. The mapped pages are the OS's file cache, shared and
# reclaimable, but they count in the process's RSS (as RssFile).
MMAP_BYTES = 4 << 30


class DatabaseUnavailable(Exception):
    """The database file cannot be opened or read."""


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


class ReadDatabase:
    """A small pool of read-only connections to one database file."""

    def __init__(self, path: Path, connections: int = 8, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self.engine = create_engine(
            "sqlite://",
            creator=lambda: connect_read_only(path, busy_timeout_ms),
            poolclass=QueuePool,
            pool_size=connections,
            max_overflow=0,
            pool_pre_ping=False,
        )
        # A thread per connection, so no query waits for a thread while a
        # connection is free. A plain executor: anyio's thread pool, which
        # Starlette offers, cost a sixth of the CPU of a hot request in locking.
        self.threads = ThreadPoolExecutor(connections, thread_name_prefix="db")

        # SQLAlchemy's pysqlite dialect would otherwise issue BEGIN lazily per
        # statement; one snapshot per query function keeps multi-statement reads
        # (a page and its total) consistent.
        @event.listens_for(self.engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN")

    def query(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one read transaction (blocking)."""
        try:
            with self.engine.connect() as conn:
                with conn.begin():
                    return fn(conn, *args)
        except DatabaseUnavailable:
            raise
        except DBAPIError as exc:
            if isinstance(exc.orig, sqlite3.OperationalError | sqlite3.DatabaseError):
                raise DatabaseUnavailable(str(exc.orig)) from exc
            raise

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on one of the pool's threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.threads, self.query, fn, *args)

    def close(self) -> None:
        self.threads.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()
