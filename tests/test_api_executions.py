"""``/api/executions`` and ``/api/executions/{exec_id}`` (api.md §3.7) plus keyset pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from api_harness import seed, ts
from sqlalchemy import event

from apiserver.params import decode_cursor, encode_cursor
from apiserver.readonly_db import ReadDatabase
from apiserver.routes.executions import list_executions
from projectord.schema import execution_results, executions

M = timedelta(minutes=1)


def execution(exec_id: str, minutes_ago: float, **columns: Any) -> dict[str, Any]:
    row = {
        "exec_id": exec_id,
        "job_id": "inv-hw",
        "version": "1.0.0",
        "initiated_by": "scheduler",
        "initiated_at": ts(-minutes_ago * M),
        "target_count": 3,
        "success_count": 1,
        "failure_count": 0,
        "status": "running",
    }
    row.update(columns)
    return row


def newest_first(rows: list[dict[str, Any]]) -> list[str]:
    ordered = sorted(rows, key=lambda r: (r["initiated_at"], r["exec_id"]), reverse=True)
    return [r["exec_id"] for r in ordered]


def api_time(stored: str | None) -> str | None:
    return None if stored is None else stored.replace("+00:00", "Z")


async def ids(api: Any, query: str) -> list[str]:
    r = await api.get(f"/api/executions?{query}")
    assert r.status_code == 200, r.text
    return [row["exec_id"] for row in r.json()]


async def walk(api: Any, query: str) -> tuple[list[str], int]:
    seen: list[str] = []
    cursor, pages = None, 0
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        r = await api.get(f"/api/executions?{query}{suffix}")
        assert r.status_code == 200, r.text
        pages += 1
        seen += [row["exec_id"] for row in r.json()]
        cursor = r.headers.get("x-next-cursor")
        if cursor is None:
            return seen, pages
        assert pages < 1000


async def test_rows_are_newest_first_with_exec_id_breaking_ties(api_db, api):
    rows = [
        execution("e-b", 5, status="completed", success_count=2, failure_count=1),
        execution("e-a", 5),
        execution("e-c", 1, job_id="deploy", initiated_by="operator", schedule_id=None),
        execution("e-d", 30, schedule_id="nightly"),
    ]
    seed(api_db, executions, rows)
    r = await api.get("/api/executions")
    assert r.status_code == 200 and "x-next-cursor" not in r.headers
    body = r.json()
    assert [row["exec_id"] for row in body] == newest_first(rows)
    b = rows[0]
    assert body[1] == {
        "exec_id": "e-b",
        "job_id": "inv-hw",
        "version": "1.0.0",
        "initiated_by": "scheduler",
        "initiated_at": api_time(b["initiated_at"]),
        "target_count": 3,
        "success_count": 2,
        "failure_count": 1,
        "status": "completed",
    }


async def test_limit_defaults_to_50_and_is_bounded(api_db, api):
    rows = [execution(f"e-{i:03d}", i) for i in range(55)]
    seed(api_db, executions, rows)
    assert await ids(api, "") == newest_first(rows)[:50]
    assert await ids(api, "limit=3") == newest_first(rows)[:3]
    for bad in ("0", "1001", "many"):
        r = await api.get(f"/api/executions?limit={bad}")
        assert r.status_code == 400 and r.json()["parameter"] == "limit"


async def test_job_id_and_status_match_exactly(api_db, api):
    rows = [
        execution("e1", 1, job_id="inv-hw", status="running"),
        execution("e2", 2, job_id="inv-hw", status="completed"),
        execution("e3", 3, job_id="inv-hw2", status="completed"),
        execution("e4", 4, job_id="deploy", status="expired"),
    ]
    seed(api_db, executions, rows)
    assert await ids(api, "job_id=inv-hw") == ["e1", "e2"]
    assert await ids(api, "job_id=inv.*") == []  # not a pattern
    assert await ids(api, "status=completed") == ["e2", "e3"]
    assert await ids(api, "status=completed&job_id=inv-hw2") == ["e3"]
    assert await ids(api, "status=Completed") == []  # exact, and not validated
    assert await ids(api, "status=no-such-status") == []


@pytest.mark.parametrize("limit", [1, 2, 3, 9, 10])
async def test_walking_all_pages_returns_every_row_once_in_order(api_db, api, limit):
    n = 9
    rows = [execution(f"x{(i * 4) % n}", i // 3, job_id="a" if i % 2 else "b") for i in range(n)]
    seed(api_db, executions, rows)
    seen, pages = await walk(api, f"limit={limit}")
    assert seen == newest_first(rows) and pages == -(-n // limit)
    seen, _ = await walk(api, f"limit={limit}&job_id=a")
    assert seen == newest_first([r for r in rows if r["job_id"] == "a"])


async def test_the_cursor_holds_the_last_rows_sort_key(api_db, api):
    rows = [execution(f"e{i}", i) for i in range(4)]
    seed(api_db, executions, rows)
    r = await api.get("/api/executions?limit=2")
    assert decode_cursor(r.headers["x-next-cursor"]) == [rows[1]["initiated_at"], "e1"]
    r = await api.get(f"/api/executions?limit=2&cursor={r.headers['x-next-cursor']}")
    assert [row["exec_id"] for row in r.json()] == ["e2", "e3"]
    assert "x-next-cursor" not in r.headers


@pytest.mark.parametrize(
    "cursor", ["%%%", encode_cursor(["only-one"]), encode_cursor([None, "e1"]), "WzEsMl0"]
)
async def test_a_broken_cursor_is_400(api_db, api, cursor):
    r = await api.get("/api/executions", params={"cursor": cursor})
    assert r.status_code == 400 and r.json()["parameter"] == "cursor"


async def test_detail_lists_results_by_recorded_at_with_the_exit_code_quirk(api_db, api):
    seed(api_db, executions, [execution("e1", 60), execution("e2", 50)])
    results = [
        {
            "result_id": "r-done",
            "request_id": "q1",
            "exec_id": "e1",
            "pc_id": "PC-1",
            "exit_code": 4,
            "stdout": "never shown here",
            "started_at": ts(-59 * M),
            "finished_at": ts(-58 * M),
            "recorded_at": ts(-58 * M),
        },
        {
            "result_id": "r-flight",
            "request_id": "q2",
            "exec_id": "e1",
            "pc_id": "PC-2",
            "exit_code": None,
            "started_at": ts(-59 * M),
            "finished_at": None,
            "recorded_at": ts(-57 * M),
        },
        {
            "result_id": "r-skip",
            "request_id": "q3",
            "exec_id": "e1",
            "pc_id": "PC-3",
            "exit_code": 0,
            "skipped": 1,
            "started_at": ts(-55 * M),
            "finished_at": ts(-55 * M),
            "recorded_at": ts(-59 * M),
        },
        {
            "result_id": "r-other",
            "request_id": "q4",
            "exec_id": "e2",
            "pc_id": "PC-1",
            "exit_code": 0,
            "started_at": ts(-49 * M),
            "finished_at": ts(-48 * M),
            "recorded_at": ts(-48 * M),
        },
    ]
    seed(api_db, execution_results, results)
    r = await api.get("/api/executions/e1")
    assert r.status_code == 200
    body = r.json()
    assert body["execution"]["exec_id"] == "e1"
    assert body["execution"]["initiated_at"] == api_time(ts(-60 * M))
    mine = sorted(
        (x for x in results if x["exec_id"] == "e1"), key=lambda x: x["recorded_at"], reverse=True
    )
    assert [x["result_id"] for x in body["results"]] == [x["result_id"] for x in mine]
    by_id = {x["result_id"]: x for x in body["results"]}
    assert by_id["r-flight"] == {
        "result_id": "r-flight",
        "request_id": "q2",
        "pc_id": "PC-2",
        "exit_code": 0,  # NULL reported as 0, as the original does
        "skipped": False,
        "started_at": api_time(results[1]["started_at"]),
        "finished_at": None,
    }
    assert by_id["r-done"]["exit_code"] == 4 and by_id["r-skip"]["skipped"] is True
    assert all("stdout" not in x for x in body["results"])


async def test_detail_without_results_and_unknown_ids(api_db, api):
    seed(api_db, executions, [execution("lonely", 1)])
    r = await api.get("/api/executions/lonely")
    assert r.status_code == 200 and r.json()["results"] == []
    r = await api.get("/api/executions/missing")
    assert r.status_code == 404 and "missing" in r.json()["error"]


def test_keyset_pages_use_the_initiated_index(api_db, db_path):
    db = ReadDatabase(db_path)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    db.query(list_executions, 50, None, None, ("2026-11-22T11:00:00.000000+00:00", "e5"))
    ((statement, parameters),) = statements
    plan = " | ".join(
        row[3]
        for row in db.query(
            lambda c: c.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        )
    )
    db.close()
    # A range on initiated_at; only rows sharing one initiated_at get sorted by exec_id.
    assert "SEARCH executions USING INDEX idx_executions_initiated (initiated_at<?)" in plan
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan
