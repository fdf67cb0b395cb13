"""``/api/obs_events`` and ``/kinds``, ``/sources``, ``/recent``, ``/lane_seeds``
(api.md §3.9), plus keyset pages and the query plans that keep them cheap."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import Any

import pytest
import structlog
from api_harness import seed, ts
from sqlalchemy import event as sa_event
from sqlalchemy import insert

from apiserver.params import encode_cursor
from apiserver.readonly_db import ReadDatabase
from apiserver.routes.obs_events import (
    LANES,
    MERGED_KINDS,
    EventFilters,
    _page_query,
    distinct_values,
    lane_seeds,
)
from apiserver.stored_json import Undecodable, decode_or_none, decode_stored
from projectord.schema import obs_events

M = timedelta(minutes=1)
S = timedelta(seconds=1)


def compact(value: Any) -> str:
    """JSON text as the obs_events projector stores it."""
    return json.dumps(value, separators=(",", ":"))


def event(minutes_ago: float, **columns: Any) -> dict[str, Any]:
    """An event on PC-1 ``minutes_ago``; ``columns`` override."""
    row = {
        "pc_id": "PC-1",
        "at": ts(-minutes_ago * M),
        "kind": "logon",
        "source": "windows_event_log",
        "event_record_id": None,
        "payload": compact({"logon_type": 2, "user": "taro"}),
    }
    row.update(columns)
    return row


def api_time(stored: str) -> str:
    return stored.replace("+00:00", "Z")


def decodable(row: dict[str, Any]) -> bool:
    try:
        decode_stored(row["payload"])
    except Undecodable:
        return False
    return True


def stored_rows(engine: Any) -> list[dict[str, Any]]:
    """Every seeded row with its id, in the API's order (at, id descending)."""
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(obs_events.select())]
    return sorted(rows, key=lambda r: (r["at"], r["id"]), reverse=True)


def served(rows: list[dict[str, Any]]) -> list[int]:
    """The ids the API serves of ``rows``: undecodable payloads are dropped."""
    return [r["id"] for r in rows if decodable(r)]


async def get_ok(api: Any, path: str) -> Any:
    r = await api.get(path)
    assert r.status_code == 200, r.text
    return r


async def ids(api: Any, query: str) -> list[int]:
    r = await get_ok(api, f"/api/obs_events?{query}")
    return [e["id"] for e in r.json()["events"]]


async def walk(api: Any, query: str) -> tuple[list[int], int]:
    """Every id over all pages of ``query``, and the number of pages."""
    seen: list[int] = []
    cursor, pages = None, 0
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        r = await get_ok(api, f"/api/obs_events?{query}{suffix}")
        pages += 1
        seen += [e["id"] for e in r.json()["events"]]
        cursor = r.headers.get("x-next-cursor")
        if cursor is None:
            return seen, pages
        assert pages < 1000


async def bad(api: Any, path: str, parameter: str) -> dict[str, Any]:
    r = await api.get(path)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["parameter"] == parameter, body
    return body


