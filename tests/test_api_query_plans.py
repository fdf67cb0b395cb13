"""No hot API request makes SQLite scan a whole large table.

Every statement the app runs for the dashboard's hot requests is captured with
SQLite's trace hook and explained; a plan step that reads a large table
without an index ("SCAN execution_results" with no USING) fails the test.
"""

from __future__ import annotations

import re
import sqlite3

import httpx
import pytest
from api_harness import AUTH, NOW, api_settings
from api_sample_data import seed_everything
from sqlalchemy import event

from apiserver.app import create_app

LARGE = ("agents", "execution_results", "obs_events", "host_perf_samples", "audit_log")
FULL_SCAN = re.compile(rf"\bSCAN ({'|'.join(LARGE)})\b(?! USING)")
HOT = (
    "/api/agents?limit=50&offset=0",
    "/api/agents?limit=50&status=online",
    "/api/agents/pc-001",
    "/api/results?limit=50&since=2026-11-21T12:00:00Z",
    "/api/results?limit=2",
    "/api/executions?limit=50",
    "/api/executions/exec-1",
    "/api/audit?limit=50",
    "/api/obs_events?limit=200",
    "/api/obs_events?limit=2",
    "/api/obs_events/recent",
    "/api/perf/fleet?metric=cpu&from=2026-11-21T12:00:00Z&step=15m",
    "/api/agents/pc-001/perf",
    "/api/agents/pc-001/processes",
    "/api/health/fleet",
    "/api/schedules/nightly/status",
)


@pytest.fixture
async def traced(api_db, db_path):
    seed_everything(api_db)
    app = create_app(api_settings(db_path), clock=lambda: NOW)
    statements: list[str] = []

    def trace(dbapi_conn, record):
        dbapi_conn.set_trace_callback(statements.append)

    # Queries run in place first, and on the pool when they overrun.
    for engine in (app.state.db.inline_engine, app.state.db.engine):
        event.listen(engine, "connect", trace)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTH) as c:
        yield c, statements


def plan(db_path, sql: str) -> list[str]:
    with sqlite3.connect(db_path) as conn:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]


async def test_hot_requests_use_indexes(traced, db_path):
    client, statements = traced
    explained = 0
    for path in HOT:
        statements.clear()
        r = await client.get(path)
        assert r.status_code == 200, (path, r.text)
        cursor = r.headers.get("x-next-cursor")
        if cursor:  # the next page is as hot as the first
            sep = "&" if "?" in path else "?"
            assert (await client.get(f"{path}{sep}cursor={cursor}")).status_code == 200
        queries = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
        assert queries, path
        for sql in queries:
            steps = plan(db_path, sql)
            explained += 1
            bad = [step for step in steps if FULL_SCAN.search(step)]
            assert not bad, f"{path}: {bad}\n{sql}"
    assert explained >= len(HOT)


def test_the_detector_sees_a_full_scan(api_db, db_path):
    unindexed = plan(db_path, "SELECT * FROM execution_results WHERE stdout = 'x'")
    assert any(FULL_SCAN.search(step) for step in unindexed)
    indexed = plan(db_path, "SELECT * FROM execution_results ORDER BY started_at DESC LIMIT 5")
    assert not any(FULL_SCAN.search(step) for step in indexed)
