"""``/api/obs_events`` and its helpers (api.md §3.9): events the agents observe on
their hosts (boot, logon, sleep, ...), for the timeline and its lanes.

Every list is ordered ``at DESC, id DESC``. A page reads at most ``limit + 1``
rows through an index that already delivers them in (almost) that order:

- with ``pc_id``: ``idx_obs_events_pc_at``;
- with ``kind`` or ``kinds``: one ``idx_obs_events_kind_at`` range per kind,
  merged (an ``IN`` list on that index would sort every row of those kinds);
- otherwise: ``idx_obs_events_at`` read backwards.

Other filters are checked on the rows read. Their columns are wrapped in a
unary ``+``, SQLite's documented way to keep a term off an index: an index on
``source`` (a few values over millions of rows) would otherwise be chosen and
every row of that source sorted for one page.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import (
    Connection,
    Row,
    Select,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import UnaryExpression
from starlette.requests import Request

from projectord.schema import obs_events

from ..endpoint import CompactJSON, Endpoint, database
from ..keyset import CURSOR_HELP, NEXT_CURSOR, NEXT_CURSOR_HELP
from ..openapi_types import any_json, array, integer, obj, string, timestamp
from ..params import Param, ParamError, db_time
from ..stored_json import Undecodable, decode_stored
from ..time_id_cursor import CURSOR_PATTERN, TimeIdKey, after, cursor_key, next_cursor_headers
from ..wire_time import api_time

log = structlog.get_logger("apiserver.obs_events")

_o = obs_events.c

MAX_LIMIT = 5000
MAX_LANE_PCS = 64
MERGED_KINDS = 32  # more kinds than this: one IN list, left to the planner
PAYLOAD_KEY = r"[A-Za-z0-9_]+"
MAX_LOGON_TYPE = 2**31 - 1

# The timeline's lanes, exactly as the SPA maps kinds to them (api.md §3.9).
LANES: dict[str, tuple[str, ...]] = {
    "power": (
        "boot",
        "shutdown",
        "unexpected_shutdown",
        "log_service_started",
        "log_service_stopped",
    ),
    "session": ("logon", "logoff"),
    "sleep": ("sleep", "resume"),
    "active": ("active", "idle"),
}

_COLUMNS = (_o.id, _o.pc_id, _o.at, _o.kind, _o.source, _o.event_record_id, _o.payload)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INT64 = 2**63 - 1


def _unindexed(column: Any) -> Any:
    """``+column``: the same value, but SQLite will not pick an index for the term."""
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def _payload_at(key: str) -> Any:
    """``payload.<key>`` as SQLite's json_extract sees it; NULL where the payload is not
    JSON (json_extract would fail the whole query on one malformed row)."""
    return case(
        (func.json_valid(_o.payload) == 1, func.json_extract(_o.payload, f"$.{key}")),
        else_=None,
    )


def _kind_is(kind: str) -> Any:
    """``kind = ?``, declared rare to the planner. With ANALYZE statistics a kind
    holds a ninth of the table, and SQLite would rather read the time index in
    order and skip other kinds: fine for a common kind, a scan of the whole table
    for a rare or absent one. The kind index is right for a page of any kind."""
    return func.likelihood(_o.kind == kind, literal_column("0.001"))


def _as_number(text: str) -> int | float | None:
    """``text`` as a number when it reads as one, else None."""
    if not _NUMBER.fullmatch(text.strip()):
        return None
    try:
        value = int(text)
    except ValueError:
        number = float(text)
        return number if number not in (float("inf"), float("-inf")) else None
    # SQLite integers are 64-bit; a bigger one is compared as a real, as SQLite would.
    return value if -_INT64 - 1 <= value <= _INT64 else float(value)


@dataclass(frozen=True)
class EventFilters:
    """What a list request asks for; ``None`` or empty means no constraint."""

    limit: int = 200
    pc_id: str | None = None
    kind: str | None = None
    source: str | None = None
    start: str | None = None  # stored text: at >= start
    end: str | None = None  # stored text: at < end
    kinds: tuple[str, ...] = ()
    kinds_ex: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    sources_ex: tuple[str, ...] = ()
    logon_type: int | None = None
    payload_key: str | None = None
    payload_value: str | None = None
    after: TimeIdKey | None = None

    def kinds_to_merge(self) -> list[str] | None:
        """The kinds to read one index range each for, or None when the kind is not
        constrained to a short list (or pc_id already narrows the read)."""
        if self.pc_id is not None or (self.kind is None and not self.kinds):
            return None
        wanted = [self.kind] if self.kind is not None else list(dict.fromkeys(self.kinds))
        if self.kind is not None and self.kinds and self.kind not in self.kinds:
            wanted = []
        wanted = [k for k in wanted if k not in self.kinds_ex]
        return wanted if len(wanted) <= MERGED_KINDS else None


@dataclass(frozen=True)
class EventPage:
    """Events shaped for the API and the key to continue after (None: last page)."""

    events: list[dict[str, Any]]
    next_key: TimeIdKey | None


def _conditions(f: EventFilters) -> list[Any]:
    """Every filter of ``f`` as SQL, none of them on the kind or source index: with
    pc_id the PC's index is narrower, and otherwise reading the time index in order
    beats collecting every row of a few kinds or sources and sorting them."""
    kind, source = _unindexed(_o.kind), _unindexed(_o.source)
    out: list[Any] = []
    if f.pc_id is not None:
        out.append(_o.pc_id == f.pc_id)
    if f.kind is not None:
        out.append(kind == f.kind)
    if f.kinds:
        out.append(kind.in_(f.kinds))
    if f.kinds_ex:
        out.append(kind.not_in(f.kinds_ex))
    if f.source is not None:
        out.append(source == f.source)
    if f.sources:
        out.append(source.in_(f.sources))
    if f.sources_ex:
        out.append(source.not_in(f.sources_ex))
    if f.start is not None:
        out.append(_o.at >= f.start)
    if f.end is not None:
        out.append(_o.at < f.end)
    if f.logon_type is not None:
        out.append(_payload_at("logon_type") == f.logon_type)
    if f.payload_key is not None and f.payload_value is not None:
        value = _payload_at(f.payload_key)
        number = _as_number(f.payload_value)
        if number is None:
            out.append(value == f.payload_value)
        else:  # a JSON number or a JSON string with this text
            out.append(or_(value == literal(number), value == f.payload_value))
    if f.after is not None:
        out.append(after(_o.at, _o.id, f.after))
    return out


def _newest(stmt: Select[Any], limit: int) -> Select[Any]:
    return stmt.order_by(_o.at.desc(), _o.id.desc()).limit(limit)


def _page_query(f: EventFilters) -> Any:
    n = f.limit + 1  # one more row tells whether a next page exists
    kinds = f.kinds_to_merge()
    if kinds is None:
        return _newest(select(*_COLUMNS).where(*_conditions(f)), n)
    if not kinds:
        return None  # the kind filters exclude each other
    # The choice of kinds already applies kind and kinds; "kind = k" reads the kind index.
    rest = _conditions(replace(f, kind=None, kinds=()))
    branches = [_newest(select(*_COLUMNS).where(_kind_is(k), *rest), n) for k in kinds]
    if len(branches) == 1:
        return branches[0]
    # SQLite takes ORDER BY and LIMIT of a compound's member only inside a subquery.
    merged = union_all(*(select(b.subquery()) for b in branches)).subquery()
    return select(merged).order_by(merged.c.at.desc(), merged.c.id.desc()).limit(n)


def shape_events(rows: list[Row[Any]]) -> list[dict[str, Any]]:
    """Rows as API events; rows whose payload is not JSON are dropped and logged."""
    events: list[dict[str, Any]] = []
    dropped: list[tuple[int, str]] = []
    for row in rows:
        try:
            payload = decode_stored(row.payload)
        except Undecodable as exc:
            dropped.append((row.id, str(exc)))
            continue
        events.append(
            {
                "id": row.id,
                "pc_id": row.pc_id,
                "at": api_time(row.at),
                "kind": row.kind,
                "source": row.source,
                "event_record_id": row.event_record_id,
                "payload": payload,
            }
        )
    if dropped:
        log.warning(
            "obs_event_payload_undecodable",
            dropped=len(dropped),
            ids=[i for i, _ in dropped[:20]],
            error=dropped[0][1],
        )
    return events


def list_events(conn: Connection, f: EventFilters) -> EventPage:
    """Events newest first (at, then id, descending) matching every filter of ``f``.

    ``limit`` rows are read; those with an undecodable payload are dropped, so a
    page may be short. The next key is that of the last row read, served or not.
    """
    stmt = _page_query(f)
    rows = [] if stmt is None else conn.execute(stmt).all()
    kept = rows[: f.limit]
    next_key = (kept[-1].at, kept[-1].id) if len(rows) > f.limit else None
    return EventPage(shape_events(kept), next_key)


def distinct_values(conn: Connection, column_name: str) -> list[str]:
    """Every distinct value of ``column_name`` (kind or source), sorted.

    A loose index scan: each step seeks the next value greater than the last one
    in the column's index, so the cost grows with the number of distinct values,
    not with the number of events.
    """
    column = _o[column_name]
    walk = select(func.min(column).label("value")).cte("walk", recursive=True)
    step = select(select(func.min(column)).where(column > walk.c.value).scalar_subquery()).where(
        walk.c.value.is_not(None)
    )
    walk = walk.union_all(step)
    return [v for (v,) in conn.execute(select(walk.c.value).where(walk.c.value.is_not(None)))]


def lane_seeds(conn: Connection, pcs: list[str], before: str) -> list[dict[str, Any]]:
    """For each PC and lane, its newest event strictly before ``before``.

    One correlated lookup per (PC, lane) walks that PC's events backwards on
    ``idx_obs_events_pc_at`` from ``before`` to the first of the lane's kinds.
    Events come PC by PC in the order of ``pcs``, lanes in LANES order.
    """
    pc = func.json_each(json.dumps(pcs)).table_valued("value", "key").alias("pc")
    lookups = [
        _newest(
            select(_o.id).where(
                _o.pc_id == pc.c.value, _unindexed(_o.kind).in_(kinds), _o.at < before
            ),
            1,
        )
        .scalar_subquery()
        .label(lane)
        for lane, kinds in LANES.items()
    ]
    seeds = conn.execute(select(pc.c.key, *lookups).order_by(pc.c.key)).all()
    ids = [i for row in seeds for i in row[1:] if i is not None]
    if not ids:
        return []
    by_id = {r.id: r for r in conn.execute(select(*_COLUMNS).where(_o.id.in_(ids)))}
    return shape_events([by_id[i] for i in ids])


# ----------------------------------------------------------------------------- handlers


def _stored(value: datetime | None) -> str | None:
    return None if value is None else db_time(value)


async def event_list(request: Request, args: dict[str, Any]) -> Any:
    filters = EventFilters(
        limit=args["limit"],
        pc_id=args["pc_id"],
        kind=args["kind"],
        source=args["source"],
        start=_stored(args["from"]),
        end=_stored(args["to"]),
        kinds=tuple(args["kinds"] or ()),
        kinds_ex=tuple(args["kinds_ex"] or ()),
        sources=tuple(args["sources"] or ()),
        sources_ex=tuple(args["sources_ex"] or ()),
        logon_type=args["logon_type"],
        payload_key=args["payload_key"],
        payload_value=args["payload_value"],
        after=cursor_key(args["cursor"]),
    )
    page = await database(request).run(list_events, filters)
    return CompactJSON({"events": page.events}, headers=next_cursor_headers(page.next_key))


async def event_kinds(request: Request, args: dict[str, Any]) -> Any:
    return {"kinds": await database(request).run(distinct_values, "kind")}


async def event_sources(request: Request, args: dict[str, Any]) -> Any:
    return {"sources": await database(request).run(distinct_values, "source")}


async def recent_events(request: Request, args: dict[str, Any]) -> Any:
    page = await database(request).run(list_events, EventFilters(limit=args["limit"]))
    return {"events": page.events}


async def event_lane_seeds(request: Request, args: dict[str, Any]) -> Any:
    pcs = list(dict.fromkeys(args["pcs"] or ()))  # duplicates name the same PC
    if not 1 <= len(pcs) <= MAX_LANE_PCS:
        raise ParamError(
            "pcs", f"a comma-separated list of 1 to {MAX_LANE_PCS} PC ids", ",".join(pcs)
        )
    if args["before"] is None:
        raise ParamError("before", "an RFC 3339 timestamp (required)")
    seeds = await database(request).run(lane_seeds, pcs, db_time(args["before"]))
    return {"events": seeds}


# ----------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class RefusedParam(Param):
    """A parameter of the contract this version cannot serve yet: any value is
    refused with ``reason`` rather than silently ignored."""

    reason: str = ""

    def parse(self, raw: str) -> Any:
        raise ParamError(self.name, self.reason, raw)


EVENT = obj(
    id=integer(),
    pc_id=string(),
    at=timestamp(),
    kind=string(),
    source=string(),
    event_record_id=string(nullable=True),
    payload=any_json(),
)
EVENTS = obj(events=array(EVENT))


def _limit(default: int) -> Param:
    return Param(
        "limit",
        "integer",
        f"Events to return, 1 to {MAX_LIMIT}.",
        default=default,
        minimum=1,
        maximum=MAX_LIMIT,
    )


def _list(name: str, what: str) -> Param:
    return Param(name, "list", f"Comma-separated {what}; blank entries ignored.")


LIST_PARAMS = (
    Param("pc_id", "string", "Only this PC's events (exact)."),
    Param("kind", "string", "Only events of this kind (exact)."),
    Param("source", "string", "Only events from this source (exact)."),
    Param("from", "timestamp", "Only events at or after this time."),
    Param("to", "timestamp", "Only events before this time."),
    _list("kinds", "kinds to include (any of them)"),
    _list("kinds_ex", "kinds to exclude"),
    _list("sources", "sources to include (any of them)"),
    _list("sources_ex", "sources to exclude"),
    Param(
        "logon_type",
        "integer",
        "Only events whose payload.logon_type is this number.",
        minimum=0,
        maximum=MAX_LOGON_TYPE,
    ),
    Param(
        "payload_key",
        "string",
        "With payload_value: only events whose payload has this top-level key "
        "(letters, digits, underscore) ...",
        pattern=PAYLOAD_KEY,
    ),
    Param(
        "payload_value",
        "string",
        "... equal to this text, or to this number when the text reads as one. "
        "Ignored without payload_key.",
    ),
    RefusedParam(
        "meta_any",
        "string",
        "Reserved: PCs whose agent metadata has a value containing this text. Agent "
        "metadata is not mirrored yet, so any value is refused (400).",
        pattern="",  # documents that only an empty value (no filter) is accepted
        reason="no value: filtering on agent metadata needs the agent metadata mirror, "
        "which this version does not have yet",
    ),
    _limit(200),
    Param("cursor", "cursor", CURSOR_HELP, pattern=CURSOR_PATTERN),
)

ENDPOINTS = [
    Endpoint(
        "/api/obs_events/kinds",
        event_kinds,
        "Every event kind present, sorted.",
        obj(kinds=array(string())),
    ),
    Endpoint(
        "/api/obs_events/sources",
        event_sources,
        "Every event source present, sorted.",
        obj(sources=array(string())),
    ),
    Endpoint(
        "/api/obs_events/recent",
        recent_events,
        "The newest events fleet-wide (at, then id, descending).",
        EVENTS,
        params=(_limit(50),),
    ),
    Endpoint(
        "/api/obs_events/lane_seeds",
        event_lane_seeds,
        "For each PC and timeline lane (power, session, sleep, active), the newest event "
        "strictly before a time: the state each lane starts a timeline window in.",
        EVENTS,
        params=(
            Param(
                "pcs",
                "list",
                f"Comma-separated PC ids, 1 to {MAX_LANE_PCS}.",
                required=True,
            ),
            Param(
                "before",
                "timestamp",
                "Seeds are the newest events before this time.",
                required=True,
            ),
        ),
    ),
    Endpoint(
        "/api/obs_events",
        event_list,
        "Observability events, newest first (at, then id, descending). Events whose "
        "payload is not JSON are left out, so a page may be short.",
        EVENTS,
        params=LIST_PARAMS,
        headers={NEXT_CURSOR: NEXT_CURSOR_HELP},
    ),
]