def explain(conn: Any, stmt: Any) -> str:
    """SQLite's plan for ``stmt``, its steps joined with " / "."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    args = tuple(params[name] for name in compiled.positiontup)
    rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", args)
    return " / ".join(r[3] for r in rows)


# ----------------------------------------------------------------------------- rows


async def test_events_newest_first_with_parsed_payloads(api_db, api):
    seed(
        api_db,
        obs_events,
        [
            event(30, event_record_id="4624-1"),
            event(10, kind="boot", source="agent", payload=None),
            event(10, kind="logoff", payload=compact(["a", 1, None])),
            event(20, pc_id="PC-2", payload=compact({"nested": {"x": [1.5, True]}})),
            event(5, kind="sleep", payload="not json"),
            event(6, kind="resume", payload="NaN"),
            event(7, kind="idle", payload='{"n": 1e999}'),
            event(8, kind="active", payload='"\\ud800"'),
        ],
    )
    rows = stored_rows(api_db)
    with structlog.testing.capture_logs() as logs:
        r = await get_ok(api, "/api/obs_events")
    events = r.json()["events"]
    assert [e["id"] for e in events] == served(rows)
    assert len(events) == 4  # four of eight payloads are not JSON a response can carry
    assert "x-next-cursor" not in r.headers
    for e, row in zip(events, [r for r in rows if decodable(r)], strict=True):
        assert e == {
            "id": row["id"],
            "pc_id": row["pc_id"],
            "at": api_time(row["at"]),
            "kind": row["kind"],
            "source": row["source"],
            "event_record_id": row["event_record_id"],
            "payload": None if row["payload"] is None else json.loads(row["payload"]),
        }
    tied = [e["id"] for e in events if e["at"] == api_time(ts(-10 * M))]
    assert tied == sorted(tied, reverse=True) and len(tied) == 2
    dropped = [entry for entry in logs if entry["event"] == "obs_event_payload_undecodable"]
    assert len(dropped) == 1 and dropped[0]["log_level"] == "warning"
    assert sorted(dropped[0]["ids"]) == sorted(r["id"] for r in rows if not decodable(r))
    assert dropped[0]["dropped"] == 4


def test_stored_json_accepts_only_what_a_response_can_carry():
    assert decode_stored(None) is None
    assert decode_stored('{"a":[1,2.5,"x",null,true]}') == {"a": [1, 2.5, "x", None, True]}
    assert decode_stored(b'{"a":1}') == {"a": 1}
    assert decode_stored('"\\u00e9"') == "\u00e9"
    for text in ("", "{", "NaN", "[Infinity]", "-Infinity", "1e400", '"\\udc00"', "[" * 100_000):
        with pytest.raises(Undecodable):
            decode_stored(text)
        assert decode_or_none(text) is None
    assert math.isfinite(decode_stored("1e308"))


# ----------------------------------------------------------------------------- filters


@pytest.fixture
def varied(api_db) -> list[dict[str, Any]]:
    """Events of three PCs, several kinds and sources, and payloads of every shape."""
    kinds = ("logon", "logoff", "boot", "shutdown", "sleep", "resume", "active", "idle")
    rows = []
    for i in range(48):
        payload: Any = {"logon_type": i % 4, "user": f"u{i % 3}", "code": i % 5}
        if i % 11 == 0:
            payload = {"logon_type": str(i % 4), "code": str(i % 5)}  # numbers as text
        rows.append(
            event(
                i // 2,  # pairs share a timestamp
                pc_id=("PC-1", "PC-10", "PC-2")[i % 3],
                kind=kinds[i % len(kinds)],
                source=("windows_event_log", "agent", "wmi")[i % 3 if i % 2 else 0],
                event_record_id=str(i) if i % 2 else None,
                payload="not json" if i % 13 == 5 else compact(payload),
            )
        )
    seed(api_db, obs_events, rows)
    return stored_rows(api_db)


def payload_of(row: dict[str, Any]) -> Any:
    return decode_or_none(row["payload"]) or {}


async def test_every_filter_selects_exactly_its_rows(varied, api):
    lo, hi = ts(-15 * M), ts(-5 * M)
    cases = {
        "pc_id=PC-1": lambda r: r["pc_id"] == "PC-1",  # exact: not PC-10
        "kind=boot": lambda r: r["kind"] == "boot",
        "source=agent": lambda r: r["source"] == "agent",
        f"from={api_time(lo)}": lambda r: r["at"] >= lo,
        f"to={api_time(hi)}": lambda r: r["at"] < hi,
        f"from={api_time(lo)}&to={api_time(hi)}": lambda r: lo <= r["at"] < hi,
        "kinds=boot,,sleep,%20": lambda r: r["kind"] in ("boot", "sleep"),
        "kinds=boot,sleep&kind=sleep": lambda r: r["kind"] == "sleep",
        "kinds_ex=logon,logoff": lambda r: r["kind"] not in ("logon", "logoff"),
        "kinds=boot,logon&kinds_ex=logon": lambda r: r["kind"] == "boot",
        "sources=agent,wmi": lambda r: r["source"] in ("agent", "wmi"),
        "sources_ex=agent": lambda r: r["source"] != "agent",
        "logon_type=3": lambda r: payload_of(r).get("logon_type") == 3,  # not "3"
        "payload_key=user&payload_value=u1": lambda r: payload_of(r).get("user") == "u1",
        # A number matches the JSON number and the JSON string of the same text.
        "payload_key=code&payload_value=2": lambda r: payload_of(r).get("code") in (2, "2"),
        "payload_key=code&payload_value=2.0": lambda r: payload_of(r).get("code") == 2,
        "payload_key=code": lambda r: True,  # a key without a value: no filter
        "payload_value=u1": lambda r: True,  # a value without a key: no filter
        "pc_id=PC-2&kinds=boot,logon,active&source=windows_event_log": lambda r: (
            r["pc_id"] == "PC-2"
            and r["kind"] in ("boot", "logon", "active")
            and r["source"] == "windows_event_log"
        ),
        "kind=idle&sources_ex=wmi&logon_type=3": lambda r: (
            r["kind"] == "idle" and r["source"] != "wmi" and payload_of(r).get("logon_type") == 3
        ),
    }
    no_filter = {"payload_key=code", "payload_value=u1"}
    everything = served(varied)
    for query, pred in cases.items():
        got = await ids(api, query)
        assert got == served([r for r in varied if pred(r)]), query
        assert got, query  # every case selects something, and filters leave some out
        assert (got == everything) == (query in no_filter), query
    for query in (
        "kind=boot&kinds=sleep",
        "pc_id=PC-9",
        "from=2026-11-22T12:00:00Z&to=2026-11-22T11:00:00Z",
    ):
        assert await ids(api, query) == [], query


async def test_bad_filter_values_are_400(varied, api):
    for query, name in (
        ("payload_key=a.b&payload_value=1", "payload_key"),
        ("payload_key=$.x&payload_value=1", "payload_key"),
        ("payload_key=x y", "payload_key"),
        ("logon_type=two", "logon_type"),
        ("logon_type=-1", "logon_type"),
        ("logon_type=99999999999", "logon_type"),
        ("from=yesterday", "from"),
        ("to=2026-11-22", "to"),
        ("from=10000-01-01T00:00:00Z", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("limit=0", "limit"),
        ("limit=5001", "limit"),
        ("limit=lots", "limit"),
        ("cursor=%%%", "cursor"),
    ):
        await bad(api, f"/api/obs_events?{query}", name)
    body = await bad(api, "/api/obs_events?meta_any=finance", "meta_any")
    assert "metadata mirror" in body["expected"]
    assert await ids(api, "meta_any=%20") == served(varied)[:200]  # blank: no filter


async def test_limit_defaults_to_200_and_allows_5000(api_db, api):
    rows = [
        {
            "pc_id": f"PC-{i % 7}",
            "at": ts(-i * S),
            "kind": "active",
            "source": "agent",
            "payload": None,
        }
        for i in range(5003)
    ]
    with api_db.begin() as conn:
        conn.execute(insert(obs_events), rows)
    expected = [r["id"] for r in stored_rows(api_db)]
    r = await get_ok(api, "/api/obs_events")
    assert [e["id"] for e in r.json()["events"]] == expected[:200]
    assert "x-next-cursor" in r.headers
    assert await ids(api, "limit=5000") == expected[:5000]
    assert await ids(api, "limit=1") == expected[:1]


# ----------------------------------------------------------------------------- cursors


async def test_walking_all_pages_returns_every_row_once_in_order(varied, api):
    for query in (
        "",
        "pc_id=PC-10",
        "kind=logon",
        "kinds=boot,logon,idle",
        "sources_ex=wmi&logon_type=1",
        f"to={api_time(ts(-4 * M))}",
    ):
        once, _ = await walk(api, f"{query}&limit=5000")
        assert once  # a single page holds every match
        for limit in (1, 2, 3, 5):
            seen, _ = await walk(api, f"{query}&limit={limit}")
            assert seen == once, (query, limit)


async def test_a_full_last_page_has_no_cursor(api_db, api):
    seed(api_db, obs_events, [event(m) for m in (1, 1, 2, 3)])
    expected = [r["id"] for r in stored_rows(api_db)]
    r = await get_ok(api, "/api/obs_events?limit=2")
    assert [e["id"] for e in r.json()["events"]] == expected[:2]
    second = await get_ok(api, f"/api/obs_events?limit=2&cursor={r.headers['x-next-cursor']}")
    assert [e["id"] for e in second.json()["events"]] == expected[2:]
    assert "x-next-cursor" not in second.headers


async def test_cursors_of_another_shape_are_400(api_db, api):
    seed(api_db, obs_events, [event(1), event(2)])
    for cursor in (
        encode_cursor(["2026-11-22T11:59:00.000000+00:00", "res-1"]),
        encode_cursor([12]),
        encode_cursor(["2026-11-22T11:59:00.000000+00:00", 1, 2]),
        encode_cursor(["2026-11-22T11:59:00Z", 1]),
    ):
        await bad(api, f"/api/obs_events?cursor={cursor}", "cursor")


async def test_many_kinds_fall_back_to_one_list(api_db, api):
    kinds = [f"k{i:02d}" for i in range(MERGED_KINDS + 3)]
    seed(api_db, obs_events, [event(i, kind=k) for i, k in enumerate(kinds * 2)])
    wanted = set(kinds[1:])
    expected = [r["id"] for r in stored_rows(api_db) if r["kind"] in wanted]
    assert await ids(api, f"kinds={','.join(sorted(wanted))}&limit=50") == expected[:50]
    seen, _ = await walk(api, f"kinds={','.join(sorted(wanted))}&limit=4")
    assert seen == expected


# ----------------------------------------------------------------------------- kinds, sources


async def test_kinds_and_sources_are_distinct_and_sorted(varied, api):
    kinds = (await get_ok(api, "/api/obs_events/kinds")).json()
    assert kinds == {"kinds": sorted({r["kind"] for r in varied})}
    sources = (await get_ok(api, "/api/obs_events/sources")).json()
    assert sources == {"sources": sorted({r["source"] for r in varied})}


async def test_kinds_and_sources_of_an_empty_table(api):
    assert (await get_ok(api, "/api/obs_events/kinds")).json() == {"kinds": []}
    assert (await get_ok(api, "/api/obs_events/sources")).json() == {"sources": []}


# ----------------------------------------------------------------------------- recent


async def test_recent_is_the_newest_fleet_wide(varied, api):
    everything = served(varied)
    r = await get_ok(api, "/api/obs_events/recent")
    assert [e["id"] for e in r.json()["events"]] == everything[:50] and len(everything) < 50
    r = await get_ok(api, "/api/obs_events/recent?limit=3")
    assert [e["id"] for e in r.json()["events"]] == everything[:3]
    for value in ("0", "5001", "x"):
        await bad(api, f"/api/obs_events/recent?limit={value}", "limit")


# ----------------------------------------------------------------------------- lane seeds


async def test_lane_seeds_are_the_newest_event_per_pc_and_lane_before(api_db, api):
    seed(
        api_db,
        obs_events,
        [
            event(90, kind="boot"),
            event(80, kind="log_service_stopped"),  # power, newest before
            event(70, kind="logon"),
            event(70, kind="logoff"),  # same time: the higher id wins
            event(65, kind="sleep"),
            event(60, kind="logon"),  # exactly at `before`: not strictly before
            event(50, kind="resume"),  # after `before`
            event(75, kind="custom"),  # in no lane
            event(85, pc_id="PC-2", kind="idle"),
            event(95, pc_id="PC-2", kind="active"),
            event(99, pc_id="PC-3", kind="boot"),  # not asked for
            event(66, kind="active", payload="not json"),  # dropped like in the list
        ],
    )
    rows = stored_rows(api_db)
    before = ts(-60 * M)

    def newest(pc: str, lane: str) -> dict[str, Any] | None:
        found = [
            r for r in rows if r["pc_id"] == pc and r["kind"] in LANES[lane] and r["at"] < before
        ]
        return found[0] if found else None

    r = await get_ok(
        api, f"/api/obs_events/lane_seeds?pcs=PC-2,PC-1,PC-9,PC-1&before={api_time(before)}"
    )
    got = [(e["pc_id"], e["kind"], e["id"]) for e in r.json()["events"]]
    expected = [
        (pc, seed_row["kind"], seed_row["id"])
        for pc in ("PC-2", "PC-1")
        for lane in LANES
        for seed_row in [newest(pc, lane)]
        if seed_row is not None and decodable(seed_row)
    ]
    assert got == expected
    assert [kind for pc, kind, _ in got if pc == "PC-1"] == [
        "log_service_stopped",
        "logoff",
        "sleep",
    ]
    assert [kind for pc, kind, _ in got if pc == "PC-2"] == ["idle"]
    logoff = next(e for e in r.json()["events"] if e["kind"] == "logoff")
    assert logoff["at"] == api_time(ts(-70 * M)) and logoff["payload"] == {
        "logon_type": 2,
        "user": "taro",
    }


async def test_lane_seeds_parameters(api_db, api):
    path = "/api/obs_events/lane_seeds"
    before = "before=2026-11-22T11:00:00Z"
    await bad(api, f"{path}?{before}", "pcs")
    await bad(api, f"{path}?pcs=,%20,&{before}", "pcs")
    many = ",".join(f"PC-{i}" for i in range(65))
    await bad(api, f"{path}?pcs={many}&{before}", "pcs")
    await bad(api, f"{path}?pcs=PC-1", "before")
    await bad(api, f"{path}?pcs=PC-1&before=soon", "before")
    sixty_four = ",".join(f"PC-{i}" for i in range(64))
    assert (await get_ok(api, f"{path}?pcs={sixty_four}&{before}")).json() == {"events": []}


def test_lanes_are_the_spas_mapping():
    assert LANES == {
        "power": (
            "boot",
            "shutdown",
            "unexpected_shutdown",
            "log_service_started",
            "log_service_stopped",
        ),
        "session": ("logon", "logoff"),
        "sleep": ("sleep", "resume"),
        "active": ("active", "idle"),
    }


# ----------------------------------------------------------------------------- plans


# sqlite_stat1 as ANALYZE writes it for a million events of 30,000 PCs, 9 kinds
# and 2 sources: the statistics tests/bench seeds (projectord itself never runs
# ANALYZE, so production plans may go either way).
MILLION_EVENTS_STATS = [
    ("obs_events", "idx_obs_events_pc_at", "1000000 34 1"),
    ("obs_events", "idx_obs_events_kind_at", "1000000 111112 1"),
    ("obs_events", "idx_obs_events_source", "1000000 500000"),
    ("obs_events", "idx_obs_events_at", "1000000 1"),
    ("obs_events", "sqlite_autoindex_obs_events_1", "1000000 34 34 1"),
]


@pytest.mark.parametrize("statistics", [False, True], ids=["no-stats", "million-stats"])
def test_pages_read_through_an_index_in_order(api_db, db_path, statistics):
    if statistics:
        with api_db.begin() as conn:
            conn.exec_driver_sql("ANALYZE")  # creates sqlite_stat1
            conn.exec_driver_sql("DELETE FROM sqlite_stat1")
            conn.exec_driver_sql("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", MILLION_EVENTS_STATS)
    db = ReadDatabase(db_path)  # new connections load the statistics
    key = (ts(-5 * M), 17)

    def plan(conn: Any, filters: EventFilters) -> str:
        return explain(conn, _page_query(filters))

    default = db.query(plan, EventFilters())
    assert default == "SCAN obs_events USING INDEX idx_obs_events_at"
    later = db.query(plan, EventFilters(after=key, source="agent", kinds_ex=("idle",)))
    assert later == "SEARCH obs_events USING INDEX idx_obs_events_at (at<?)"
    window = db.query(plan, EventFilters(start=ts(-60 * M), end=ts(-30 * M)))
    assert window == "SEARCH obs_events USING INDEX idx_obs_events_at (at>? AND at<?)"
    pc = db.query(plan, EventFilters(pc_id="PC-1", kind="boot", source="agent", after=key))
    assert pc.startswith("SEARCH obs_events USING INDEX idx_obs_events_pc_at (pc_id=? AND at<?)")
    # A kind's page reads the kind index even where statistics make the time index
    # look cheaper: for a rare or absent kind that would be a scan of every event.
    kind = db.query(plan, EventFilters(kind="boot"))
    assert kind.startswith("SEARCH obs_events USING INDEX idx_obs_events_kind_at (kind=?)")
    filtered = db.query(plan, EventFilters(kind="boot", sources=("agent",)))
    assert filtered.startswith("SEARCH obs_events USING INDEX idx_obs_events_kind_at (kind=?)")
    merged = db.query(plan, EventFilters(kinds=LANES["power"]))
    assert merged.count("SEARCH obs_events USING INDEX idx_obs_events_kind_at (kind=?)") == 5
    merged_later = db.query(plan, EventFilters(kinds=LANES["power"], after=key))
    assert merged_later.count("USING INDEX idx_obs_events_kind_at (kind=? AND at<?)") == 5
    for text in (default, later, window, pc, kind, filtered, merged, merged_later):
        assert "idx_obs_events_source" not in text
        assert "SCAN obs_events " not in text.replace("SCAN obs_events USING INDEX", "")
    db.close()


def test_kinds_sources_and_lane_seeds_seek_rather_than_scan(api_db, db_path):
    db = ReadDatabase(db_path)
    statements: list[Any] = []

    def capture(conn: Any) -> None:
        # Run the real functions with a hook that records every statement's plan.
        def record(conn_: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
            statements.append(
                " / ".join(
                    r[3]
                    for r in cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}", params)
                )
            )

        sa_event.listen(conn, "before_cursor_execute", record)
        try:
            distinct_values(conn, "kind")
            distinct_values(conn, "source")
            lane_seeds(conn, ["PC-1", "PC-2"], ts())
        finally:
            sa_event.remove(conn, "before_cursor_execute", record)

    db.query(capture)
    kinds, sources, seeds = statements
    assert "SEARCH obs_events USING COVERING INDEX idx_obs_events_kind_at (kind>?)" in kinds
    assert "SEARCH obs_events USING COVERING INDEX idx_obs_events_source (source>?)" in sources
    assert seeds.count("SEARCH obs_events USING INDEX idx_obs_events_pc_at (pc_id=? AND at<?)") == 4
    db.close()
