"""Schedule coverage: which PCs of a schedule's roster its job has run on (api.md 3.10).

The roster is the schedule's target including offline PCs, resolved by
projectord's own ``resolve_target`` (scheduler.md 7). Per PC the first match
wins: ``running`` (an unfinished row of the job), ``ok`` (the latest finished
row, by ``finished_at`` then ``result_id``, exited 0), ``fail`` (it did not),
``pending`` (no row). Like the original, coverage is per *job*: schedules
sharing a job share it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from projectord.scheduler.schedule import Schedule, Target
from projectord.scheduler.targets import read_groups, resolve_target
from projectord.schema import agents, execution_results

from .wire_time import api_time

STATES = ("ok", "fail", "running", "pending")
# Below this many PCs the job's rows are read for those PCs only; above, one
# pass over all of the job's rows is cheaper than a lookup per PC.
_FEW_PCS = 500

_r = execution_results.c


@dataclass(frozen=True)
class PcRuns:
    """What the job's rows say about one PC."""

    running: bool
    finished_at: str | None  # of the latest finished row; None when none finished
    exit_code: int | None
    version: str | None

    @property
    def state(self) -> str:
        if self.running:
            return "running"
        if self.finished_at is None:
            return "pending"
        return "ok" if self.exit_code == 0 else "fail"


@dataclass(frozen=True)
class Fleet:
    """What rosters are resolved against: every known PC and the PCs' groups."""

    known: dict[str, None]  # pc_id -> None: liveness does not matter to a roster
    groups: dict[str, frozenset[str]]


def read_fleet(conn: Connection) -> Fleet:
    """Every agent row (offline included) and the union of both group buckets."""
    known = dict.fromkeys(conn.execute(select(agents.c.pc_id)).scalars())
    return Fleet(known, read_groups(conn))


def covered_target(schedule: Schedule) -> Target:
    """The target a schedule covers: its own, or its waves' groups for a rollout without one."""
    if not schedule.target.specified and schedule.waves:
        return Target(groups=tuple(w.group for w in schedule.waves))
    return schedule.target


def roster(target: Target, fleet: Fleet, now: datetime) -> list[str]:
    """The PCs of ``target``, offline ones included, sorted."""
    return resolve_target(target, fleet.known, fleet.groups, now, alive_only=False)


def job_runs(
    conn: Connection, job_id: str, pcs: Collection[str] | None = None
) -> dict[str, PcRuns]:
    """Per PC with any row of ``job_id`` (only ``pcs`` when given): its runs' summary.

    One grouped pass over ``idx_results_job_pc_finished`` (job_id, pc_id,
    finished_at DESC). The latest finished row's exit code and version are
    SQLite bare columns, which come from the row holding the group's single
    ``max()``. Which row that is among several with the same ``finished_at``
    is unspecified, so a PC with repeated finish times (rare) is re-read in
    the documented order, ``finished_at`` then ``result_id``.
    """
    running = (func.count() - func.count(_r.finished_at)).label("running")
    repeated = (func.count(_r.finished_at) - func.count(_r.finished_at.distinct())).label("rep")
    last = func.max(_r.finished_at).label("last")
    stmt = select(_r.pc_id, running, repeated, last, _r.exit_code, _r.version)
    stmt = stmt.where(_r.job_id == job_id)
    if pcs is not None:
        stmt = stmt.where(_r.pc_id.in_(sorted(pcs)))
    out = {}
    for row in conn.execute(stmt.group_by(_r.pc_id)):
        exit_code, version = row.exit_code, row.version
        if row.rep:
            exit_code, version = conn.execute(
                select(_r.exit_code, _r.version)
                .where(_r.job_id == job_id, _r.pc_id == row.pc_id, _r.finished_at.is_not(None))
                .order_by(_r.finished_at.desc(), _r.result_id.desc())
                .limit(1)
            ).one()
        out[row.pc_id] = PcRuns(bool(row.running), row.last, exit_code, version)
    return out


def read_job_runs(
    conn: Connection,
    job_id: str,
    pcs: list[str],
    whole_jobs: dict[str, dict[str, PcRuns]] | None = None,
) -> dict[str, PcRuns]:
    """``job_runs`` for a roster, choosing the cheaper plan for its size.

    ``whole_jobs`` keeps the full passes by job, for schedules sharing a job.
    """
    if whole_jobs is not None and job_id in whole_jobs:
        return whole_jobs[job_id]
    if not pcs:
        return {}
    if len(pcs) <= _FEW_PCS:
        return job_runs(conn, job_id, pcs)
    runs = job_runs(conn, job_id)
    if whole_jobs is not None:
        whole_jobs[job_id] = runs
    return runs


def counts(pcs: Collection[str], runs: Mapping[str, PcRuns]) -> dict[str, int]:
    """``{total, ok, fail, running, pending}`` over the roster ``pcs`` (best as a set).

    Walks the PCs that have rows; every other roster PC is pending.
    """
    out = {"total": len(pcs), **dict.fromkeys(STATES, 0)}
    for pc, run in runs.items():
        if pc in pcs:
            out[run.state] += 1
    out["pending"] = out["total"] - out["ok"] - out["fail"] - out["running"]
    return out


def agent_rows(pcs: list[str], runs: Mapping[str, PcRuns]) -> list[dict[str, Any]]:
    """``[{pc_id, state, version?, finished_at?}]`` in roster order.

    ``version`` and ``finished_at`` are those of the latest finished row and are
    shown for ``ok`` and ``fail`` only (omitted when absent, as api.md's ``?``).
    """
    rows = []
    for pc in pcs:
        run = runs.get(pc)
        row: dict[str, Any] = {"pc_id": pc, "state": run.state if run else "pending"}
        if run is not None and row["state"] in ("ok", "fail"):
            if run.version is not None:
                row["version"] = run.version
            row["finished_at"] = api_time(run.finished_at)
        rows.append(row)
    return rows
