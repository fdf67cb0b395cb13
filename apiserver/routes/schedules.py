"""``/api/schedules`` and its sub-resources (api.md 3.10), plus the scheduler's memory.

Schedules come from the ``schedules`` KV mirror (``kv_entries``) and are checked
with projectord's own ``parse_schedule``: an entry it refuses is left out of the
list (``/api/schedules/rejects`` shows what the scheduler refused and why) and
answers 404 naming the problem on the per-schedule routes. Ours beyond the
original: ``/api/schedules/{id}/fires``, every decision the scheduler recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, func, select
from starlette.requests import Request

from projectord.scheduler.schedule import Schedule, Target, parse_schedule
from projectord.schema import execution_results, kv_entries, schedule_fires, scheduler_rejects

from ..endpoint import CompactJSON, Endpoint, NotFound, database, now
from ..keyset import CURSOR_HELP, NEXT_CURSOR, NEXT_CURSOR_HELP
from ..openapi_types import array, boolean, integer, obj, string, timestamp
from ..params import Param, db_time
from ..schedule_coverage import (
    STATES,
    PcRuns,
    agent_rows,
    counts,
    covered_target,
    read_fleet,
    read_job_runs,
    roster,
)
from ..schedule_preview import preview, soonest, when_display
from ..time_id_cursor import CURSOR_PATTERN, TimeIdKey, after, cursor_key, next_cursor_headers
from ..wire_time import api_time, api_time_of

BUCKET = "schedules"
RECENT_WINDOW_HOURS = 24
MAX_FIRES_LIMIT = 1000

_kv = kv_entries.c
_r = execution_results.c
_f = schedule_fires.c


@dataclass(frozen=True)
class Entry:
    """An entry of the schedules bucket: the stored object and what the scheduler makes of it."""

    key: str
    body: Any  # the decoded JSON (None when the value is not JSON)
    schedule: Schedule | None  # None when invalid
    error: str | None  # why it is invalid


def parse_entry(key: str, value: str) -> Entry:
    """The entry as the scheduler sees it."""
    try:
        body = json.loads(value)
    except (ValueError, RecursionError):
        body = None
    try:
        return Entry(key, body, parse_schedule(key, value), None)
    except Exception as exc:  # parse_schedule can also crash on odd JSON types (tz: 5)
        error = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        return Entry(key, body, None, error)


def read_entries(conn: Connection) -> list[Entry]:
    """Every entry of the schedules mirror, by key."""
    stmt = select(_kv.key, _kv.value).where(_kv.bucket == BUCKET).order_by(_kv.key)
    return [parse_entry(key, value) for key, value in conn.execute(stmt)]


def read_entry(conn: Connection, key: str) -> Entry | None:
    """The entry stored under ``key``, or None."""
    stmt = select(_kv.value).where(_kv.bucket == BUCKET, _kv.key == key)
    value = conn.execute(stmt).scalar()
    return None if value is None else parse_entry(key, value)


def valid(entry: Entry | None, schedule_id: str) -> tuple[dict[str, Any], Schedule]:
    """The stored object and schedule; NotFound when absent or invalid (and why)."""
    if entry is None:
        raise NotFound(f"no schedule {schedule_id!r}")
    if entry.schedule is None:
        raise NotFound(f"schedule {schedule_id!r} is invalid and not scheduled: {entry.error}")
    return entry.body, entry.schedule


# --------------------------------------------------------------------------- queries


def list_schedules(conn: Connection) -> list[dict[str, Any]]:
    """The valid schedules as stored, by id."""
    return [e.body for e in read_entries(conn) if e.schedule is not None]


def list_rejects(conn: Connection) -> list[dict[str, Any]]:
    """What the scheduler refused, newest first (then kind and key)."""
    c = scheduler_rejects.c
    stmt = select(c.kind, c.key, c.revision, c.error, c.seen_at).order_by(
        c.seen_at.desc(), c.kind, c.key
    )
    return [{**row._mapping, "seen_at": api_time(row.seen_at)} for row in conn.execute(stmt)]


def upcoming(conn: Connection, at: datetime, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` soonest fires over every enabled backend calendar schedule."""
    entries = {e.key: e for e in read_entries(conn) if e.schedule is not None}
    chosen = soonest([e.schedule for e in entries.values() if e.schedule], at, limit)
    return [
        {
            "id": s.id,
            "job_id": s.job_id,
            "when": when_display(entries[s.id].body["when"]),
            "at": api_time_of(instant),
        }
        for instant, s in chosen
    ]


