"""Closing what will never finish: stale pending executions and orphaned runs.

An execution nobody started within ``pending_expiry`` is ``expired``; a run
whose agent never reported (it died mid-run, or lost its result) is *reaped*:
finished now with exit code -1, a note in stderr, and counted as a failure on
its execution so the execution can still complete. A real result arriving
later overwrites the reaped row without a second count (results projector).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import Connection, Select, and_, bindparam, case, or_, select, update

from ..projectors.results import bump_counters
from ..schema import execution_results, executions
from ..timestamps import format_db

# The original's text, kept so operators searching for it find both backends' rows.
REAPER_NOTE = (
    "[backend: reaped — no ExecResult before the run's deadline; agent likely died"
    " mid-run or hit the pre-v0.43.14 kill-hang (#330)]"
)
_CHUNK = 500  # ids per UPDATE, well under SQLite's host-parameter limit

_e = executions.c
_r = execution_results.c


def expire_pending(conn: Connection, now: datetime, older_than: timedelta) -> int:
    """Mark ``pending`` executions initiated before ``now - older_than`` as expired.

    ``running`` ones are never expired: some agent is working on them.
    """
    cutoff = format_db(now - older_than)
    stmt = (
        update(executions)
        .where(_e.status == "pending", _e.initiated_at < cutoff)
        .values(status="expired")
    )
    return conn.execute(stmt).rowcount


def _orphans(now: datetime, fallback: timedelta) -> Select[tuple[str, str | None]]:
    """In-flight rows past their deadline: ``expires_at``, else ``started_at + fallback``."""
    return select(_r.result_id, _r.exec_id).where(
        _r.finished_at.is_(None),
        or_(
            and_(_r.expires_at.is_not(None), _r.expires_at < format_db(now)),
            and_(_r.expires_at.is_(None), _r.started_at < format_db(now - fallback)),
        ),
    )


_REAP = (
    update(execution_results)
    .where(_r.result_id.in_(bindparam("ids", expanding=True)), _r.finished_at.is_(None))
    .values(
        finished_at=bindparam("now"),
        exit_code=-1,
        reaped=1,
        stderr=case((_r.stderr == "", REAPER_NOTE), else_=_r.stderr + "\n" + REAPER_NOTE),
    )
)


def reap_orphans(conn: Connection, now: datetime, fallback: timedelta) -> int:
    """Reap every orphaned in-flight run and count each as a failure, atomically.

    Runs inside the caller's transaction, so rows and counters move together.
    """
    orphans = conn.execute(_orphans(now, fallback)).all()
    if not orphans:
        return 0
    stamp = format_db(now)
    for start in range(0, len(orphans), _CHUNK):
        ids = [rid for rid, _exec in orphans[start : start + _CHUNK]]
        conn.execute(_REAP, {"ids": ids, "now": stamp})
    tallies: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _rid, exec_id in orphans:
        if exec_id is not None:
            tallies[exec_id][1] += 1
    bump_counters(conn, tallies)
    return len(orphans)
