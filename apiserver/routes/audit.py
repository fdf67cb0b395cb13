"""``/api/audit``: the operator and scheduler audit trail (api.md §3.8), newest first.

Filters on actor, action, target and payload are RE2 patterns (the newer
behaviour the SPA relies on); they run over a bounded window of candidate rows,
so a pattern that matches nothing costs one window, never the whole table.
Pages continue with a ``(occurred_at, id)`` keyset cursor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, select
from starlette.requests import Request

from projectord.schema import audit_log

from ..endpoint import CompactJSON, Endpoint, database
from ..keyset import CURSOR_HELP, NEXT_CURSOR, NEXT_CURSOR_HELP
from ..openapi_types import any_json, array, integer, obj, string, timestamp
from ..params import Param, db_time, regex_param
from ..regex_filter import matches
from ..stored_json import decode_or_none
from ..time_id_cursor import CURSOR_PATTERN, TimeIdKey, after, cursor_key, next_cursor_headers
from ..wire_time import api_time

MAX_LIMIT = 1000
CANDIDATES = 10_000  # rows read at most when a pattern filters
PATTERN_COLUMNS = ("actor", "action", "target", "payload")

_a = audit_log.c


@dataclass(frozen=True)
class AuditFilters:
    """What a request asks for; patterns are compiled RE2 (None = no filter)."""

    limit: int = 50
    since: str | None = None  # stored-text lower bound on occurred_at
    after: TimeIdKey | None = None  # keyset cursor: rows strictly after this key
    patterns: dict[str, Any] = field(default_factory=dict)  # column -> pattern

    def active_patterns(self) -> dict[str, Any]:
        return {k: v for k, v in self.patterns.items() if v is not None}


@dataclass(frozen=True)
class AuditPage:
    """Rows shaped for the API, and the key to continue after (None: last page)."""

    rows: list[dict[str, Any]]
    next_key: TimeIdKey | None


def _text(value: str | bytes | None) -> str | None:
    # A payload written as a BLOB by some other tool is still searched as text.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def shape_row(row: Row[Any]) -> dict[str, Any]:
    """One audit row; a payload that is not JSON becomes null."""
    return {
        "id": row.id,
        "actor": row.actor,
        "action": row.action,
        "target": row.target,
        "payload": decode_or_none(row.payload),
        "occurred_at": api_time(row.occurred_at),
    }


def _sort_key(row: Row[Any]) -> TimeIdKey:
    return row.occurred_at, row.id


def _ordered(filters: AuditFilters) -> Any:
    stmt = select(_a.id, _a.actor, _a.action, _a.target, _a.payload, _a.occurred_at)
    if filters.since is not None:
        stmt = stmt.where(_a.occurred_at >= filters.since)
    if filters.after is not None:
        stmt = stmt.where(after(_a.occurred_at, _a.id, filters.after))
    # idx_audit_occurred read backwards: its entries are ordered by (occurred_at, id).
    return stmt.order_by(_a.occurred_at.desc(), _a.id.desc())


def list_audit(conn: Connection, filters: AuditFilters) -> AuditPage:
    """Audit rows newest first (occurred_at, then id, descending), filtered.

    Without patterns SQL does everything. With patterns SQL applies ``since``
    and the cursor, at most CANDIDATES rows are read in order, and the first
    ``limit`` that match every pattern are kept. A page whose candidate window
    ran out may be short and still have a successor: its key then points after
    the last candidate examined, so the next page searches on from there.
    """
    patterns = filters.active_patterns()
    if not patterns:
        rows = conn.execute(_ordered(filters).limit(filters.limit + 1)).all()
        kept = rows[: filters.limit]
        next_key = _sort_key(kept[-1]) if len(rows) > filters.limit else None
        return AuditPage([shape_row(r) for r in kept], next_key)

    candidates = conn.execute(_ordered(filters).limit(CANDIDATES)).all()
    kept = []
    for row in candidates:
        if not all(matches(p, _text(getattr(row, name))) for name, p in patterns.items()):
            continue
        if len(kept) == filters.limit:  # one more match: the page has a successor
            return AuditPage([shape_row(r) for r in kept], _sort_key(kept[-1]))
        kept.append(row)
    window_ran_out = len(candidates) == CANDIDATES
    next_key = _sort_key(candidates[-1]) if window_ran_out else None
    return AuditPage([shape_row(r) for r in kept], next_key)


async def audit_list(request: Request, args: dict[str, Any]) -> Any:
    since = args["since"]
    filters = AuditFilters(
        limit=args["limit"],
        since=None if since is None else db_time(since),
        after=cursor_key(args["cursor"]),
        patterns={name: args[name] for name in PATTERN_COLUMNS},
    )
    page = await database(request).run(list_audit, filters)
    return CompactJSON(page.rows, headers=next_cursor_headers(page.next_key))


AUDIT_ROW = obj(
    id=integer(),
    actor=string(),
    action=string(),
    target=string(nullable=True),
    payload=any_json(),
    occurred_at=timestamp(nullable=True),
)


PARAMS = (
    Param(
        "limit",
        "integer",
        f"Rows per page, 1 to {MAX_LIMIT}.",
        default=50,
        minimum=1,
        maximum=MAX_LIMIT,
    ),
    regex_param("actor", "the actor"),
    regex_param("action", "the action"),
    regex_param("target", "the target (a missing one matches as empty)"),
    regex_param("payload", "the payload's stored JSON text (a missing one matches as empty)"),
    Param("since", "timestamp", "Only entries that occurred at or after this time."),
    Param(
        "cursor",
        "cursor",
        CURSOR_HELP + " With a pattern, a page may be short and still have a successor: "
        f"each page examines at most {CANDIDATES} entries.",
        pattern=CURSOR_PATTERN,
    ),
)

ENDPOINTS = [
    Endpoint(
        "/api/audit",
        audit_list,
        "The audit trail, newest first (occurred_at, then id, descending). Pattern filters "
        f"examine at most {CANDIDATES} entries per page.",
        array(AUDIT_ROW),
        params=PARAMS,
        headers={NEXT_CURSOR: NEXT_CURSOR_HELP},
    ),
]