def all_coverage(conn: Connection, at: datetime) -> list[dict[str, Any]]:
    """Coverage counts of every valid schedule, by id."""
    fleet = read_fleet(conn)
    rosters: dict[Target, tuple[list[str], frozenset[str]]] = {}  # schedules share targets
    whole_jobs: dict[str, dict[str, PcRuns]] = {}
    out = []
    for entry in read_entries(conn):
        s = entry.schedule
        if s is None:
            continue
        target = covered_target(s)
        if target not in rosters:
            pcs = roster(target, fleet, at)
            rosters[target] = pcs, frozenset(pcs)
        pcs, members = rosters[target]
        runs = read_job_runs(conn, s.job_id, pcs, whole_jobs)
        out.append({"id": s.id, "job_id": s.job_id, **counts(members, runs)})
    return out


def coverage(conn: Connection, schedule_id: str, at: datetime) -> dict[str, Any]:
    """One schedule's coverage with the per-PC list; NotFound when absent or invalid."""
    body, s = valid(read_entry(conn, schedule_id), schedule_id)
    pcs = roster(covered_target(s), read_fleet(conn), at)
    runs = read_job_runs(conn, s.job_id, pcs)
    return {
        "id": s.id,
        "when": when_display(body["when"]),
        "job_id": s.job_id,
        "runs_on": "agent" if s.runs_on_agent else "backend",
        **counts(frozenset(pcs), runs),
        "agents": agent_rows(pcs, runs),
    }


