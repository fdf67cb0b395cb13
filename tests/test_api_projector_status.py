"""/api/projector/status and /api/rejects over seeded bookkeeping rows."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

from api_harness import seed, ts
from hypothesis import given, settings
from hypothesis import strategies as st

from apiserver.params import decode_cursor, encode_cursor
from apiserver.routes.rejects import CURSOR_PATTERN
from apiserver.wire_time import api_time
from projectord.schema import (
    broker_consumers,
    broker_streams,
    kv_mirror_status,
    projector_checkpoints,
    projector_gaps,
    projector_rejects,
)

S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)


def z(delta: timedelta) -> str:
    """The API's spelling of the stored time ``delta`` from NOW."""
    return api_time(ts(delta))


def seed_status(engine) -> None:
    seed(
        engine,
        projector_checkpoints,
        [
            {
                "projector": "results",
                "stream": "RESULTS",
                "durable": "backend_results_projector",
                "last_seq": 40,
                "last_message_at": ts(-2 * M),
                "updated_at": ts(-M),
            },
            {  # no consumer or stream in the snapshot (yet)
                "projector": "audit",
                "stream": "AUDIT",
                "durable": "backend_audit_projector",
                "last_seq": 7,
                "updated_at": ts(-10 * M),
            },
        ],
    )
    seed(
        engine,
        broker_streams,
        [
            {
                "stream": "RESULTS",
                "messages": 55,
                "bytes": 5500,
                "first_seq": 1,
                "last_seq": 55,
                "consumers": 1,
                "observed_at": ts(-4 * S),
            },
            {
                "stream": "EVENTS",
                "messages": 0,
                "bytes": 0,
                "first_seq": 0,
                "last_seq": 0,
                "consumers": 1,
                "observed_at": ts(-4 * S),
            },
        ],
    )
    seed(
        engine,
        broker_consumers,
        [
            {
                "stream": "RESULTS",
                "durable": "backend_results_projector",
                "pending": 12,
                "ack_pending": 3,
                "redelivered": 1,
                "ack_floor_seq": 40,
                "delivered_seq": 43,
                "observed_at": ts(-2 * S),
            }
        ],
    )
    seed(
        engine,
        projector_rejects,
        [
            reject("results", 38, b"{bad", recorded=-30 * M),
            reject("results", 39, b"{worse", recorded=-20 * M),
            reject("heartbeat", None, b"\xff", recorded=-5 * M),
        ],
    )
    seed(
        engine,
        projector_gaps,
        [
            {
                "projector": p,
                "stream": s,
                "from_seq": f,
                "to_seq": f + 1,
                "missing": 2,
                "detected_at": ts(-H),
            }
            for p, s, f in (
                ("results", "RESULTS", 1),
                ("results", "RESULTS", 10),
                ("events", "EVENTS", 3),
            )
        ],
    )
    seed(
        engine,
        kv_mirror_status,
        [
            {"bucket": "jobs", "synced_at": ts(-90 * S), "changed_at": ts(-S), "key_count": 4},
            {"bucket": "schedules", "key_count": 0, "error": "no bucket", "error_at": ts(-S)},
        ],
    )


def reject(
    projector: str,
    seq: int | None,
    payload: bytes,
    recorded: timedelta,
    size: int | None = None,
    subject: str = "results.req-1",
) -> dict:
    return {
        "projector": projector,
        "stream": None if seq is None else projector.upper(),
        "stream_seq": seq,
        "subject": subject,
        "error": f"bad message in {projector}",
        "payload": payload,
        "payload_size": len(payload) if size is None else size,
        "published_at": None if seq is None else ts(recorded - S),
        "recorded_at": ts(recorded),
    }


