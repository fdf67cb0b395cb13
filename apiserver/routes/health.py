"""``/api/health/*``: fleet health, scan durations per job, and our readiness probe.

Broker existence comes from projectord's ``broker_resources`` snapshot (apiserver
has no broker connection); everything else from the projection tables.
"""

from __future__ import annotations

from array import array as int_array
from collections.abc import Sequence
from datetime import timedelta
from functools import lru_cache
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Integer, and_, cast, func, inspect, select
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from starlette.requests import Request

from projectord.migrations import head_revision
from projectord.schema import (
    agents,
    broker_consumers,
    broker_streams,
    execution_results,
    projector_checkpoints,
)

from ..endpoint import CompactJSON, Endpoint, database, now
from ..online_rule import ONLINE_WINDOW
from ..openapi_types import array, boolean, integer, mapping, number, obj, string, timestamp
from ..params import Param, db_time
from ..readonly_db import DatabaseUnavailable
from ..wire_time import api_time, api_time_of
from .jetstream import present_resources

RECENT_HOURS = 24

# api.md 3.2: the resources /api/health/fleet requires (a subset of what
# projectord records; /api/jetstream/status reports all of them).
FLEET_PROBES: tuple[tuple[str, str], ...] = (
    *(("stream", n) for n in ("INVENTORY", "RESULTS", "EXEC", "EVENTS", "AUDIT")),
    *(
        ("kv", n)
        for n in (
            "script_current",
            "script_status",
            "agents_state",
            "agent_config",
            "agent_groups",
            "schedules",
        )
    ),
    ("object_store", "agent_releases"),
)


# --- /api/health/fleet ----------------------------------------------------------


def fleet_counts(conn: Connection, online_since: str, recent_since: str) -> dict[str, Any]:
    """Agent counts, results recorded since ``recent_since``, and present resources."""
    active = func.count().filter(agents.c.last_heartbeat >= online_since)
    known, online = conn.execute(select(func.count(), active).select_from(agents)).one()
    r = execution_results.c
    # exit_code <> 0 is NULL for in-flight rows, so they never count as failed.
    failed = func.count().filter(r.exit_code != 0)
    total, failures = conn.execute(
        select(func.count(), failed).where(r.recorded_at >= recent_since)
    ).one()
    return {
        "known": known,
        "active": online,
        "total": total,
        "failed": failures,
        "present": present_resources(conn),
    }


def fleet_health(counts: dict[str, Any], observed_at: str) -> dict[str, Any]:
    """The api.md 3.2 body; ``status`` ranks missing resources above an empty fleet."""
    missing = [name for kind, name in FLEET_PROBES if (kind, name) not in counts["present"]]
    known, active = counts["known"], counts["active"]
    if missing:
        status = "degraded"
    elif known == 0:
        status = "unknown"
    elif active == 0:
        status = "degraded"
    else:
        status = "ok"
    return {
        "status": status,
        "agents": {"known": known, "active": active, "stale": known - active},
        "jetstream": {
            "all_ok": not missing,
            "healthy": len(FLEET_PROBES) - len(missing),
            "total": len(FLEET_PROBES),
            "missing": missing,
        },
        "recent_results": {
            "window_hours": RECENT_HOURS,
            "total": counts["total"],
            "failed": counts["failed"],
        },
        "observed_at": observed_at,
    }


async def fleet(request: Request, args: dict[str, Any]) -> Any:
    at = now(request)
    counts = await database(request).run(
        fleet_counts, db_time(at - ONLINE_WINDOW), db_time(at - timedelta(hours=RECENT_HOURS))
    )
    body = fleet_health(counts, api_time_of(at))
    # The SPA reads the body of the 503 too.
    return CompactJSON(body, status_code=503 if body["status"] == "degraded" else 200)


# --- /api/health/scan_durations --------------------------------------------------

# (key, q as a fraction num/den) of the nearest-rank percentiles reported.
_PERCENTILES = (("p50_ms", 50, 100), ("p95_ms", 95, 100), ("p99_ms", 99, 100))