def last_run(conn: Connection, job_id: str) -> dict[str, Any] | None:
    """The job's result with the newest ``recorded_at`` (then ``result_id``), or None."""
    row = conn.execute(
        select(_r.pc_id, _r.exit_code, _r.started_at, _r.finished_at)
        .where(_r.job_id == job_id)
        .order_by(_r.recorded_at.desc(), _r.result_id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return {
        "pc_id": row.pc_id,
        "exit_code": row.exit_code,
        "started_at": api_time(row.started_at),
        "finished_at": api_time(row.finished_at),
    }


def recent(conn: Connection, job_id: str, at: datetime) -> dict[str, int]:
    """Finished runs of the job recorded in the last 24 h: exit 0, and non-NULL exit != 0."""
    since = db_time(at - timedelta(hours=RECENT_WINDOW_HOURS))
    ok = func.count(case((_r.exit_code == 0, 1)))
    fail = func.count(case((_r.exit_code != 0, 1)))
    row = conn.execute(
        select(ok, fail).where(
            _r.job_id == job_id, _r.recorded_at >= since, _r.finished_at.is_not(None)
        )
    ).one()
    return {"window_hours": RECENT_WINDOW_HOURS, "ok": row[0], "fail": row[1]}


def status(conn: Connection, schedule_id: str, at: datetime) -> dict[str, Any]:
    """One schedule's status; NotFound when absent or invalid."""
    body, s = valid(read_entry(conn, schedule_id), schedule_id)
    fires = preview(s, at, 1).fires
    return {
        "id": s.id,
        "when": when_display(body["when"]),
        "tz": body.get("tz") or "local",
        "enabled": s.enabled,
        "next_run": api_time_of(fires[0]) if fires else None,
        "last_run": last_run(conn, s.job_id),
        "recent": recent(conn, s.job_id, at),
    }


def schedule_preview(conn: Connection, schedule_id: str, at: datetime, count: int) -> Any:
    """The next ``count`` fires; NotFound when absent or invalid."""
    _, s = valid(read_entry(conn, schedule_id), schedule_id)
    found = preview(s, at, count)
    return {"id": s.id, "fires": [api_time_of(t) for t in found.fires], "note": found.note}


def fires_page(
    conn: Connection, schedule_id: str, limit: int, after_key: TimeIdKey | None
) -> tuple[list[dict[str, Any]], TimeIdKey | None] | None:
    """Recorded decisions newest ``due_at`` first (then id), and the key to continue after.

    None when the schedule is neither in KV nor in the record (unknown id); a
    deleted schedule keeps its history.
    """
    stmt = select(
        _f.id,
        _f.due_at,
        _f.last_due_at,
        _f.repeats,
        _f.decided_at,
        _f.outcome,
        _f.reason,
        _f.exec_id,
        _f.target_count,
        _f.job_id,
    ).where(_f.schedule_id == schedule_id)
    if after_key is not None:
        stmt = stmt.where(after(_f.due_at, _f.id, after_key))
    rows = conn.execute(stmt.order_by(_f.due_at.desc(), _f.id.desc()).limit(limit + 1)).all()
    if not rows and after_key is None:
        in_kv = select(_kv.key).where(_kv.bucket == BUCKET, _kv.key == schedule_id)
        if conn.execute(in_kv).first() is None:
            return None
    kept = rows[:limit]
    next_key = (kept[-1].due_at, kept[-1].id) if len(rows) > limit else None
    return [
        {
            "due_at": api_time(r.due_at),
            "last_due_at": api_time(r.last_due_at),
            "repeats": r.repeats,
            "decided_at": api_time(r.decided_at),
            "outcome": r.outcome,
            "reason": r.reason,
            "exec_id": r.exec_id,
            "target_count": r.target_count,
            "job_id": r.job_id,
        }
        for r in kept
    ], next_key


# --------------------------------------------------------------------------- handlers


async def schedule_list(request: Request, args: dict[str, Any]) -> Any:
    return await database(request).run(list_schedules)


async def reject_list(request: Request, args: dict[str, Any]) -> Any:
    return await database(request).run(list_rejects)


async def upcoming_list(request: Request, args: dict[str, Any]) -> Any:
    return await database(request).run(upcoming, now(request), args["limit"])


async def coverage_list(request: Request, args: dict[str, Any]) -> Any:
    return await database(request).run(all_coverage, now(request))


async def schedule_status(request: Request, args: dict[str, Any]) -> Any:
    return await database(request).run(status, args["id"], now(request))


async def schedule_coverage(request: Request, args: dict[str, Any]) -> Any:
    return await database(request).run(coverage, args["id"], now(request))


async def preview_fires(request: Request, args: dict[str, Any]) -> Any:
    return await database(request).run(schedule_preview, args["id"], now(request), args["count"])


async def fire_list(request: Request, args: dict[str, Any]) -> Any:
    key = cursor_key(args["cursor"])
    page = await database(request).run(fires_page, args["id"], args["limit"], key)
    if page is None:
        raise NotFound(f"no schedule {args['id']!r} (not in KV and no recorded decision)")
    rows, next_key = page
    return CompactJSON(rows, headers=next_cursor_headers(next_key))


# --------------------------------------------------------------------------- declarations

SCHEDULE = {"type": "object", "description": "A Schedule as stored in KV (wire-contract 6.10)."}
REJECT = obj(kind=string(), key=string(), revision=integer(), error=string(), seen_at=timestamp())
COUNTS = obj(
    id=string(),
    job_id=string(),
    total=integer(),
    ok=integer(),
    fail=integer(),
    running=integer(),
    pending=integer(),
)
STATUS = obj(
    id=string(),
    when=string(),
    tz=string(),
    enabled=boolean(),
    next_run=timestamp(nullable=True),
    last_run=obj(
        nullable=True,
        pc_id=string(),
        exit_code=integer(nullable=True),
        started_at=timestamp(nullable=True),
        finished_at=timestamp(nullable=True),
    ),
    recent=obj(window_hours=integer(), ok=integer(), fail=integer()),
)
COVERAGE = obj(
    id=string(),
    when=string(),
    job_id=string(),
    runs_on=string(enum=["backend", "agent"]),
    total=integer(),
    ok=integer(),
    fail=integer(),
    running=integer(),
    pending=integer(),
    agents=array(
        obj(
            optional=("version", "finished_at"),
            pc_id=string(),
            state=string(enum=list(STATES)),
            version=string(),
            finished_at=timestamp(),
        )
    ),
)
PREVIEW = obj(id=string(), fires=array(timestamp()), note=string(nullable=True))
FIRE = obj(
    due_at=timestamp(),
    last_due_at=timestamp(),
    repeats=integer(),
    decided_at=timestamp(),
    outcome=string(),
    reason=string(nullable=True),
    exec_id=string(nullable=True),
    target_count=integer(nullable=True),
    job_id=string(nullable=True),
)

ID = Param("id", "string", "The schedule id (its KV key).", where="path")
INVALID = (
    "No schedule with this id, or it is stored but invalid (the error says why; "
    "/api/schedules/rejects lists what the scheduler refused)."
)

# Fixed paths first: /api/schedules/{id}/... must not swallow them.
ENDPOINTS = [
    Endpoint(
        "/api/schedules",
        schedule_list,
        "Every valid schedule exactly as stored in KV `schedules`, by id. Entries the "
        "scheduler refuses are left out: see /api/schedules/rejects.",
        array(SCHEDULE),
    ),
    Endpoint(
        "/api/schedules/rejects",
        reject_list,
        "Schedules and jobs the scheduler refused as invalid (kind 'schedule' or 'job'), "
        "with the KV revision it read and why; newest first.",
        array(REJECT),
    ),
    Endpoint(
        "/api/schedules/upcoming",
        upcoming_list,
        "The soonest fires across every enabled calendar schedule the backend runs, by "
        "instant then id. Gates (active, window, skip_dates) applied; freeze not applied.",
        array(obj(id=string(), job_id=string(), when=string(), at=timestamp())),
        params=(
            Param(
                "limit",
                "integer",
                "How many fires, 1 to 100 (clamped).",
                default=10,
                minimum=1,
                maximum=100,
                clamp=True,
            ),
        ),
    ),
    Endpoint(
        "/api/schedules/coverage",
        coverage_list,
        "Coverage counts of every valid schedule, by id: roster = target PCs including "
        "offline ones; per PC running, ok, fail or pending by the job's results.",
        array(COUNTS),
    ),
    Endpoint(
        "/api/schedules/{id}/status",
        schedule_status,
        "A schedule's one-liner, zone, enabled flag, next fire (first preview instant; null "
        "for shapes without fire instants and for disabled or agent-run schedules), the "
        "job's newest result by recorded_at, and its finished results of the last 24 h. "
        "404 for an unknown id and for a stored but invalid schedule (the error says why).",
        STATUS,
        params=(ID,),
        statuses={404: INVALID},
    ),
    Endpoint(
        "/api/schedules/{id}/coverage",
        schedule_coverage,
        "Per-PC coverage of a schedule's job over its roster (target PCs including offline "
        "ones; a rollout without a target covers its waves' groups). State, first match: "
        "running (an unfinished row), ok (latest finished row by finished_at then result_id "
        "exited 0), fail, pending (no row). 404 for an unknown or invalid schedule.",
        COVERAGE,
        params=(ID,),
        statuses={404: INVALID},
    ),
    Endpoint(
        "/api/schedules/{id}/preview",
        preview_fires,
        "The next fire instants (UTC) of a calendar schedule, as the scheduler will fire "
        "them: in the schedule's zone with its DST rules, honouring active, "
        "constraints.window and skip_dates (the fleet freeze is not applied). Reconcile "
        "and event shapes, disabled and agent-run schedules: no instants and a note. "
        "404 for an unknown or invalid schedule.",
        PREVIEW,
        params=(
            ID,
            Param(
                "count",
                "integer",
                "How many fires, 1 to 50 (clamped).",
                default=5,
                minimum=1,
                maximum=50,
                clamp=True,
            ),
        ),
        statuses={404: INVALID},
    ),
    Endpoint(
        "/api/schedules/{id}/fires",
        fire_list,
        "Every decision the scheduler recorded for a schedule (fired, skipped and why, "
        "failed), newest due_at first. Consecutive identical skips are one row: due_at is "
        "the first, last_due_at the last, repeats how many. A deleted schedule keeps its "
        "history; 404 only when the id is neither in KV nor in the record.",
        array(FIRE),
        params=(
            ID,
            Param(
                "limit",
                "integer",
                f"Rows per page, 1 to {MAX_FIRES_LIMIT}.",
                default=100,
                minimum=1,
                maximum=MAX_FIRES_LIMIT,
            ),
            Param("cursor", "cursor", CURSOR_HELP, pattern=CURSOR_PATTERN),
        ),
        statuses={404: "Neither a schedule in KV nor any recorded decision has this id."},
        headers={NEXT_CURSOR: NEXT_CURSOR_HELP},
    ),
]
