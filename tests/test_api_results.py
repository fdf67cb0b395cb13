"""``/api/results`` and ``/api/results/{result_id}`` (api.md §3.6) plus keyset pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from api_harness import seed, ts
from sqlalchemy import event, insert

from apiserver.params import decode_cursor, encode_cursor
from apiserver.readonly_db import ReadDatabase
from apiserver.regex_filter import compile_filter
from apiserver.routes.results import (
    CANDIDATES,
    OUTPUT_CANDIDATES,
    PREVIEW,
    ResultFilters,
    list_results,
)
from projectord.schema import execution_results

M = timedelta(minutes=1)


def result(result_id: str, minutes_ago: float, **columns: Any) -> dict[str, Any]:
    """A finished, successful result row started ``minutes_ago``; ``columns`` override."""
    row = {
        "result_id": result_id,
        "request_id": f"req-{result_id}",
        "exec_id": None,
        "pc_id": "PC-1",
        "exit_code": 0,
        "stdout": f"out of {result_id}",
        "stderr": "",
        "started_at": ts(-minutes_ago * M),
        "finished_at": ts(-minutes_ago * M + 10 * timedelta(seconds=1)),
        "recorded_at": ts(-minutes_ago * M),
        "job_id": None,
        "version": None,
    }
    row.update(columns)
    return row


def newest_first(rows: list[dict[str, Any]]) -> list[str]:
    """The API's order, computed from the seeded rows."""
    ordered = sorted(rows, key=lambda r: (r["started_at"], r["result_id"]), reverse=True)
    return [r["result_id"] for r in ordered]


def api_time(stored: str | None) -> str | None:
    return None if stored is None else stored.replace("+00:00", "Z")


