"""``/api/executions`` and ``/api/executions/{exec_id}``: job runs across the fleet.

An execution is one dispatch of a job (by the scheduler or an operator) with its
success/failure counters; the detail adds the per-PC results, without output.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select
from starlette.requests import Request

from projectord.schema import execution_results as results
from projectord.schema import executions

from ..endpoint import Endpoint, NotFound, database
from ..keyset import (
    CURSOR_HELP,
    NEXT_CURSOR,
    NEXT_CURSOR_HELP,
    Key,
    after,
    cursor_key,
    page_response,
)
from ..openapi_types import array, boolean, integer, obj, string, timestamp
from ..params import Param
from ..wire_time import api_time

MAX_LIMIT = 1000

_COLUMNS = (
    executions.c.exec_id,
    executions.c.job_id,
    executions.c.version,
    executions.c.initiated_by,
    executions.c.initiated_at,
    executions.c.target_count,
    executions.c.success_count,
    executions.c.failure_count,
    executions.c.status,
)
SORT = (executions.c.initiated_at, executions.c.exec_id)


def shape_execution(row: Row[Any]) -> dict[str, Any]:
    """One execution row as the API shows it."""
    out = dict(row._mapping)
    out["initiated_at"] = api_time(row.initiated_at)
    return out


def list_executions(
    conn: Connection,
    limit: int,
    job_id: str | None = None,
    status: str | None = None,
    after_key: Key | None = None,
) -> tuple[list[dict[str, Any]], Key | None]:
    """Executions newest first (initiated_at, then exec_id, descending), and the
    sort key to continue after when more may follow (None on the last page).

    ``job_id`` and ``status`` match exactly.
    """
    stmt = select(*_COLUMNS)
    if job_id is not None:
        stmt = stmt.where(executions.c.job_id == job_id)
    if status is not None:
        stmt = stmt.where(executions.c.status == status)
    if after_key is not None:
        stmt = stmt.where(after(SORT, after_key))
    stmt = stmt.order_by(executions.c.initiated_at.desc(), executions.c.exec_id.desc())
    rows = conn.execute(stmt.limit(limit + 1)).all()
    kept = rows[:limit]
    next_key = (kept[-1].initiated_at, kept[-1].exec_id) if len(rows) > limit else None
    return [shape_execution(r) for r in kept], next_key


def get_execution(conn: Connection, exec_id: str) -> dict[str, Any] | None:
    """The execution and its results (most recently recorded first), or None."""
    row = conn.execute(select(*_COLUMNS).where(executions.c.exec_id == exec_id)).first()
    if row is None:
        return None
    rows = conn.execute(
        select(
            results.c.result_id,
            results.c.request_id,
            results.c.pc_id,
            results.c.exit_code,
            results.c.skipped,
            results.c.started_at,
            results.c.finished_at,
        )
        .where(results.c.exec_id == exec_id)
        .order_by(results.c.recorded_at.desc(), results.c.result_id.desc())
    ).all()
    return {
        "execution": shape_execution(row),
        "results": [
            {
                "result_id": r.result_id,
                "request_id": r.request_id,
                "pc_id": r.pc_id,
                # The original's quirk, kept for its clients: in flight reads as 0
                # here; finished_at tells the two apart.
                "exit_code": 0 if r.exit_code is None else r.exit_code,
                "skipped": bool(r.skipped),
                "started_at": api_time(r.started_at),
                "finished_at": api_time(r.finished_at),
            }
            for r in rows
        ],
    }


async def execution_list(request: Request, args: dict[str, Any]) -> Any:
    rows, next_key = await database(request).run(
        list_executions, args["limit"], args["job_id"], args["status"], cursor_key(args["cursor"])
    )
    return page_response(rows, next_key)


async def execution_detail(request: Request, args: dict[str, Any]) -> Any:
    exec_id = args["exec_id"]
    found = await database(request).run(get_execution, exec_id)
    if found is None:
        raise NotFound(f"no execution {exec_id!r}")
    return found


EXECUTION = obj(
    exec_id=string(),
    job_id=string(),
    version=string(),
    initiated_by=string(),
    initiated_at=timestamp(nullable=True),
    target_count=integer(),
    success_count=integer(),
    failure_count=integer(),
    status=string(),
)
_RESULT = obj(
    result_id=string(),
    request_id=string(),
    pc_id=string(),
    exit_code=integer(),
    skipped=boolean(),
    started_at=timestamp(nullable=True),
    finished_at=timestamp(nullable=True),
)

ENDPOINTS = [
    Endpoint(
        "/api/executions",
        execution_list,
        "Executions, newest first (initiated_at, then exec_id, descending).",
        array(EXECUTION),
        params=(
            Param(
                "limit",
                "integer",
                f"Rows per page, 1 to {MAX_LIMIT}.",
                default=50,
                minimum=1,
                maximum=MAX_LIMIT,
            ),
            Param("job_id", "string", "Only executions of this job (exact)."),
            Param(
                "status",
                "string",
                "Only executions with this status (exact; pending, running, completed, expired).",
            ),
            Param("cursor", "cursor", CURSOR_HELP),
        ),
        headers={NEXT_CURSOR: NEXT_CURSOR_HELP},
    ),
    Endpoint(
        "/api/executions/{exec_id}",
        execution_detail,
        "One execution and its per-PC results (most recently recorded first, no output). "
        "A result still in flight reports exit_code 0: use finished_at to tell.",
        obj(execution=EXECUTION, results=array(_RESULT)),
        params=(Param("exec_id", "string", "The execution id.", where="path"),),
        statuses={404: "No execution with this id."},
    ),
]
