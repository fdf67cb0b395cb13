"""The SQLite engine and the single writer that every projector goes through.

projectord is the only writer of the database file. Inside the process, all
writes run on one connection owned by one thread (:class:`Writer`), so
transactions from different projectors are serialised without any locking in
Python and SQLite never sees two writers from us.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Insert, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

T = TypeVar("T")

# Writer page cache. The 2 MiB default slowed the projector benchmark; 16 MiB
# with five merged batches per transaction drained ~8 % faster than 32 MiB with
# three, in 20 MB less memory (alternated runs; the OS file cache serves the rest).
CACHE_KIB = 16 * 1024
# ~64 MiB of WAL between the writer's own checkpoints (default ~4 MiB): a
# backstop, as projectord/wal_checkpointer.py checkpoints every second.
WAL_CHECKPOINT_PAGES = 16384

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


# Rows per multi-row INSERT: 16 columns x 1000 rows stays far below SQLite's
# 32766 host parameters per statement.
ROWS_PER_INSERT = 1000
_VALUES = re.compile(r"\) VALUES (\((?:\?, )*\?\))")
_MultiRow = tuple[str, str, str, list[str], list[Any]]
_multirow_cache: dict[tuple[Insert, tuple[str, ...]], _MultiRow | None] = {}


def _multirow_parts(conn: Connection, stmt: Insert, keys: tuple[str, ...]) -> _MultiRow | None:
    """``stmt`` compiled for ``keys``, split around its single VALUES group.

    None when the statement is not a plain positional single-row INSERT whose
    VALUES binds are exactly the row keys without type processing; the caller
    then falls back to executemany.
    """
    cache_key = (stmt, keys)  # holds the statement: module constants, so bounded
    if cache_key in _multirow_cache:
        return _multirow_cache[cache_key]
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(keys))
    names = list(compiled.positiontup or ())
    match = _VALUES.search(compiled.string)
    parts = None
    if match is not None and compiled.string.count(") VALUES (") == 1:
        n_values = match.group(1).count("?")
        value_names, tail_names = names[:n_values], names[n_values:]
        processors = compiled._bind_processors
        if sorted(value_names) == sorted(keys) and not any(n in processors for n in names):
            defaults = compiled.construct_params(dict.fromkeys(keys), _check=False)
            parts = (
                compiled.string[: match.start(1)],
                match.group(1),
                compiled.string[match.end(1) :],
                value_names,
                [defaults[n] for n in tail_names],
            )
    _multirow_cache[cache_key] = parts
    return parts


def insert_many(conn: Connection, stmt: Insert, rows: Sequence[Mapping[str, Any]]) -> None:
    """``conn.execute(stmt, rows)`` as multi-row ``INSERT ... VALUES (...), (...)``.

    Same rows, same ON CONFLICT handling row by row, in order: SQLite applies
    a multi-row VALUES list one row at a time, so a later row of the list
    conflicts with an earlier one exactly as in an executemany.

    Why: the stdlib driver runs an executemany as one ``sqlite3_step`` per row
    and releases the GIL around each; taking it back waits while the event
    loop thread decodes and acks. One step per 1000 rows removes most of those
    waits (tests/bench/bench_projector.py). SQLAlchemy's own "insertmanyvalues"
    does this only without ON CONFLICT, and ``insert().values(list)`` builds a
    new statement per call, ten times slower than executemany.
    """
    if not rows:
        return
    parts = _multirow_parts(conn, stmt, tuple(rows[0]))
    if parts is None:
        conn.execute(stmt, list(rows))
        return
    head, group, tail, value_names, tail_params = parts
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        params = [row[name] for row in chunk for name in value_names]
        params.extend(tail_params)
        sql = head + ", ".join([group] * len(chunk)) + tail
        conn.exec_driver_sql(sql, tuple(params))
