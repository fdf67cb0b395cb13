"""``/api/audit`` (api.md §3.8) plus keyset pages, and the ``[time, id]`` cursor they use."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from api_harness import seed, ts
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from apiserver.params import ParamError, decode_cursor, encode_cursor
from apiserver.readonly_db import ReadDatabase
from apiserver.routes.audit import CANDIDATES, AuditFilters, _ordered
from apiserver.time_id_cursor import CURSOR_PATTERN, MAX_ID, cursor_key
from projectord.schema import audit_log

M = timedelta(minutes=1)


def compact(value: Any) -> str:
    """JSON text as the audit projector stores it."""
    return json.dumps(value, separators=(",", ":"))


def entry(minutes_ago: float, **columns: Any) -> dict[str, Any]:
    """An audit row ``minutes_ago``; ``columns`` override."""
    row = {
        "actor": "scheduler",
        "action": "exec",
        "target": "inv-hw",
        "payload": compact({"exec_id": "exec-1"}),
        "occurred_at": ts(-minutes_ago * M),
    }
    row.update(columns)
    return row


def api_time(stored: str) -> str:
    return stored.replace("+00:00", "Z")


def stored_rows(engine: Any) -> list[dict[str, Any]]:
    """Every seeded row with its id, in the API's order (occurred_at, id descending)."""
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(audit_log.select())]
    return sorted(rows, key=lambda r: (r["occurred_at"], r["id"]), reverse=True)


async def get_ok(api: Any, query: str) -> Any:
    r = await api.get(f"/api/audit?{query}")
    assert r.status_code == 200, r.text
    return r


async def walk(api: Any, query: str) -> tuple[list[int], int]:
    """Every id over all pages of ``query``, and the number of pages."""
    seen: list[int] = []
    cursor, pages = None, 0
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        r = await get_ok(api, f"{query}{suffix}")
        pages += 1
        seen += [row["id"] for row in r.json()]
        cursor = r.headers.get("x-next-cursor")
        if cursor is None:
            return seen, pages
        assert pages < 1000


async def bad(api: Any, query: str, parameter: str) -> dict[str, Any]:
    r = await api.get(f"/api/audit?{query}")
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["parameter"] == parameter
    return body


# ----------------------------------------------------------------------------- rows


async def test_rows_newest_first_with_parsed_payloads(api_db, api):
    seed(
        api_db,
        audit_log,
        [
            entry(30, payload=compact({"exec_id": "e-1", "subjects": ["commands.all"]})),
            entry(10, actor="operator", action="freeze", target=None, payload="{not json"),
            entry(10, actor="admin", action="unfreeze", payload=None),
            entry(20, payload=compact("just text"), stream_seq=7),
            entry(5, payload="NaN"),  # Python would parse it; JSON does not
        ],
    )
    expected = stored_rows(api_db)
    r = await get_ok(api, "")
    body = r.json()
    assert [row["id"] for row in body] == [row["id"] for row in expected]
    assert "x-next-cursor" not in r.headers
    by_id = {row["id"]: row for row in body}
    for row in expected:
        try:
            payload = json.loads(row["payload"], parse_constant=lambda c: 1 / 0)
        except (TypeError, ValueError, ZeroDivisionError):
            payload = None
        assert by_id[row["id"]] == {
            "id": row["id"],
            "actor": row["actor"],
            "action": row["action"],
            "target": row["target"],
            "payload": payload,
            "occurred_at": api_time(row["occurred_at"]),
        }
    # The tie at 10 minutes is broken by the higher id first.
    tied = [row["id"] for row in body if row["occurred_at"] == api_time(ts(-10 * M))]
    assert tied == sorted(tied, reverse=True) and len(tied) == 2
    assert by_id[expected[-1]["id"]]["payload"] == {
        "exec_id": "e-1",
        "subjects": ["commands.all"],
    }


async def test_limit_defaults_to_50_and_is_bounded(api_db, api):
    seed(api_db, audit_log, [entry(i) for i in range(60)])
    expected = [row["id"] for row in stored_rows(api_db)]
    r = await get_ok(api, "")
    assert [row["id"] for row in r.json()] == expected[:50]
    assert "x-next-cursor" in r.headers
    r = await get_ok(api, "limit=7")
    assert [row["id"] for row in r.json()] == expected[:7]
    r = await get_ok(api, "limit=1000")
    assert [row["id"] for row in r.json()] == expected
    assert "x-next-cursor" not in r.headers
    for value in ("0", "1001", "-1", "ten", "1.5"):
        await bad(api, f"limit={value}", "limit")