async def test_projector_status_numbers(api_db, api):
    seed_status(api_db)
    r = await api.get("/api/projector/status")
    assert r.status_code == 200
    body = r.json()
    by_name = {p["projector"]: p for p in body["projectors"]}
    assert [p["projector"] for p in body["projectors"]] == sorted(by_name)
    assert set(by_name) == {"audit", "events", "heartbeat", "results"}
    assert by_name["results"] == {
        "projector": "results",
        "stream": "RESULTS",
        "durable": "backend_results_projector",
        "checkpoint": 40,
        "last_message_at": z(-2 * M),
        "updated_at": z(-M),
        "consumer": {
            "pending": 12,
            "ack_pending": 3,
            "redelivered": 1,
            "ack_floor_seq": 40,
            "delivered_seq": 43,
            "observed_at": z(-2 * S),
        },
        "lag": 55 - 40,
        "reject_count": 2,
        "gap_count": 2,
        "last_reject_at": z(-20 * M),
    }
    audit = by_name["audit"]
    assert (audit["checkpoint"], audit["consumer"], audit["lag"]) == (7, None, None)
    assert (audit["reject_count"], audit["gap_count"], audit["last_reject_at"]) == (0, 0, None)
    assert audit["last_message_at"] is None
    # A core-NATS projector: only its rejects.
    assert by_name["heartbeat"] == {
        "projector": "heartbeat",
        "stream": None,
        "durable": None,
        "checkpoint": None,
        "last_message_at": None,
        "updated_at": None,
        "consumer": None,
        "lag": None,
        "reject_count": 1,
        "gap_count": 0,
        "last_reject_at": z(-5 * M),
    }
    assert by_name["events"]["gap_count"] == 1 and by_name["events"]["checkpoint"] is None

    assert [s["stream"] for s in body["streams"]] == ["EVENTS", "RESULTS"]
    assert body["streams"][1] == {
        "stream": "RESULTS",
        "messages": 55,
        "bytes": 5500,
        "first_seq": 1,
        "last_seq": 55,
        "consumers": 1,
        "observed_at": z(-4 * S),
    }
    assert body["kv_mirrors"] == [
        {
            "bucket": "jobs",
            "synced_at": z(-90 * S),
            "changed_at": z(-S),
            "key_count": 4,
            "error": None,
            "error_at": None,
            "age_seconds": 90.0,
        },
        {
            "bucket": "schedules",
            "synced_at": None,
            "changed_at": None,
            "key_count": 0,
            "error": "no bucket",
            "error_at": z(-S),
            "age_seconds": None,
        },
    ]
    assert body["snapshot_at"] == z(-2 * S)  # the consumer row is the newest


async def test_projector_status_of_an_empty_database(api):
    body = (await api.get("/api/projector/status")).json()
    assert body == {"projectors": [], "streams": [], "kv_mirrors": [], "snapshot_at": None}


# --- /api/rejects ----------------------------------------------------------------------


def seed_rejects(engine) -> None:
    seed(
        engine,
        projector_rejects,
        [
            reject("results", 1, b'{"ok": "text"}', recorded=-50 * M),  # id 1
            reject("events", 2, b"\xff\xfe{oops", recorded=-40 * M),  # id 2: not UTF-8
            # id 3: a prefix cut inside "é" (c3 a9): the cut is not an encoding error
            reject("results", 3, b"caf\xc3", recorded=-30 * M, size=4000),
            reject("heartbeat", None, "héllo".encode(), recorded=-20 * M),  # id 4
            reject("results", 5, b"\xc3(", recorded=-10 * M, size=99),  # id 5: bad and cut
        ],
    )


async def test_rejects_newest_first_with_payloads_as_text_and_base64(api_db, api):
    seed_rejects(api_db)
    r = await api.get("/api/rejects")
    assert r.status_code == 200
    assert "X-Next-Cursor" not in r.headers  # 5 rows, limit 50
    rows = r.json()
    assert [row["id"] for row in rows] == [5, 4, 3, 2, 1]
    by_id = {row["id"]: row for row in rows}
    assert by_id[2] == {
        "id": 2,
        "projector": "events",
        "stream": "EVENTS",
        "stream_seq": 2,
        "subject": "results.req-1",
        "error": "bad message in events",
        "payload": "\ufffd\ufffd{oops",
        "payload_base64": base64.b64encode(b"\xff\xfe{oops").decode(),
        "payload_size": 7,
        "truncated": False,
        "published_at": z(-40 * M - S),
        "recorded_at": z(-40 * M),
    }
    assert by_id[1]["payload"] == '{"ok": "text"}' and "payload_base64" not in by_id[1]
    assert (by_id[3]["payload"], by_id[3]["truncated"], by_id[3]["payload_size"]) == (
        "caf",
        True,
        4000,
    )
    assert "payload_base64" not in by_id[3]
    assert by_id[4]["payload"] == "héllo" and by_id[4]["stream"] is None
    assert by_id[4]["stream_seq"] is None and by_id[4]["published_at"] is None
    assert by_id[5]["payload_base64"] == base64.b64encode(b"\xc3(").decode()
    assert by_id[5]["truncated"] is True

    detail = await api.get("/api/rejects/2")
    assert detail.status_code == 200 and detail.json() == by_id[2]