def bulk(engine: Any, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(insert(execution_results), rows)


async def ids(api: Any, query: str) -> list[str]:
    r = await api.get(f"/api/results?{query}")
    assert r.status_code == 200, r.text
    return [row["result_id"] for row in r.json()]


async def walk(api: Any, query: str) -> tuple[list[str], int]:
    """Every result id over all pages of ``query``, and the number of pages."""
    seen: list[str] = []
    cursor, pages = None, 0
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        r = await api.get(f"/api/results?{query}{suffix}")
        assert r.status_code == 200, r.text
        pages += 1
        seen += [row["result_id"] for row in r.json()]
        cursor = r.headers.get("x-next-cursor")
        if cursor is None:
            return seen, pages
        assert pages < 1000


# ----------------------------------------------------------------------------- rows


async def test_rows_are_newest_first_with_result_id_breaking_ties(api_db, api):
    rows = [
        result("r-a", 5, exec_id="exec-1", job_id="inv", version="1.2.0", reaped=1),
        result("r-c", 5, parent_result_id="r-a", skipped=1),
        result("r-b", 5, exit_code=None, finished_at=None),
        result("r-d", 1, recorded_at=ts(-90 * M)),
        result("r-e", 9),
    ]
    seed(api_db, execution_results, rows)
    r = await api.get("/api/results")
    assert r.status_code == 200
    body = r.json()
    assert [row["result_id"] for row in body] == newest_first(rows)
    assert "x-next-cursor" not in r.headers

    by_id = {row["result_id"]: row for row in body}
    a = rows[0]
    assert by_id["r-a"] == {
        "result_id": "r-a",
        "request_id": "req-r-a",
        "exec_id": "exec-1",
        "pc_id": "PC-1",
        "exit_code": 0,
        "stdout": "out of r-a",
        "stderr": "",
        "started_at": api_time(a["started_at"]),
        "finished_at": api_time(a["finished_at"]),
        "job_id": "inv",
        "version": "1.2.0",
        "stdout_truncated": False,
        "stderr_truncated": False,
        "skipped": False,
        "reaped": True,
    }
    assert by_id["r-c"]["parent_result_id"] == "r-a" and by_id["r-c"]["skipped"] is True
    assert "parent_result_id" not in by_id["r-a"]
    assert by_id["r-b"]["exit_code"] is None and by_id["r-b"]["finished_at"] is None
    assert all(key not in row for row in body for key in ("stdout_match", "finalize_children"))


async def test_limit_defaults_to_50_and_is_bounded(api_db, api):
    rows = [result(f"r-{i:03d}", i) for i in range(60)]
    seed(api_db, execution_results, rows)
    assert await ids(api, "") == newest_first(rows)[:50]
    assert await ids(api, "limit=7") == newest_first(rows)[:7]
    assert await ids(api, "limit=1000") == newest_first(rows)
    for bad in ("0", "1001", "-1", "x", "1.5"):
        r = await api.get(f"/api/results?limit={bad}")
        assert r.status_code == 400, bad
        assert r.json()["parameter"] == "limit"


async def test_status_filters(api_db, api):
    rows = [
        result("ok", 1, exit_code=0),
        result("failed", 2, exit_code=3),
        result("reaped", 3, exit_code=-1, reaped=1, stderr="reaped: no result"),
        result("running", 4, exit_code=None, finished_at=None),
        result("ok-old", 5, exit_code=0),
    ]
    seed(api_db, execution_results, rows)
    expected = {
        "success": [r for r in rows if r["exit_code"] == 0],
        "failure": [r for r in rows if r["exit_code"] not in (None, 0)],
        "running": [r for r in rows if r["finished_at"] is None],
    }
    for status, wanted in expected.items():
        assert await ids(api, f"status={status}") == newest_first(wanted), status
    for bad in ("Success", "done", "all"):
        r = await api.get(f"/api/results?status={bad}")
        assert r.status_code == 400 and r.json()["parameter"] == "status"


async def test_since_bounds_started_at_not_recorded_at(api_db, api):
    rows = [
        result("new", 10),
        result("edge", 30),
        # Started long ago, recorded just now: since must still exclude it.
        result("late-report", 120, recorded_at=ts(-1 * M)),
    ]
    seed(api_db, execution_results, rows)
    since = api_time(rows[1]["started_at"])
    assert await ids(api, f"since={since}") == ["new", "edge"]
    assert await ids(api, "since=2026-11-22T11:00:00%2B09:00") == newest_first(rows)
    for bad in ("yesterday", "2026-11-22", "10000-01-01T00:00:00Z"):
        r = await api.get(f"/api/results?since={bad}")
        assert r.status_code == 400 and r.json()["parameter"] == "since"


async def test_id_regexes_are_unanchored_and_null_matches_empty(api_db, api):
    rows = [
        result("r1", 1, pc_id="PC-TOKYO-01", job_id="inv-hw", exec_id="exec-1"),
        result("r2", 2, pc_id="PC-OSAKA-02", job_id="inv-sw", exec_id="exec-2"),
        result("r3", 3, pc_id="PC-TOKYO-03", job_id=None, exec_id=None),
    ]
    seed(api_db, execution_results, rows)
    assert await ids(api, "pc_id=TOKYO") == ["r1", "r3"]
    assert await ids(api, "pc_id=^PC-.*-0[12]$") == ["r1", "r2"]
    assert await ids(api, "job_id=hw|sw") == ["r1", "r2"]
    assert await ids(api, "job_id=^$") == ["r3"]  # NULL matches as ""
    assert await ids(api, "exec_id=exec-2") == ["r2"]
    assert await ids(api, "pc_id=TOKYO&exec_id=1") == ["r1"]
    assert await ids(api, "pc_id=%20%20") == ["r1", "r2", "r3"]  # blank: no filter
    for name in ("pc_id", "job_id", "exec_id", "stdout", "stderr"):
        r = await api.get(f"/api/results?{name}=(unclosed")
        assert r.status_code == 400 and r.json()["parameter"] == name
    # Back-references and look-around are not RE2: refused, never run.
    r = await api.get("/api/results?pc_id=(a)\\1")
    assert r.status_code == 400 and r.json()["parameter"] == "pc_id"


async def test_regexes_keep_the_first_limit_matches(api_db, api):
    rows = [result(f"r{i:02d}", i, pc_id="PC-A" if i % 3 else "PC-B") for i in range(20)]
    seed(api_db, execution_results, rows)
    wanted = newest_first([r for r in rows if r["pc_id"] == "PC-A"])
    r = await api.get("/api/results?pc_id=A$&limit=4")
    assert [row["result_id"] for row in r.json()] == wanted[:4]
    assert r.headers["x-next-cursor"]
    seen, pages = await walk(api, "pc_id=A$&limit=4")
    assert seen == wanted and pages == 4  # 13 matches: 4 + 4 + 4 + 1


# ----------------------------------------------------------------------------- output


async def test_outputs_are_cut_at_200_characters_not_bytes(api_db, api):
    exactly = "é" * PREVIEW
    longer = "日本語" * 100  # 300 characters, 900 bytes
    rows = [
        result("exact", 1, stdout=exactly, stderr=""),
        result("long", 2, stdout=longer, stderr="ß" * (PREVIEW + 1)),
    ]
    seed(api_db, execution_results, rows)
    body = {row["result_id"]: row for row in (await api.get("/api/results")).json()}
    assert body["exact"]["stdout"] == exactly and body["exact"]["stdout_truncated"] is False
    assert body["long"]["stdout"] == longer[:PREVIEW] and len(body["long"]["stdout"]) == 200
    assert body["long"]["stdout_truncated"] is True
    assert body["long"]["stderr"] == "ß" * PREVIEW and body["long"]["stderr_truncated"] is True
    assert body["exact"]["stderr"] == "" and body["exact"]["stderr_truncated"] is False

    detail = (await api.get("/api/results/long")).json()
    assert detail["stdout"] == longer and detail["stderr"] == "ß" * (PREVIEW + 1)
    assert detail["stdout_truncated"] is False and detail["stderr_truncated"] is False


async def test_output_regexes_search_the_full_text_and_give_excerpts(api_db, api):
    head = "ø" * 300
    tail = "ü" * 300
    rows = [
        # The match lies past the 200-character preview, with context cut both sides.
        result("deep", 1, stdout=head + "ERROR disk full" + tail),
        # Near the start: nothing cut before, the end is cut after 80 characters.
        result("early", 2, stdout="x ERROR y " + "z" * 100),
        result("clean", 3, stdout="all good " * 50),
        result("err", 4, stdout="", stderr="warning: 警告 low memory"),
    ]
    seed(api_db, execution_results, rows)
    r = await api.get("/api/results?stdout=ERROR%20\\w%2B")
    body = r.json()
    assert [row["result_id"] for row in body] == ["deep", "early"]
    deep, early = body
    assert deep["stdout"] == head[:PREVIEW] and deep["stdout_truncated"] is True
    assert deep["stdout_match"] == {
        "before": "ø" * 80,
        "matched": "ERROR disk",
        "after": " full" + "ü" * 75,
        "clipped_start": True,
        "clipped_end": True,
    }
    assert early["stdout_match"] == {
        "before": "x ",
        "matched": "ERROR y",
        "after": " " + "z" * 79,
        "clipped_start": False,
        "clipped_end": True,
    }
    assert all("stderr_match" not in row for row in body)

    r = await api.get("/api/results?stderr=警告")
    (row,) = r.json()
    assert row["result_id"] == "err"
    assert row["stderr_match"] == {
        "before": "warning: ",
        "matched": "警告",
        "after": " low memory",
        "clipped_start": False,
        "clipped_end": False,
    }
    assert "stdout_match" not in row

    # A long match is shown up to 240 characters.
    seed(api_db, execution_results, [result("long-match", 9, stdout="Q" * 300)])
    (row,) = (await api.get("/api/results?stdout=Q%2B")).json()
    assert row["stdout_match"]["matched"] == "Q" * 240 and row["stdout_match"]["before"] == ""

    # Both outputs at once: both must match, both excerpts shown.
    assert await ids(api, "stdout=ERROR&stderr=warn") == []
    (row,) = (await api.get("/api/results?stdout=^$&stderr=memory$")).json()
    assert row["result_id"] == "err"
    assert row["stdout_match"]["matched"] == "" and row["stderr_match"]["matched"] == "memory"


async def test_the_candidate_window_is_bounded_and_a_cursor_continues_past_it(api_db, api):
    # CANDIDATES newer rows that do not match, then one that does.
    rows = [
        result(f"r{i:05d}", 10 + i * 0.001, pc_id="PC-A", stdout="noise") for i in range(CANDIDATES)
    ]
    rows.append(result("needle", 60, pc_id="PC-B", stdout="needle"))
    bulk(api_db, rows)
    r = await api.get("/api/results?pc_id=PC-B")
    assert r.status_code == 200 and r.json() == []
    cursor = r.headers["x-next-cursor"]
    # The cursor points after the last candidate examined, the oldest PC-A row.
    oldest = min(rows[:-1], key=lambda row: row["started_at"])
    assert decode_cursor(cursor) == [oldest["started_at"], oldest["result_id"]]
    r = await api.get(f"/api/results?pc_id=PC-B&cursor={cursor}")
    assert [row["result_id"] for row in r.json()] == ["needle"]
    assert "x-next-cursor" not in r.headers

    # An output pattern reads the full text, so its window is smaller.
    assert OUTPUT_CANDIDATES < CANDIDATES
    seen, pages = await walk(api, "stdout=needle")
    assert seen == ["needle"] and pages == (len(rows) - 1) // OUTPUT_CANDIDATES + 1


# ----------------------------------------------------------------------------- detail


async def test_detail_has_full_text_and_finalize_children(api_db, api):
    rows = [
        result("parent", 10, stdout="full " * 100, job_id="deploy", exec_id="exec-9"),
        result("child-b", 8, parent_result_id="parent", job_id="fin-b", exit_code=2),
        result(
            "child-a", 9, parent_result_id="parent", job_id=None, exit_code=None, finished_at=None
        ),
        result("other", 7),
    ]
    seed(api_db, execution_results, rows)
    r = await api.get("/api/results/parent")
    assert r.status_code == 200
    body = r.json()
    assert body["stdout"] == "full " * 100 and body["stdout_truncated"] is False
    assert body["job_id"] == "deploy" and body["exec_id"] == "exec-9"
    assert body["finalize_children"] == [
        {"result_id": "child-a", "job_id": None, "exit_code": None, "finished_at": None},
        {
            "result_id": "child-b",
            "job_id": "fin-b",
            "exit_code": 2,
            "finished_at": api_time(rows[1]["finished_at"]),
        },
    ]
    child = (await api.get("/api/results/child-b")).json()
    assert child["parent_result_id"] == "parent" and "finalize_children" not in child
    assert "stdout_match" not in child


async def test_unknown_result_is_json_404(api_db, api):
    seed(api_db, execution_results, [result("known", 1)])
    r = await api.get("/api/results/unknown")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert "unknown" in r.json()["error"]


# ----------------------------------------------------------------------------- cursors


def tied_rows(n: int = 23) -> list[dict[str, Any]]:
    """Rows in groups sharing a started_at, ids inserted out of order."""
    return [
        result(
            f"t{(i * 7) % n:02d}",
            i // 4,
            exit_code=None if i % 3 == 0 else 0,
            finished_at=None if i % 3 == 0 else ts(-(i // 4) * M),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("limit", [1, 4, 5, 23, 50])
async def test_walking_all_pages_returns_every_row_once_in_order(api_db, api, limit):
    rows = tied_rows()
    seed(api_db, execution_results, rows)
    seen, pages = await walk(api, f"limit={limit}")
    assert seen == newest_first(rows)
    assert pages == -(-len(rows) // limit)  # no empty trailing page


async def test_cursors_combine_with_filters(api_db, api):
    rows = tied_rows()
    seed(api_db, execution_results, rows)
    running = [r for r in rows if r["finished_at"] is None]
    seen, _ = await walk(api, "status=running&limit=2")
    assert seen == newest_first(running)
    since = rows[12]["started_at"]
    recent = [r for r in rows if r["started_at"] >= since and r["exit_code"] == 0]
    seen, _ = await walk(api, f"status=success&since={api_time(since)}&limit=3")
    assert seen == newest_first(recent)
    seen, _ = await walk(api, "pc_id=PC&limit=3")
    assert seen == newest_first(rows)


async def test_a_full_last_page_has_no_cursor(api_db, api):
    rows = [result(f"r{i}", i) for i in range(6)]
    seed(api_db, execution_results, rows)
    first = await api.get("/api/results?limit=3")
    assert decode_cursor(first.headers["x-next-cursor"]) == [
        rows[2]["started_at"],
        rows[2]["result_id"],
    ]
    last = await api.get(f"/api/results?limit=3&cursor={first.headers['x-next-cursor']}")
    assert [row["result_id"] for row in last.json()] == ["r3", "r4", "r5"]
    assert "x-next-cursor" not in last.headers


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "e30",  # {} in base64
        encode_cursor(["2026-11-22T11:00:00.000000+00:00"]),
        encode_cursor(["2026-11-22T11:00:00.000000+00:00", "r1", "extra"]),
        encode_cursor([1, "r1"]),
        encode_cursor(["2026-11-22T11:00:00.000000+00:00", 7]),
    ],
)
async def test_a_foreign_or_broken_cursor_is_400(api_db, api, cursor):
    r = await api.get("/api/results", params={"cursor": cursor})
    assert r.status_code == 400
    assert r.json()["parameter"] == "cursor"


async def test_the_list_header_is_documented(api):
    doc = (await api.get("/api/openapi.json")).json()
    response = doc["paths"]["/api/results"]["get"]["responses"]["200"]
    assert "X-Next-Cursor" in response["headers"]


# ----------------------------------------------------------------------------- query plans


def plans(db_path: Any, filters: ResultFilters) -> list[str]:
    """EXPLAIN QUERY PLAN of every SELECT list_results issues for ``filters``."""
    db = ReadDatabase(db_path)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    db.query(list_results, filters)
    out = []
    for statement, parameters in statements:
        rows = db.query(
            lambda c, s=statement, p=parameters: c.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + s, p
            ).all()
        )
        out.append(" | ".join(row[3] for row in rows))
    db.close()
    return out


def test_keyset_pages_are_index_ranges(api_db, db_path):
    seed(api_db, execution_results, [result("old", 90, pc_id="PC-x")])
    key = ("2026-11-22T11:00:00.000000+00:00", "r5")
    since = "2026-11-21T12:00:00.000000+00:00"
    (plan,) = plans(db_path, ResultFilters(after=key, since=since))
    assert "USING INDEX idx_results_started_result" in plan
    assert "(started_at,result_id)<" in plan and "TEMP B-TREE" not in plan
    # In-flight rows come from their partial index, not a walk of all results.
    (plan,) = plans(db_path, ResultFilters(status="running", after=key))
    assert "USING INDEX idx_results_inflight_started" in plan
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan  # only ties get sorted
    # With a pattern: one narrow pass over the index, then the kept rows by key.
    scan, fetch = plans(db_path, ResultFilters(after=key, patterns={"pc_id": compile_filter("x")}))
    assert "idx_results_started_result" in scan and "TEMP B-TREE" not in scan
    assert "sqlite_autoindex_execution_results_1" in fetch
