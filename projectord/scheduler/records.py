"""The scheduler's reads and writes of the database (run on the writer thread).

Decisions go to ``schedule_fires``; invalid schedules and jobs to
``scheduler_rejects``; calendar progress to ``schedule_calendar_state``. The
fleet state a tick needs (completions, in-flight runs) is read here too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects.sqlite import insert

from ..schema import (
    execution_results,
    executions,
    kv_entries,
    schedule_calendar_state,
    schedule_fires,
    scheduler_rejects,
)
from ..timestamps import format_db, parse_rfc3339

_f = schedule_fires.c


def record_decision(
    conn: Connection,
    schedule_id: str,
    job_id: str | None,
    due_at: datetime,
    outcome: str,
    reason: str | None = None,
    exec_id: str | None = None,
    target_count: int | None = None,
) -> None:
    """Append a decision; a skip repeating the schedule's last one extends that row."""
    due, now = format_db(due_at), format_db(datetime.now(due_at.tzinfo))
    if outcome == "skipped":
        last = conn.execute(
            select(_f.id, _f.outcome, _f.reason, _f.job_id)
            .where(_f.schedule_id == schedule_id)
            .order_by(_f.id.desc())
            .limit(1)
        ).first()
        if last is not None and (last.outcome, last.reason, last.job_id) == (
            outcome,
            reason,
            job_id,
        ):
            conn.execute(
                update(schedule_fires)
                .where(_f.id == last.id)
                .values(last_due_at=due, decided_at=now, repeats=_f.repeats + 1)
            )
            return
    conn.execute(
        insert(schedule_fires).values(
            schedule_id=schedule_id,
            job_id=job_id,
            due_at=due,
            decided_at=now,
            outcome=outcome,
            reason=reason,
            exec_id=exec_id,
            target_count=target_count,
            last_due_at=due,
        )
    )


def record_reject(conn: Connection, kind: str, key: str, revision: int, error: str) -> bool:
    """Remember why a schedule or job was refused; True when this is news (log it)."""
    known = conn.execute(
        select(scheduler_rejects.c.revision, scheduler_rejects.c.error).where(
            scheduler_rejects.c.kind == kind, scheduler_rejects.c.key == key
        )
    ).first()
    if known is not None and tuple(known) == (revision, error):
        return False
    stmt = insert(scheduler_rejects).values(
        kind=kind,
        key=key,
        revision=revision,
        error=error,
        seen_at=format_db(datetime.now().astimezone()),
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["kind", "key"],
            set_={"revision": revision, "error": error, "seen_at": stmt.excluded.seen_at},
        )
    )
    return True


def clear_rejects(conn: Connection, kind: str, keep: set[str]) -> None:
    """Forget the rejects of ``kind`` except those in ``keep`` (still invalid)."""
    rows = conn.execute(select(scheduler_rejects.c.key).where(scheduler_rejects.c.kind == kind))
    gone = [k for (k,) in rows if k not in keep]
    if gone:
        conn.execute(
            delete(scheduler_rejects).where(
                scheduler_rejects.c.kind == kind, scheduler_rejects.c.key.in_(gone)
            )
        )


def read_bucket(conn: Connection, bucket: str) -> list[tuple[str, str, int]]:
    """(key, value, revision) of every mirrored entry of ``bucket``."""
    c = kv_entries.c
    stmt = select(c.key, c.value, c.revision).where(c.bucket == bucket).order_by(c.key)
    return [tuple(row) for row in conn.execute(stmt)]


def read_value(conn: Connection, bucket: str, key: str) -> str | None:
    c = kv_entries.c
    return conn.execute(select(c.value).where(c.bucket == bucket, c.key == key)).scalar()


def decided_through(conn: Connection, schedule_id: str) -> datetime | None:
    c = schedule_calendar_state.c
    text = conn.execute(select(c.decided_through).where(c.schedule_id == schedule_id)).scalar()
    return parse_rfc3339(text) if text else None


def set_decided_through(conn: Connection, schedule_id: str, instant: datetime) -> None:
    stmt = insert(schedule_calendar_state).values(
        schedule_id=schedule_id, decided_through=format_db(instant)
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["schedule_id"], set_={"decided_through": stmt.excluded.decided_through}
        )
    )


def read_completions(conn: Connection, job_id: str, since: datetime | None) -> dict[str, datetime]:
    """Per PC, the latest ``finished_at`` of an exit-0 run of ``job_id`` (since ``since``)."""
    r = execution_results.c
    stmt = (
        select(r.pc_id, func.max(r.finished_at))
        .where(r.job_id == job_id, r.exit_code == 0, r.finished_at.is_not(None))
        .group_by(r.pc_id)
    )
    if since is not None:
        stmt = stmt.where(r.finished_at >= format_db(since))
    return {pc: parse_rfc3339(at) for pc, at in conn.execute(stmt)}


def job_run_state(conn: Connection, job_id: str) -> tuple[set[str], dict[str, datetime]]:
    """PCs with a run of ``job_id`` in flight, and each PC's latest finish of it."""
    r = execution_results.c
    unfinished = {
        pc
        for (pc,) in conn.execute(
            select(r.pc_id).where(r.job_id == job_id, r.finished_at.is_(None)).distinct()
        )
    }
    stmt = (
        select(r.pc_id, func.max(r.finished_at))
        .where(r.job_id == job_id, r.finished_at.is_not(None))
        .group_by(r.pc_id)
    )
    finished = {pc: parse_rfc3339(at) for pc, at in conn.execute(stmt)}
    return unfinished, finished


def insert_execution(
    conn: Connection,
    exec_id: str,
    job_id: str,
    version: str,
    target_count: int,
    initiated_at: datetime,
    schedule_id: str | None,
) -> None:
    conn.execute(
        insert(executions).values(
            exec_id=exec_id,
            job_id=job_id,
            version=version,
            initiated_by="scheduler",
            initiated_at=format_db(initiated_at),
            target_count=max(1, target_count),
            status="pending",
            schedule_id=schedule_id,
        )
    )