async def test_since_is_inclusive_on_occurred_at(api_db, api):
    seed(api_db, audit_log, [entry(m) for m in (50, 40, 30, 20)])
    expected = stored_rows(api_db)
    since = api_time(ts(-30 * M))  # exactly the third row's time
    body = (await get_ok(api, f"since={since}")).json()
    assert [row["id"] for row in body] == [
        r["id"] for r in expected if r["occurred_at"] >= ts(-30 * M)
    ]
    assert len(body) == 2
    # Any offset is accepted and means the same instant.
    shifted = (await get_ok(api, "since=2026-11-22T20:30:00%2B09:00")).json()
    assert [row["id"] for row in shifted] == [row["id"] for row in body]
    for value in ("yesterday", "2026-11-22T11:30:00", "10000-01-01T00:00:00Z"):
        await bad(api, f"since={value}", "since")


# ----------------------------------------------------------------------------- patterns


async def test_actor_action_target_and_payload_are_unanchored_patterns(api_db, api):
    seed(
        api_db,
        audit_log,
        [
            entry(1, actor="operator:alice", action="freeze", target=None),
            entry(2, actor="operator:bob", action="unfreeze", target="group-a"),
            entry(3, actor="scheduler", action="exec", payload=compact({"exec_id": "ex-9"})),
            entry(4, actor="admin", action="exec", target="inv-2", payload=None),
        ],
    )
    rows = stored_rows(api_db)

    def ids_where(pred: Any) -> list[int]:
        return [r["id"] for r in rows if pred(r)]

    cases = {
        "actor=operator": lambda r: "operator" in r["actor"],
        "actor=^operator:b": lambda r: r["actor"].startswith("operator:b"),
        "action=^freeze$": lambda r: r["action"] == "freeze",
        "action=freeze": lambda r: "freeze" in r["action"],
        "target=^$": lambda r: r["target"] is None,  # a missing target matches as ""
        "target=inv": lambda r: "inv" in (r["target"] or ""),
        "payload=%22exec_id%22:%22ex-9%22": lambda r: '"exec_id":"ex-9"' in (r["payload"] or ""),
        "payload=^$": lambda r: r["payload"] is None,
        "actor=operator&action=^un": lambda r: (
            "operator" in r["actor"] and r["action"].startswith("un")
        ),
        "actor=%20%20": lambda r: True,  # blank: no filter
    }
    for query, pred in cases.items():
        body = (await get_ok(api, query)).json()
        assert [row["id"] for row in body] == ids_where(pred), query
        assert body, query  # every case selects something, so it can tell filters apart
    for name in ("actor", "action", "target", "payload"):
        body = await bad(api, f"{name}=(unclosed", name)
        assert "regular expression" in body["expected"]


async def test_patterns_examine_at_most_the_candidate_window(api_db, api):
    # The only matches are older than the newest CANDIDATES rows.
    old = [entry(100_000 + i, actor="needle") for i in range(3)]
    newer = [
        {
            "actor": "hay",
            "action": "exec",
            "target": None,
            "payload": None,
            "occurred_at": ts(-i * timedelta(seconds=1)),
        }
        for i in range(CANDIDATES + 5)
    ]
    with api_db.begin() as conn:
        conn.execute(insert(audit_log), old + newer)
    first = await get_ok(api, "actor=needle&limit=10")
    assert first.json() == []  # the window held no match ...
    cursor = first.headers["x-next-cursor"]  # ... but rows beyond it remain
    expected = [r["id"] for r in stored_rows(api_db) if r["actor"] == "needle"]
    second = await get_ok(api, f"actor=needle&limit=10&cursor={cursor}")
    assert [row["id"] for row in second.json()] == expected
    assert "x-next-cursor" not in second.headers
    # Without a pattern SQL applies the limit directly.
    plain = await get_ok(api, "limit=3")
    assert [row["actor"] for row in plain.json()] == ["hay"] * 3


