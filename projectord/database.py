"""The SQLite engine and the single writer that every projector goes through.

projectord is the only writer of the database file. Inside the process, all
writes run on one connection owned by one thread (:class:`Writer`), so
transactions from different projectors are serialised without any locking in
Python and SQLite never sees two writers from us.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

T = TypeVar("T")

CACHE_KIB = 64 * 1024  # writer page cache
WAL_CHECKPOINT_PAGES = 16384  # ~64 MiB of WAL between checkpoints (default ~4 MiB)

# SQLite reports these when another connection holds the lock, the disk misbehaves
# or is full. None of them says anything about the message being written, so the
# batch is retried as it is and never acked, however long it takes.
_TRANSIENT_MARKERS = (
    "database is locked",
    "database table is locked",
    "database is busy",
    "disk i/o error",
    "database or disk is full",
    "unable to open database file",
    "locking protocol",
)


def is_transient(exc: BaseException) -> bool:
    """True when a database error is about the environment, not the data."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, sqlite3.OperationalError):
        message = str(orig).lower()
        return any(marker in message for marker in _TRANSIENT_MARKERS)
    return False


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).expanduser()}"


def create_writer_engine(path: str | Path, busy_timeout_ms: int = 30000) -> Engine:
    """An engine over exactly one read-write connection in WAL mode.

    Transactions start with ``BEGIN IMMEDIATE`` so the write lock is taken up
    front: a writer that only discovers the lock at its first INSERT cannot be
    retried cleanly by SQLite's busy handler.
    """
    Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        sqlite_url(path),
        poolclass=StaticPool,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (see the "begin" hook below).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        # SQLite's default page cache is 2 MB; random result ids spread every
        # batch over the whole B-trees of a table that grows to gigabytes.
        cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Writer:
    """Runs write transactions on the single writer connection, one at a time.

    ``await writer.transaction(fn, *args)`` calls ``fn(conn, *args)`` on the
    writer thread inside one transaction and commits; an exception rolls back
    and propagates to the caller.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")

    def _run(self, fn: Callable[..., T], *args: Any) -> T:
        with self.engine.begin() as conn:
            return fn(conn, *args)

    async def transaction(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read on the writer connection (sees our own latest commits)."""
        return await self.transaction(fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()
