"""``/api/results`` and ``/api/results/{result_id}``: command results (the Activity page).

List rows carry the first 200 characters of each output; the detail carries the
full text and the finalize-hook rows that ran for it. Filters on ids and output
are RE2 patterns applied to a bounded window of candidate rows (api.md §3.6), so
a pattern that matches nothing costs one window, never the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, func, select
from starlette.requests import Request

from projectord.schema import execution_results as results

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
from ..params import Param, db_time, regex_param
from ..regex_filter import excerpt, matches
from ..wire_time import api_time

PREVIEW = 200  # characters of stdout/stderr in a list row
MAX_LIMIT = 1000  # the dashboard offers 50, 200 and 1000
CANDIDATES = 10_000  # rows a pattern filter examines at most
OUTPUT_CANDIDATES = 1_000  # fewer when an output regex runs on the full text

ID_FILTERS = ("pc_id", "job_id", "exec_id")
OUTPUTS = ("stdout", "stderr")
SORT = (results.c.started_at, results.c.result_id)

STATUS = {
    "success": results.c.exit_code == 0,
    "failure": results.c.exit_code.is_not(None) & (results.c.exit_code != 0),
    # unlikely() tells the planner few rows are in flight, so it reads the
    # partial index idx_results_inflight_started instead of walking the whole
    # (started_at, result_id) index looking for them.
    "running": func.unlikely(results.c.finished_at.is_(None)),
}


@dataclass(frozen=True)
class ResultFilters:
    """What a list request asks for; patterns are compiled RE2 (None = no filter)."""

    limit: int = 50
    status: str | None = None
    since: str | None = None  # stored-text lower bound on started_at
    after: Key | None = None  # keyset cursor: rows strictly after this sort key
    patterns: dict[str, Any] = field(default_factory=dict)  # column -> pattern

    def output_patterns(self) -> dict[str, Any]:
        return {k: v for k, v in self.patterns.items() if k in OUTPUTS and v is not None}

    def active_patterns(self) -> dict[str, Any]:
        return {k: v for k, v in self.patterns.items() if v is not None}


@dataclass(frozen=True)
class ResultPage:
    """Rows shaped for the API, and the sort key to continue after (None: last page)."""

    rows: list[dict[str, Any]]
    next_key: Key | None


def _sort_key(row: Row[Any]) -> Key:
    return row.started_at, row.result_id


def _row_select(preview: bool) -> Any:
    # A preview reads one character past PREVIEW: enough to tell it was cut.
    outputs = [
        func.substr(results.c[name], 1, PREVIEW + 1).label(name) if preview else results.c[name]
        for name in OUTPUTS
    ]
    return select(
        results.c.result_id,
        results.c.request_id,
        results.c.exec_id,
        results.c.parent_result_id,
        results.c.pc_id,
        results.c.exit_code,
        *outputs,
        results.c.started_at,
        results.c.finished_at,
        results.c.job_id,
        results.c.version,
        results.c.skipped,
        results.c.reaped,
    )


def shape_row(row: Row[Any], preview: bool, excerpts: dict[str, Any] | None = None) -> dict:
    """One ``ResultRow``; outputs cut to PREVIEW characters when ``preview``.

    ``excerpts`` (list rows with an output pattern) holds the ``stdout_match`` /
    ``stderr_match`` excerpts, keyed by output name.
    """
    out: dict[str, Any] = {
        "result_id": row.result_id,
        "request_id": row.request_id,
        "exec_id": row.exec_id,
    }
    if row.parent_result_id is not None:
        out["parent_result_id"] = row.parent_result_id
    out["pc_id"] = row.pc_id
    out["exit_code"] = row.exit_code
    texts = {name: getattr(row, name) or "" for name in OUTPUTS}
    for name, text in texts.items():
        out[name] = text[:PREVIEW] if preview else text
    out["started_at"] = api_time(row.started_at)
    out["finished_at"] = api_time(row.finished_at)
    out["job_id"] = row.job_id
    out["version"] = row.version
    for name, text in texts.items():
        out[f"{name}_truncated"] = preview and len(text) > PREVIEW
    out["skipped"] = bool(row.skipped)
    out["reaped"] = bool(row.reaped)
    for name, found in (excerpts or {}).items():
        out[f"{name}_match"] = found
    return out


def _ordered(stmt: Any, filters: ResultFilters) -> Any:
    """``stmt`` with the SQL-side filters and the list order."""
    if filters.status is not None:
        stmt = stmt.where(STATUS[filters.status])
    if filters.since is not None:
        stmt = stmt.where(results.c.started_at >= filters.since)
    if filters.after is not None:
        stmt = stmt.where(after(SORT, filters.after))
    return stmt.order_by(results.c.started_at.desc(), results.c.result_id.desc())


def _scan_candidates(
    conn: Connection, filters: ResultFilters, patterns: dict[str, Any]
) -> tuple[list[tuple[str, dict[str, Any]]], Key | None]:
    """The first ``limit`` matching result ids with their output excerpts, and the
    key to continue after.

    Only the sort key and the filtered columns are read for the window, so a
    pattern that matches nothing costs one narrow pass over it.
    """
    outputs = filters.output_patterns()
    window = OUTPUT_CANDIDATES if outputs else CANDIDATES
    columns = [results.c.result_id, results.c.started_at, *(results.c[n] for n in patterns)]
    stmt = _ordered(select(*columns), filters)
    candidates = conn.execute(stmt.limit(window)).all()
    kept: list[tuple[str, dict[str, Any]]] = []
    last_kept: Key | None = None
    for row in candidates:
        if not all(matches(p, getattr(row, name)) for name, p in patterns.items()):
            continue
        if len(kept) == filters.limit:  # one more match: the page has a successor
            return kept, last_kept
        found = {name: excerpt(p, getattr(row, name) or "") for name, p in outputs.items()}
        kept.append((row.result_id, {k: v for k, v in found.items() if v is not None}))
        last_kept = _sort_key(row)
    if len(candidates) == window:  # the window ran out; later rows are unexamined
        return kept, _sort_key(candidates[-1])
    return kept, None


def list_results(conn: Connection, filters: ResultFilters) -> ResultPage:
    """Results newest first (started_at, then result_id, descending), filtered.

    Without patterns SQL does everything. With patterns SQL applies status,
    since and the cursor, reads at most CANDIDATES rows (OUTPUT_CANDIDATES with
    an output pattern) in order, and the first ``limit`` that match are kept.
    A page whose candidate window ran out may be short and still have a
    successor: its cursor then points after the last candidate examined.
    """
    patterns = filters.active_patterns()
    if not patterns:
        stmt = _ordered(_row_select(preview=True), filters).limit(filters.limit + 1)
        rows = conn.execute(stmt).all()
        kept, more = rows[: filters.limit], len(rows) > filters.limit
        next_key = _sort_key(kept[-1]) if more else None
        return ResultPage([shape_row(r, True) for r in kept], next_key)

    found, next_key = _scan_candidates(conn, filters, patterns)
    if not found:
        return ResultPage([], next_key)
    ids = [result_id for result_id, _ in found]
    by_id = {
        r.result_id: r
        for r in conn.execute(_row_select(preview=True).where(results.c.result_id.in_(ids)))
    }
    # The same read transaction: every id found is still there.
    rows = [shape_row(by_id[result_id], True, excerpts) for result_id, excerpts in found]
    return ResultPage(rows, next_key)


def get_result(conn: Connection, result_id: str) -> dict[str, Any] | None:
    """The full row of ``result_id`` with its finalize children, or None."""
    row = conn.execute(_row_select(preview=False).where(results.c.result_id == result_id)).first()
    if row is None:
        return None
    out = shape_row(row, False)
    children = conn.execute(
        select(results.c.result_id, results.c.job_id, results.c.exit_code, results.c.finished_at)
        .where(results.c.parent_result_id == result_id)
        .order_by(results.c.started_at, results.c.result_id)
    ).all()
    if children:
        out["finalize_children"] = [
            {
                "result_id": c.result_id,
                "job_id": c.job_id,
                "exit_code": c.exit_code,
                "finished_at": api_time(c.finished_at),
            }
            for c in children
        ]
    return out


async def result_list(request: Request, args: dict[str, Any]) -> Any:
    since = args["since"]
    filters = ResultFilters(
        limit=args["limit"],
        status=args["status"],
        since=None if since is None else db_time(since),
        after=cursor_key(args["cursor"]),
        patterns={name: args[name] for name in (*ID_FILTERS, *OUTPUTS)},
    )
    page = await database(request).run(list_results, filters)
    return page_response(page.rows, page.next_key)


async def result_detail(request: Request, args: dict[str, Any]) -> Any:
    result_id = args["result_id"]
    row = await database(request).run(get_result, result_id)
    if row is None:
        raise NotFound(f"no result {result_id!r}")
    return row


_MATCH = obj(
    before=string(),
    matched=string(),
    after=string(),
    clipped_start=boolean(),
    clipped_end=boolean(),
)
_CHILD = obj(
    result_id=string(),
    job_id=string(nullable=True),
    exit_code=integer(nullable=True),
    finished_at=timestamp(nullable=True),
)
_FIELDS = dict(
    result_id=string(),
    request_id=string(),
    exec_id=string(nullable=True),
    parent_result_id=string(),
    pc_id=string(),
    exit_code=integer(nullable=True),
    stdout=string(),
    stderr=string(),
    started_at=timestamp(nullable=True),
    finished_at=timestamp(nullable=True),
    job_id=string(nullable=True),
    version=string(nullable=True),
    stdout_truncated=boolean(),
    stderr_truncated=boolean(),
    skipped=boolean(),
    reaped=boolean(),
)
LIST_ROW = obj(
    optional=("parent_result_id", "stdout_match", "stderr_match"),
    **_FIELDS,
    stdout_match=_MATCH,
    stderr_match=_MATCH,
)
DETAIL_ROW = obj(
    optional=("parent_result_id", "finalize_children"),
    **_FIELDS,
    finalize_children=array(_CHILD),
)


LIST_PARAMS = (
    Param(
        "limit",
        "integer",
        f"Rows per page, 1 to {MAX_LIMIT} (the dashboard offers 50, 200 and 1000).",
        default=50,
        minimum=1,
        maximum=MAX_LIMIT,
    ),
    regex_param("pc_id", "the PC id"),
    regex_param("job_id", "the job id (a missing one matches as empty)"),
    regex_param("exec_id", "the execution id (a missing one matches as empty)"),
    regex_param("stdout", "the full stdout; adds stdout_match"),
    regex_param("stderr", "the full stderr; adds stderr_match"),
    Param(
        "status",
        "enum",
        "success: exit code 0; failure: finished with another exit code; "
        "running: not finished yet.",
        choices={s: s for s in STATUS},
    ),
    Param("since", "timestamp", "Only results started at or after this time."),
    Param("cursor", "cursor", CURSOR_HELP),
)

ENDPOINTS = [
    Endpoint(
        "/api/results",
        result_list,
        "Command results, newest first (started_at, then result_id, descending); "
        "outputs cut to 200 characters.",
        array(LIST_ROW),
        params=LIST_PARAMS,
        headers={NEXT_CURSOR: NEXT_CURSOR_HELP},
    ),
    Endpoint(
        "/api/results/{result_id}",
        result_detail,
        "One result with its full output and its finalize-hook children.",
        DETAIL_ROW,
        params=(Param("result_id", "string", "The result id.", where="path"),),
        statuses={404: "No result with this id."},
    ),
]
