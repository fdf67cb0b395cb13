"""EVENTS ``events.started.>`` -> in-flight ``execution_results`` rows.

Semantics: projection-semantics.md section 5. A started event inserts a row if
none exists; an existing row (finished, in flight or reaped) is not touched,
because the result may have overtaken the started event (see _INSERT for the
one replay case where the started event was in fact published first). The event promotes
its execution from pending to running.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, func, update
from sqlalchemy.dialects.sqlite import insert

from ..database import insert_many
from ..manifest_timeouts import ManifestTimeouts
from ..schema import execution_results, executions
from ..timestamps import format_db, parse_rfc3339
from . import message_fields as f
from .contract import Delivery, JetStreamProjector, decode_object

log = structlog.get_logger("projectord.projectors.events")

MIN_GRACE = timedelta(seconds=120)
MAX_SPAN = timedelta(days=365)


def reaper_deadline(recorded_at: str, timeout: timedelta | None) -> str | None:
    """``recorded_at + timeout + max(120 s, timeout / 2)``, the span capped at 365 d."""
    if timeout is None:
        return None
    if timeout >= MAX_SPAN:  # compare first: timeout * 1.5 can overflow timedelta
        span = MAX_SPAN
    else:
        span = min(timeout + max(MIN_GRACE, timeout / 2), MAX_SPAN)
    try:
        # recorded_at is in our storage format, which fromisoformat reads in C,
        # ten times faster than the general RFC 3339 parser (once per message).
        recorded = datetime.fromisoformat(recorded_at)
    except ValueError:
        recorded = parse_rfc3339(recorded_at)
    if recorded.utcoffset() is None:
        recorded = parse_rfc3339(recorded_at)  # raises: no offset
    return format_db(recorded + span)


@dataclass(slots=True)
class StartedRecord:
    seq: int | None
    row: dict[str, Any]


def decode(delivery: Delivery) -> StartedRecord:
    body = decode_object(delivery)
    row = {
        "result_id": f.req_str(body, "result_id", non_empty=True),
        "request_id": f.req_str(body, "request_id"),
        "exec_id": f.req_str(body, "exec_id") or None,
        "pc_id": f.req_str(body, "pc_id", non_empty=True),
        "started_at": f.req_ts(body, "started_at"),
        "job_id": f.req_str(body, "manifest_id") or None,
        "version": f.req_str(body, "version"),
        "recorded_at": delivery.published_at,
        "expires_at": None,
    }
    return StartedRecord(delivery.seq, row)


def make_enrich(ctx: Any) -> Any:
    timeouts: ManifestTimeouts = ctx.manifest_timeouts

    async def enrich(records: Sequence[StartedRecord]) -> None:
        for rec in records:
            job_id = rec.row["job_id"]
            timeout = await timeouts.lookup(job_id) if job_id else None
            rec.row["expires_at"] = reaper_deadline(rec.row["recorded_at"], timeout)

    return enrich


_ins = insert(execution_results)
_r = execution_results.c
# Insert-if-absent, with one exception. RESULTS and EVENTS are consumed
# independently, so on a replay (wiped DB, restored backup) a result can be
# applied before the started event that was published earlier; live traffic
# would have produced the in-flight row first. In that case only, the started
# event fills in what it alone carries and the earlier publish time, so a
# re-derived row equals the live one. When the started event was published
# after the row's first message (the result really came first), the WHERE is
# false and the row stays untouched, as the original does.
_INSERT = _ins.on_conflict_do_update(
    index_elements=[_r.result_id],
    set_={
        "recorded_at": _ins.excluded.recorded_at,
        "version": func.coalesce(_r.version, _ins.excluded.version),
        "expires_at": func.coalesce(_r.expires_at, _ins.excluded.expires_at),
    },
    where=_ins.excluded.recorded_at < _r.recorded_at,
)


def apply(conn: Connection, records: Sequence[StartedRecord]) -> None:
    insert_many(conn, _INSERT, [r.row for r in records])
    exec_ids = sorted({r.row["exec_id"] for r in records if r.row["exec_id"]})
    if not exec_ids:
        return
    # Best effort, as in the original: a failed promotion must not cost the rows.
    try:
        with conn.begin_nested():
            conn.execute(
                update(executions)
                .where(executions.c.exec_id.in_(exec_ids), executions.c.status == "pending")
                .values(status="running")
            )
    except Exception as exc:
        log.warning(
            "execution_promotion_failed",
            stream="EVENTS",
            consumer="backend_events_projector",
            seq=records[-1].seq,
            error=str(exc),
        )


PROJECTOR = JetStreamProjector(
    name="events",
    stream="EVENTS",
    durable="backend_events_projector",
    filter_subject="events.started.>",
    decode=decode,
    apply=apply,
    make_enrich=make_enrich,
)
