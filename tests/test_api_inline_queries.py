"""apiserver runs a query in place first, and on a pool thread once over budget."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from apiserver.readonly_db import DatabaseUnavailable, ReadDatabase, is_over_budget

# A query that takes SQLite about a second: far over any in-place budget.
SLOW_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000)"
    " SELECT sum(x) FROM c"
)
SLOW_SUM = 3000000 * 3000001 // 2


def _recording(threads: list[int], sql: str):
    def query(conn):
        threads.append(threading.get_ident())
        return conn.exec_driver_sql(sql).scalar()

    return query


async def test_a_cheap_query_runs_on_the_event_loop_thread(api_db, db_path):
    db = ReadDatabase(db_path)
    threads: list[int] = []
    try:
        assert await db.run(_recording(threads, "SELECT count(*) FROM agents")) == 0
    finally:
        db.close()
    assert threads == [threading.get_ident()]


async def test_an_overrunning_query_is_finished_on_a_pool_thread(api_db, db_path):
    db = ReadDatabase(db_path, inline_ms=1)
    threads: list[int] = []
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    try:
        total = await db.run(_recording(threads, SLOW_SQL))
        ticks_during = ticks
    finally:
        ticker.cancel()
        db.close()
    assert total == SLOW_SUM
    loop_thread = threading.get_ident()
    # Interrupted in place, then run again from the start on another thread...
    assert len(threads) == 2 and threads[0] == loop_thread and threads[1] != loop_thread
    # ...while the event loop went on serving (the ticker ran meanwhile).
    assert ticks_during > 1


async def test_budget_zero_sends_every_query_to_the_pool(api_db, db_path):
    db = ReadDatabase(db_path, inline_ms=0)
    threads: list[int] = []
    try:
        assert await db.run(_recording(threads, "SELECT count(*) FROM agents")) == 0
    finally:
        db.close()
    assert len(threads) == 1 and threads[0] != threading.get_ident()


@pytest.mark.parametrize("inline_ms", [0, 20])
async def test_neither_connection_can_write(api_db, db_path, inline_ms):
    db = ReadDatabase(db_path, inline_ms=inline_ms)

    def write(conn):
        conn.exec_driver_sql("INSERT INTO agents (pc_id, updated_at) VALUES ('x', 'y')")

    try:
        with pytest.raises(DatabaseUnavailable, match="readonly|read-only|query_only"):
            await db.run(write)
    finally:
        db.close()
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT count(*) FROM agents").fetchone() == (0,)


@pytest.mark.parametrize(
    ("message", "moved"),
    [
        ("interrupted", True),  # the budget ran out
        ("database is locked", True),  # in place there is no busy wait
        ("database is busy", True),
        ("no such table: agents", False),  # an error on any thread: answered at once
        ("attempt to write a readonly database", False),
    ],
)
def test_what_moves_a_query_to_the_pool(message, moved):
    assert is_over_budget(sqlite3.OperationalError(message)) is moved