# ----------------------------------------------------------------------------- cursors


async def test_walking_all_pages_returns_every_row_once_in_order(api_db, api):
    # Ties in occurred_at, in groups of 1 to 4 rows, across page boundaries.
    rows = [entry(m, actor=f"a{m}-{k}") for m in range(12) for k in range(m % 4 + 1)]
    seed(api_db, audit_log, rows)
    expected = [r["id"] for r in stored_rows(api_db)]
    for limit in (1, 3, 4, 7, len(expected) - 1, len(expected)):
        seen, pages = await walk(api, f"limit={limit}")
        assert seen == expected, limit
        # A full last page has no successor: exactly one request per page of rows.
        assert pages == -(-len(expected) // limit), limit
    # With filters the walk stays inside them.
    since = api_time(ts(-6 * M))
    seen, _ = await walk(api, f"limit=2&since={since}&actor=-[02]$")
    assert seen == [
        r["id"]
        for r in stored_rows(api_db)
        if r["occurred_at"] >= ts(-6 * M) and re.search("-[02]$", r["actor"])
    ]
    assert seen


async def test_bad_cursors_are_400(api_db, api):
    seed(api_db, audit_log, [entry(1), entry(2)])
    good = (await get_ok(api, "limit=1")).headers["x-next-cursor"]
    assert decode_cursor(good)[0] == ts(-1 * M)
    for cursor in (
        "not-a-cursor!",
        good[:-3],
        encode_cursor(["2026-11-22T11:59:00.000000+00:00", "res-1"]),  # /api/results' shape
        encode_cursor([7]),  # /api/rejects' shape
        encode_cursor(["2026-11-22T11:59:00.000000+00:00", MAX_ID + 1]),
        encode_cursor(["2026-11-22T11:59:00Z", 3]),
        base64.urlsafe_b64encode(b'["2026-11-22T11:59:00.000000+00:00",1.5]').decode(),
    ):
        await bad(api, f"cursor={cursor}", "cursor")


def test_cursor_pattern_matches_exactly_the_cursors_written():
    rx = re.compile(CURSOR_PATTERN)
    digits = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    times = st.from_regex(digits + r"\.[0-9]{6}\+00:00", fullmatch=True)

    @settings(max_examples=400, deadline=None, database=None, derandomize=True)
    @given(times, st.integers(0, MAX_ID))
    def written_cursors_match(time_text, row_id):
        cursor = encode_cursor([time_text, row_id])
        assert rx.fullmatch(cursor)
        assert cursor_key(decode_cursor(cursor)) == (time_text, row_id)

    @settings(max_examples=400, deadline=None, database=None, derandomize=True)
    @given(st.from_regex(rx, fullmatch=True))
    def matching_text_is_accepted(text):
        assert cursor_key(decode_cursor(text)) is not None

    written_cursors_match()
    matching_text_is_accepted()
    for values in (["2026-11-22T11:59:00.000000+00:00", MAX_ID + 1], ["x", 1], [1, 2]):
        assert not rx.fullmatch(encode_cursor(values))
        with pytest.raises(ParamError):
            cursor_key(values)
    leading_zero = b'["2026-11-22T11:59:00.000000+00:00",07]'
    assert not rx.fullmatch(base64.urlsafe_b64encode(leading_zero).decode().rstrip("="))


def explain(conn: Any, stmt: Any) -> str:
    """SQLite's plan for ``stmt``, its steps joined with " / "."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    args = tuple(params[name] for name in compiled.positiontup)
    rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", args)
    return " / ".join(r[3] for r in rows)


def test_the_keyset_condition_is_an_index_range(api_db, db_path):
    db = ReadDatabase(db_path)

    def plan(conn: Any, filters: AuditFilters) -> str:
        return explain(conn, _ordered(filters).limit(51))

    key = (ts(-5 * M), 17)
    first = db.query(plan, AuditFilters())
    assert first == "SCAN audit_log USING INDEX idx_audit_occurred"
    later = db.query(plan, AuditFilters(since=ts(-60 * M), after=key))
    assert later.startswith("SEARCH audit_log USING INDEX idx_audit_occurred (occurred_at>? AND")
    assert "TEMP B-TREE" not in later
    db.close()