async def test_rejects_pages_by_cursor_and_filters_by_projector(api_db, api):
    seed_rejects(api_db)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        r = await api.get("/api/rejects", params=params)
        assert r.status_code == 200
        page = [row["id"] for row in r.json()]
        seen += page
        pages += 1
        cursor = r.headers.get("X-Next-Cursor")
        if cursor is None:
            assert len(page) < 2
            break
        assert len(page) == 2 and cursor == encode_cursor([page[-1]])
    assert seen == [5, 4, 3, 2, 1] and pages == 3

    r = await api.get("/api/rejects", params={"projector": "results", "limit": 2})
    assert [row["id"] for row in r.json()] == [5, 3]
    r = await api.get(
        "/api/rejects",
        params={"projector": "results", "limit": 2, "cursor": r.headers["X-Next-Cursor"]},
    )
    assert [row["id"] for row in r.json()] == [1]
    assert "X-Next-Cursor" not in r.headers
    r = await api.get("/api/rejects", params={"projector": "nobody"})
    assert r.json() == []


async def test_rejects_bad_parameters_are_400(api_db, api):
    seed_rejects(api_db)
    for params, name in (
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "%%%"}, "cursor"),
        ({"cursor": encode_cursor(["x"])}, "cursor"),
        ({"cursor": encode_cursor([1, 2])}, "cursor"),
    ):
        r = await api.get("/api/rejects", params=params)
        assert r.status_code == 400, params
        assert r.json()["parameter"] == name
    assert len((await api.get("/api/rejects", params={"limit": 500})).json()) == 5


async def test_reject_detail_unknown_is_404_and_bad_id_is_400(api_db, api):
    seed_rejects(api_db)
    r = await api.get("/api/rejects/99")
    assert r.status_code == 404 and "99" in r.json()["error"]
    r = await api.get("/api/rejects/abc")
    assert r.status_code == 400 and r.json()["parameter"] == "id"
    r = await api.get("/api/rejects/4")
    assert r.json()["payload"] == "héllo"


def test_the_cursor_pattern_admits_our_cursors_and_nothing_else():
    pattern = re.compile(CURSOR_PATTERN)
    for n in [*range(3000), 10**17, 123_456_789_012_345_678, 10**18 - 1]:
        assert pattern.fullmatch(encode_cursor([n])), n
    for values in ([10**18], [-1], ["7"], [1, 2]):
        assert not pattern.fullmatch(encode_cursor(values)), values
    for text in (b"[05]", b"[ 1]", b"[1.0]"):  # JSON decode_cursor would refuse or misread
        assert not pattern.fullmatch(base64.urlsafe_b64encode(text).decode().rstrip("="))

    @settings(max_examples=2000, database=None, derandomize=True)
    @given(st.from_regex(pattern, fullmatch=True))
    def decodes_to_an_id(text: str) -> None:
        (value,) = decode_cursor(text)
        assert isinstance(value, int) and 0 <= value < 10**18

    decodes_to_an_id()


async def test_gaps_newest_first_filtered_by_projector(api_db, api):
    gaps = [
        ("results", "RESULTS", 10, 19, timedelta(hours=-3)),
        ("events", "EVENTS", 5, 5, timedelta(hours=-2)),
        ("results", "RESULTS", 40, 99, timedelta(hours=-1)),
    ]
    seed(
        api_db,
        projector_gaps,
        [
            {
                "projector": p,
                "stream": s,
                "from_seq": lo,
                "to_seq": hi,
                "missing": hi - lo + 1,
                "detected_at": ts(at),
            }
            for p, s, lo, hi, at in gaps
        ],
    )
    everything = (await api.get("/api/projector/gaps")).json()
    assert [(g["projector"], g["from_seq"], g["missing"]) for g in everything] == [
        ("results", 40, 60),
        ("events", 5, 1),
        ("results", 10, 10),
    ]
    assert everything[0]["detected_at"] == api_time(ts(timedelta(hours=-1)))
    only = (await api.get("/api/projector/gaps", params={"projector": "events"})).json()
    assert [g["stream"] for g in only] == ["EVENTS"]
    one = (await api.get("/api/projector/gaps", params={"limit": 1})).json()
    assert [g["to_seq"] for g in one] == [99]
    bad = await api.get("/api/projector/gaps", params={"limit": 0})
    assert bad.status_code == 400 and bad.json()["parameter"] == "limit"
