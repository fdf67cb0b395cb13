"""/api/health/fleet, /api/health/scan_durations, /api/health/ready, /api/jetstream/status."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from math import ceil

from api_harness import NOW, client, seed, ts
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy import update

from apiserver.routes.health import FLEET_PROBES, nearest_rank
from apiserver.wire_time import api_time_of
from projectord.broker_status import (
    PROBED_KV,
    PROBED_OBJECT_STORES,
    PROBED_STREAMS,
    probed_resources,
)
from projectord.schema import (
    agents,
    broker_consumers,
    broker_resources,
    broker_streams,
    execution_results,
    projector_checkpoints,
)

S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)
FLEET_NAMES = [name for _, name in FLEET_PROBES]


def resources(engine, absent: set[str] = frozenset()) -> None:
    """Every probed resource recorded, present unless named in ``absent``."""
    rows = [
        {"kind": kind, "name": name, "present": int(name not in absent), "observed_at": ts(-3 * S)}
        for kind, name, _ in probed_resources()
    ]
    seed(engine, broker_resources, rows)


def agent(pc_id: str, heartbeat_ago: timedelta) -> dict:
    return {"pc_id": pc_id, "last_heartbeat": ts(-heartbeat_ago), "updated_at": ts()}


def result(result_id: str, **row) -> dict:
    base = {"result_id": result_id, "request_id": f"req-{result_id}", "pc_id": "pc-1"}
    return {**base, **row}


# --- /api/health/fleet -----------------------------------------------------------


def test_fleet_probes_are_api_md_and_recorded_by_projectord():
    assert FLEET_NAMES == [
        *("INVENTORY", "RESULTS", "EXEC", "EVENTS", "AUDIT"),
        *("script_current", "script_status", "agents_state", "agent_config", "agent_groups"),
        *("schedules", "agent_releases"),
    ]
    recorded = {(kind, name) for kind, name, _ in probed_resources()}
    assert set(FLEET_PROBES) <= recorded


async def test_fleet_before_projectord_ever_ran_is_degraded_with_everything_missing(api):
    r = await api.get("/api/health/fleet")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "degraded"
    assert body["jetstream"] == {
        "all_ok": False,
        "healthy": 0,
        "total": 12,
        "missing": FLEET_NAMES,
    }
    assert body["agents"] == {"known": 0, "active": 0, "stale": 0}
    assert body["observed_at"] == api_time_of(NOW)


async def test_fleet_ok_counts_agents_and_recent_results(api_db, api):
    resources(api_db)
    seed(
        api_db,
        agents,
        [
            agent("pc-1", 30 * S),
            agent("pc-2", 119 * S),
            agent("pc-3", 121 * S),  # just outside the 2-minute rule
            agent("pc-4", 3 * H),
            {"pc_id": "pc-5", "updated_at": ts()},  # never sent a heartbeat
        ],
    )
    seed(
        api_db,
        execution_results,
        [
            result("ok", exit_code=0, started_at=ts(-H), finished_at=ts(-H), recorded_at=ts(-H)),
            result("bad", exit_code=2, started_at=ts(-H), finished_at=ts(-H), recorded_at=ts(-H)),
            result("neg", exit_code=-1, started_at=ts(-H), finished_at=ts(-H), recorded_at=ts(-H)),
            result("flight", started_at=ts(-M), recorded_at=ts(-M)),  # in flight: not failed
            result(  # older than 24 h: outside the window
                "old",
                exit_code=1,
                started_at=ts(-25 * H),
                finished_at=ts(-25 * H),
                recorded_at=ts(-24 * H - S),
            ),
        ],
    )
    r = await api.get("/api/health/fleet")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["agents"] == {"known": 5, "active": 2, "stale": 3}
    assert body["recent_results"] == {"window_hours": 24, "total": 4, "failed": 2}
    assert body["jetstream"] == {"all_ok": True, "healthy": 12, "total": 12, "missing": []}


async def test_fleet_without_agents_is_unknown_and_all_stale_is_degraded(api_db, api):
    resources(api_db)
    r = await api.get("/api/health/fleet")
    assert (r.status_code, r.json()["status"]) == (200, "unknown")
    seed(api_db, agents, [agent("pc-1", 10 * M), agent("pc-2", 3 * M)])
    r = await api.get("/api/health/fleet")
    assert r.status_code == 503
    assert r.json()["status"] == "degraded"
    assert r.json()["agents"] == {"known": 2, "active": 0, "stale": 2}
    assert r.json()["jetstream"]["all_ok"] is True


async def test_a_missing_resource_degrades_the_fleet_even_with_agents_online(api_db, api):
    # Absent ones outside the fleet's probe list do not count.
    resources(api_db, absent={"agents_state", "agent_releases", "agent_meta", "NOTIFICATIONS"})
    seed(api_db, agents, [agent("pc-1", S)])
    r = await api.get("/api/health/fleet")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "degraded"
    assert body["jetstream"] == {
        "all_ok": False,
        "healthy": 10,
        "total": 12,
        "missing": ["agents_state", "agent_releases"],
    }
    assert body["agents"]["active"] == 1


# --- /api/health/scan_durations ----------------------------------------------------


def reference_stats(durations_ms: list[float]) -> dict:
    """The api.md definition, independently: nearest rank ceil(q n) - 1, exact fractions."""
    ordered = sorted(max(d, 0) for d in durations_ms)
    n = len(ordered)

    def pick(q: Fraction) -> int:
        return int(ordered[ceil(q * n) - 1])

    return {
        "count": n,
        "min_ms": int(ordered[0]),
        "p50_ms": pick(Fraction(1, 2)),
        "p95_ms": pick(Fraction(95, 100)),
        "p99_ms": pick(Fraction(99, 100)),
        "max_ms": int(ordered[-1]),
    }


def timed(result_id: str, job_id: str | None, ms: float, finished_ago: timedelta) -> dict:
    finished = NOW - finished_ago
    started = finished - timedelta(milliseconds=ms)
    return result(
        result_id,
        job_id=job_id,
        exit_code=0,
        started_at=ts(base=started),
        finished_at=ts(base=finished),
        recorded_at=ts(base=finished),
    )


def test_nearest_rank_is_exact_where_floats_are_not():
    # 0.07 * 100 = 7.000000000000001 in floats, whose ceil would pick rank 8.
    assert nearest_rank(100, 7, 100) == 6
    assert nearest_rank(20, 95, 100) == 18 and nearest_rank(20, 99, 100) == 19
    assert nearest_rank(1, 50, 100) == 0 and nearest_rank(7, 50, 100) == 3


async def test_scan_durations_nearest_rank_per_job(api_db, api):
    inv_ms = [1000 * k for k in range(20, 0, -1)]  # 1 s .. 20 s, seeded out of order
    patch_ms = [250.9, 1.999, -5000, 700, 700, 42, 3000.5]  # a negative one counts as 0
    rows = [timed(f"inv-{i:02d}", "inv-hw", ms, i * M) for i, ms in enumerate(inv_ms)]
    rows += [timed(f"patch-{i}", "patch", ms, 2 * H + i * S) for i, ms in enumerate(patch_ms)]
    rows += [
        timed("patch-old", "patch", 999_999, 25 * H),  # finished before `since`
        timed("adhoc", None, 50_000, M),  # no job: nothing to report it under
        result("running", job_id="inv-hw", started_at=ts(-H), recorded_at=ts(-H)),
    ]
    seed(api_db, execution_results, rows)

    r = await api.get("/api/health/scan_durations")
    assert r.status_code == 200
    body = r.json()
    assert [e["job_id"] for e in body] == ["inv-hw", "patch"]  # p95 desc
    inv, patch = body
    assert inv == {
        "job_id": "inv-hw",
        **reference_stats(inv_ms),
        "mean_ms": 10500.0,
        "max_result_id": "inv-00",
    }
    assert (inv["p50_ms"], inv["p95_ms"], inv["p99_ms"]) == (10000, 19000, 20000)
    assert patch == {
        "job_id": "patch",
        **reference_stats(patch_ms),
        "mean_ms": round((250.9 + 1.999 + 0 + 700 + 700 + 42 + 3000.5) / 7, 3),
        "max_result_id": "patch-6",
    }
    assert (patch["min_ms"], patch["p50_ms"], patch["max_ms"]) == (0, 250, 3000)

    # An earlier `since` takes in the older run, which becomes patch's longest.
    since = ts(-26 * H).replace("+00:00", "Z")
    body = (await api.get("/api/health/scan_durations", params={"since": since})).json()
    assert body[0]["job_id"] == "patch"
    assert body[0]["count"] == 8 and body[0]["max_result_id"] == "patch-old"
    assert body[0]["max_ms"] == 999_999

    # A `since` after every finish: no jobs.
    later = await api.get("/api/health/scan_durations", params={"since": "2026-11-23T00:00:00Z"})
    assert later.json() == []


async def test_scan_durations_rejects_a_bad_since(api):
    r = await api.get("/api/health/scan_durations", params={"since": "yesterday"})
    assert r.status_code == 400
    assert r.json()["parameter"] == "since"


# --- /api/jetstream/status -------------------------------------------------------------


async def test_jetstream_status_lists_every_probed_name(api_db, api):
    r = await api.get("/api/jetstream/status")
    assert r.status_code == 200
    body = r.json()
    assert [s["name"] for s in body["streams"]] == list(PROBED_STREAMS)
    assert not any(e["exists"] for part in body.values() for e in part)

    resources(api_db, absent={"NOTIFICATIONS", "group_contacts", "app_packages"})
    body = (await api.get("/api/jetstream/status")).json()
    assert body["streams"][-1] == {"name": "NOTIFICATIONS", "exists": False}
    assert body["streams"][0] == {"name": "INVENTORY", "exists": True}
    assert [k["name"] for k in body["kv_buckets"]] == list(PROBED_KV)
    assert [k["name"] for k in body["kv_buckets"] if not k["exists"]] == ["group_contacts"]
    assert [o["name"] for o in body["object_stores"]] == list(PROBED_OBJECT_STORES)
    assert [o["name"] for o in body["object_stores"] if not o["exists"]] == ["app_packages"]
    assert len(PROBED_STREAMS) + len(PROBED_KV) + len(PROBED_OBJECT_STORES) == 26


# --- /api/health/ready -----------------------------------------------------------------


def healthy_projection(engine, snapshot_ago: timedelta = 3 * S) -> None:
    seed(
        engine,
        broker_streams,
        [
            {
                "stream": "RESULTS",
                "messages": 9,
                "bytes": 900,
                "first_seq": 1,
                "last_seq": 9,
                "consumers": 1,
                "observed_at": ts(-snapshot_ago),
            }
        ],
    )
    seed(
        engine,
        projector_checkpoints,
        [
            {
                "projector": "results",
                "stream": "RESULTS",
                "durable": "backend_results_projector",
                "last_seq": 9,
                "updated_at": ts(-H),  # idle for an hour: fine, nothing is pending
            }
        ],
    )
    seed(
        engine,
        broker_consumers,
        [
            {
                "stream": "RESULTS",
                "durable": "backend_results_projector",
                "pending": 0,
                "ack_pending": 0,
                "redelivered": 0,
                "ack_floor_seq": 9,
                "delivered_seq": 9,
                "observed_at": ts(-snapshot_ago),
            }
        ],
    )


async def test_ready_when_everything_is_fresh(api_db, api):
    healthy_projection(api_db)
    r = await api.get("/api/health/ready")
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True
    assert set(body["checks"]) == {"database", "schema", "broker_snapshot", "projectors"}
    assert all(c["ok"] for c in body["checks"].values())
    assert body["checks"]["broker_snapshot"]["detail"] == f"taken {api_time_of(NOW - 3 * S)}"


async def test_not_ready_without_a_database_file(tmp_path):
    async with client(tmp_path / "nowhere" / "backend.db") as c:
        r = await c.get("/api/health/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["ready"] is False
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["schema"] == {
        "ok": False,
        "detail": "not checked: the database cannot be read",
    }


async def test_not_ready_on_another_schema_revision(api_db, api):
    healthy_projection(api_db)
    version = sql_table("alembic_version", sql_column("version_num"))
    with api_db.begin() as conn:
        conn.execute(update(version).values(version_num="0003"))
    r = await api.get("/api/health/ready")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["schema"]["ok"] is False
    assert "revision 0003" in checks["schema"]["detail"]
    assert checks["projectors"]["ok"] is False  # not checked against a foreign schema


async def test_not_ready_when_the_broker_snapshot_is_stale(api_db, db_path):
    healthy_projection(api_db, snapshot_ago=6 * M)  # stale_after_s defaults to 300
    async with client(db_path) as c:
        r = await c.get("/api/health/ready")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["broker_snapshot"] == {
        "ok": False,
        "detail": f"newest broker snapshot is from {api_time_of(NOW - 6 * M)}",
    }
    assert checks["schema"]["ok"] and checks["projectors"]["ok"]
    # The same snapshot is fresh enough under a longer setting.
    async with client(db_path, stale_after_s=600) as c:
        assert (await c.get("/api/health/ready")).json()["ready"] is True


async def test_not_ready_without_any_snapshot(api):
    r = await api.get("/api/health/ready")
    assert r.status_code == 503
    assert r.json()["checks"]["broker_snapshot"] == {
        "ok": False,
        "detail": "no broker snapshot yet",
    }


async def test_not_ready_when_a_projector_with_a_backlog_stops_moving(api_db, api):
    healthy_projection(api_db)
    with api_db.begin() as conn:
        conn.execute(update(broker_consumers).values(pending=5))
    r = await api.get("/api/health/ready")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["broker_snapshot"]["ok"] is True
    assert checks["projectors"]["ok"] is False
    assert checks["projectors"]["detail"].startswith(
        f"stale: results (checkpoint updated {api_time_of(NOW - H)}, 5 pending"
    )
    # The checkpoint moving again makes it ready.
    with api_db.begin() as conn:
        conn.execute(update(projector_checkpoints).values(updated_at=ts(-S)))
    assert (await api.get("/api/health/ready")).status_code == 200