def nearest_rank(n: int, num: int, den: int) -> int:
    """The 0-based index ``ceil(q * n) - 1`` for ``q = num / den`` (``n >= 1``).

    Integer arithmetic, so float rounding (0.95 * 20 = 19.000000000000004)
    cannot move a rank.
    """
    return max((n * num + den - 1) // den, 1) - 1


def job_stats(job_id: str, sorted_us: Sequence[int], longest_id: str | None) -> dict[str, Any]:
    """The api.md 3.2 entry of one job from its durations (µs, ascending, non-empty)."""
    n = len(sorted_us)
    entry: dict[str, Any] = {"job_id": job_id, "count": n, "min_ms": sorted_us[0] // 1000}
    for key, num, den in _PERCENTILES:
        entry[key] = sorted_us[nearest_rank(n, num, den)] // 1000
    entry["max_ms"] = sorted_us[-1] // 1000
    entry["mean_ms"] = round(sum(sorted_us) / n / 1000, 3)
    entry["max_result_id"] = longest_id
    return entry


def _duration_us() -> Any:
    """finished_at - started_at in microseconds, exact for the stored fixed format.

    Whole seconds from unixepoch() of the text up to the seconds (unixepoch of
    the full text would round the fraction to milliseconds first, moving the
    second) plus the six fraction digits. julianday() would carry tens of
    microseconds of float error into the millisecond floor. NULL when a stored
    time cannot be read.
    """
    r = execution_results.c

    def whole_seconds(column: Any) -> Any:
        return func.unixepoch(func.substr(column, 1, 19))

    def micros(column: Any) -> Any:
        return cast(func.substr(column, 21, 6), Integer)

    seconds = whole_seconds(r.finished_at) - whole_seconds(r.started_at)
    return seconds * 1_000_000 + micros(r.finished_at) - micros(r.started_at)


def scan_durations_since(conn: Connection, since: str) -> list[dict[str, Any]]:
    """Per job, duration statistics of results with ``finished_at >= since``.

    Negative durations count as 0; results without a job or with unreadable
    times are left out. Sorted by p95 desc, then job_id. SQLite sorts the rows
    (job, duration, result_id) and they are streamed, so memory holds one job's
    durations at a time even for a wide ``since``.
    """
    r = execution_results.c
    # Only the finished_at range here: a job_id condition would lure the
    # planner onto idx_results_job_pc_finished (every row with a job) instead
    # of idx_results_finished. NULL jobs sort first and are skipped below.
    durations = (
        select(r.job_id, func.max(_duration_us(), 0).label("us"), r.result_id)
        .where(r.finished_at >= since)
        .subquery("durations")
    )
    d = durations.c
    rows = conn.execute(
        select(d.job_id, d.us, d.result_id)
        .where(d.us.is_not(None))
        .order_by(d.job_id, d.us, d.result_id)
    )
    out = []
    for job_id, group in groupby(rows, key=itemgetter(0)):
        if job_id is None:
            continue
        sorted_us = int_array("q")
        longest_id = None
        for _, us, result_id in group:
            sorted_us.append(us)
            longest_id = result_id  # ties on duration: the greatest result_id
        out.append(job_stats(job_id, sorted_us, longest_id))
    out.sort(key=lambda e: (-e["p95_ms"], e["job_id"]))
    return out


async def scan_durations(request: Request, args: dict[str, Any]) -> Any:
    since = args["since"] or now(request) - timedelta(hours=RECENT_HOURS)
    return await database(request).run(scan_durations_since, db_time(since))


# --- /api/health/ready -----------------------------------------------------------


@lru_cache(maxsize=1)
def _head() -> str | None:
    # Reads the migration scripts once; they do not change under a running process.
    return head_revision()


_ALEMBIC_VERSION = sql_table("alembic_version", sql_column("version_num"))


def schema_revisions(conn: Connection) -> list[str]:
    """The revisions recorded in ``alembic_version`` (empty before the first migration)."""
    if not inspect(conn).has_table("alembic_version"):
        return []
    return sorted(conn.execute(select(_ALEMBIC_VERSION.c.version_num)).scalars())


def freshness(conn: Connection) -> dict[str, Any]:
    """Newest broker snapshot time and each projector's checkpoint with its backlog."""
    newest = select(
        select(func.max(broker_streams.c.observed_at)).scalar_subquery(),
        select(func.max(broker_consumers.c.observed_at)).scalar_subquery(),
    )
    stamps = [s for s in conn.execute(newest).one() if s is not None]
    cp, bc = projector_checkpoints.c, broker_consumers.c
    joined = projector_checkpoints.join(
        broker_consumers, and_(bc.stream == cp.stream, bc.durable == cp.durable)
    )
    backlog = conn.execute(
        select(cp.projector, cp.updated_at, bc.pending, bc.ack_pending)
        .select_from(joined)
        .order_by(cp.projector)
    ).all()
    return {"snapshot_at": max(stamps, default=None), "projectors": backlog}


def readiness_checks(
    revisions: list[str] | None, fresh: dict[str, Any] | None, stale_before: str, head: str | None
) -> dict[str, dict[str, Any]]:
    """Every check as ``{ok, detail}``; ``None`` inputs mean that read failed or was skipped.

    ``revisions is None``: the database could not be read. ``fresh is None``:
    not read, because the schema is not the one this build queries.
    """
    checks: dict[str, dict[str, Any]] = {}
    if revisions is None:
        checks["database"] = {"ok": False, "detail": "the database cannot be read"}
        skipped = {"ok": False, "detail": "not checked: the database cannot be read"}
        return {**checks, "schema": skipped, "broker_snapshot": skipped, "projectors": skipped}
    checks["database"] = {"ok": True, "detail": "readable"}
    at = ", ".join(revisions) or "none (never migrated)"
    if revisions == [head]:
        checks["schema"] = {"ok": True, "detail": f"at head revision {head}"}
    else:
        checks["schema"] = {"ok": False, "detail": f"revision {at}, expected head {head}"}
    if fresh is None:
        skipped = {"ok": False, "detail": "not checked: the schema is not at head"}
        return {**checks, "broker_snapshot": skipped, "projectors": skipped}
    snapshot_at = fresh["snapshot_at"]
    if snapshot_at is None:
        checks["broker_snapshot"] = {"ok": False, "detail": "no broker snapshot yet"}
    elif snapshot_at < stale_before:
        checks["broker_snapshot"] = {
            "ok": False,
            "detail": f"newest broker snapshot is from {api_time(snapshot_at)}",
        }
    else:
        checks["broker_snapshot"] = {"ok": True, "detail": f"taken {api_time(snapshot_at)}"}
    # A projector is stuck when its consumer holds messages (undelivered, or
    # delivered and not acked) yet its checkpoint has not moved for a while.
    stuck = [
        f"{projector} (checkpoint updated {api_time(updated_at)}, {pending} pending,"
        f" {ack_pending} unacknowledged)"
        for projector, updated_at, pending, ack_pending in fresh["projectors"]
        if (pending or ack_pending) and updated_at < stale_before
    ]
    if stuck:
        checks["projectors"] = {"ok": False, "detail": "stale: " + "; ".join(stuck)}
    else:
        checks["projectors"] = {"ok": True, "detail": "no projector is behind"}
    return checks


async def ready(request: Request, args: dict[str, Any]) -> Any:
    stale_after = timedelta(seconds=request.app.state.settings.api["stale_after_s"])
    stale_before = db_time(now(request) - stale_after)
    head = _head()
    db = database(request)
    revisions: list[str] | None = None
    fresh: dict[str, Any] | None = None
    try:
        revisions = await db.run(schema_revisions)
        if revisions == [head]:
            fresh = await db.run(freshness)
    except DatabaseUnavailable:
        revisions = fresh = None  # the "database" check reports it; nothing else is known
    checks = readiness_checks(revisions, fresh, stale_before, head)
    is_ready = all(c["ok"] for c in checks.values())
    return CompactJSON({"ready": is_ready, "checks": checks}, status_code=200 if is_ready else 503)


# --- declarations ----------------------------------------------------------------

_FLEET = obj(
    status=string(enum=["ok", "unknown", "degraded"]),
    agents=obj(known=integer(), active=integer(), stale=integer()),
    jetstream=obj(all_ok=boolean(), healthy=integer(), total=integer(), missing=array(string())),
    recent_results=obj(window_hours=integer(), total=integer(), failed=integer()),
    observed_at=timestamp(),
)

_SCAN = array(
    obj(
        job_id=string(),
        count=integer(),
        min_ms=integer(),
        p50_ms=integer(),
        p95_ms=integer(),
        p99_ms=integer(),
        max_ms=integer(),
        mean_ms=number(),
        max_result_id=string(nullable=True),
    )
)

_READY = obj(ready=boolean(), checks=mapping(obj(ok=boolean(), detail=string())))

ENDPOINTS = [
    Endpoint(
        "/api/health/fleet",
        fleet,
        "Fleet health: agents online, required broker resources, results of the last 24 h.",
        _FLEET,
        statuses={
            503: "Degraded: a required broker resource is missing or no agent is online"
            " (same body as 200)."
        },
    ),
    Endpoint(
        "/api/health/scan_durations",
        scan_durations,
        "Run durations per job (nearest-rank percentiles) of results finished since `since`.",
        _SCAN,
        params=(
            Param(
                "since",
                "timestamp",
                "Only results with finished_at at or after this instant. Default: now - 24 h.",
            ),
        ),
    ),
    Endpoint(
        "/api/health/ready",
        ready,
        "Readiness: the database is readable, at the schema head, and the projection is fresh.",
        _READY,
        statuses={503: "Not ready; `checks` names what failed (same body as 200)."},
    ),
]
