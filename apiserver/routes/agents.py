"""``/api/agents``, ``/api/agents/versions`` and ``/api/agents/{pc_id}`` (api.md §3.3).

The list is offset-paged. Without a regex filter SQL does the filtering, the
paging and the counts. With one, SQL applies the other filters and reads at
most CANDIDATES rows in sort order; the patterns run on those, and the page and
counts come from the rows that match (with a status filter, the other status's
chip count comes from a window of its own). Agent metadata (``meta.*`` filters,
``meta:<key>`` sort) needs the agent_meta mirror, a later phase: those
parameters are refused with 400 rather than ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    case,
    exists,
    false,
    func,
    or_,
    select,
)
from starlette.requests import Request

from projectord.schema import agents

from ..agent_rows import AGENT_ROW, COLUMNS, agent_row
from ..endpoint import CompactJSON, Endpoint, NotFound, database, now
from ..online_rule import ONLINE_WINDOW
from ..openapi_types import array, integer, obj, string
from ..params import Param, ParamError, db_time, regex_param

CANDIDATES = 10_000  # rows the regex filters examine at most
ID_CHUNK = 500  # ids per IN (...) query, well under SQLite's bound-variable limit

# Every accepted ``sort`` spelling and the column it names.
SORT_SPELLINGS = {
    "pc_id": "pc_id",
    "hostname": "hostname",
    "os_family": "os_family",
    "os": "os_family",
    "agent_version": "agent_version",
    "agent": "agent_version",
    "last_heartbeat": "last_heartbeat",
    "last_logon_user": "last_logon_user",
    "last_logon": "last_logon_user",
    "updated_at": "updated_at",
}
DEFAULT_SORT = "updated_at"
NOT_NULL_SORTS = {"pc_id", "updated_at"}  # no NULLS LAST term needed (keeps indexes usable)
# A "" logon user is shown as null, so it sorts with the NULLs (last).
SORT_EXPRESSIONS = {"last_logon_user": func.nullif(agents.c.last_logon_user, "")}

# Regex filter -> the columns it searches (a row matches if any of them does).
PATTERN_COLUMNS = {
    "q": ("pc_id", "hostname"),
    "user": ("last_logon_user", "last_logon_display_name"),
    "version": ("agent_version",),
}

META_OPS = ("contains", "eq", "neq", "starts", "empty", "set", "absent")
META_VALUE_OPS = {"contains", "eq", "neq", "starts"}  # ignored when the value is blank
META_LATER = "no agent-metadata filter: the agent_meta mirror is a later phase"
META_SORT_LATER = "no agent-metadata sort: the agent_meta mirror is a later phase"

TOTAL, ONLINE, OFFLINE = "X-Total-Count", "X-Online-Count", "X-Offline-Count"


@dataclass(frozen=True)
class AgentQuery:
    """What a list request asks for.

    ``online_since`` is the stored-text time a heartbeat must reach to count as
    online; ``patterns`` maps a filter name of PATTERN_COLUMNS to its compiled
    RE2 pattern (None = no filter).
    """

    online_since: str
    sort: str = DEFAULT_SORT
    descending: bool = True
    status: str | None = None
    quarantined: str | None = None
    patterns: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    offset: int = 0

    def active_patterns(self) -> dict[str, Any]:
        return {k: v for k, v in self.patterns.items() if v is not None}


@dataclass(frozen=True)
class AgentPage:
    """Shaped rows plus the count headers' values (None: the header is not sent)."""

    rows: list[dict[str, Any]]
    total: int
    online: int | None = None
    offline: int | None = None

    def headers(self) -> dict[str, str]:
        out = {TOTAL: str(self.total)}
        if self.online is not None and self.offline is not None:
            out[ONLINE], out[OFFLINE] = str(self.online), str(self.offline)
        return out


# --- SQL pieces ------------------------------------------------------------------


def _online(since: str) -> ColumnElement[bool]:
    return agents.c.last_heartbeat >= since


def _status_clause(status: str, since: str, common: bool = True) -> ColumnElement[bool]:
    """Rows of ``status``; ``common`` tells SQLite whether many rows have it.

    The hint picks the plan. For a common status, walking the list order and
    filtering finds a page after a few rows; for a rare one (the online PCs of
    an office fleet at night, the offline ones by day) that walk reads the
    whole table, and reading the few matching rows from the heartbeat index
    and sorting them is the fast plan. Measured on 30,000 agents: 0.1 ms
    against 17 ms, each way round.
    """
    # A PC that never sent a heartbeat is offline too.
    clause = (
        _online(since)
        if status == "online"
        else or_(agents.c.last_heartbeat.is_(None), agents.c.last_heartbeat < since)
    )
    return func.likely(clause) if common else func.unlikely(clause)


def _is_common(matching: int, rows: int, wanted: int) -> bool:
    """Whether walking the list order reads fewer rows than reading all ``matching``.

    The walk reads about ``wanted * rows / matching`` rows to find ``wanted``.
    """
    return matching * matching >= wanted * rows


def _quarantine_clause(version: str) -> ColumnElement[bool]:
    """``version`` is an element of the row's quarantined_versions JSON array."""
    listed = func.json_each(agents.c.quarantined_versions).table_valued("value")
    contains = exists().select_from(listed).where(listed.c.value == version)
    # json_each raises on malformed text; CASE evaluates it only for valid JSON.
    return case((func.json_valid(agents.c.quarantined_versions) == 1, contains), else_=false())


def _filtered(
    stmt: Select[Any], query: AgentQuery, status: str | None, common: bool = True
) -> Select[Any]:
    """``stmt`` with the SQL-side filters; ``status`` is passed separately so the
    chip counts can be taken without it."""
    if query.quarantined is not None:
        stmt = stmt.where(_quarantine_clause(query.quarantined))
    if status is not None:
        stmt = stmt.where(_status_clause(status, query.online_since, common))
    return stmt


def _ordered(stmt: Select[Any], query: AgentQuery) -> Select[Any]:
    """``stmt`` in list order: NULLs last, the sort column in its direction, then
    pc_id in the same direction so pages are stable."""
    column = SORT_EXPRESSIONS.get(query.sort, agents.c[query.sort])
    key = column.desc() if query.descending else column.asc()
    tie = agents.c.pc_id.desc() if query.descending else agents.c.pc_id.asc()
    if query.sort == "pc_id":
        return stmt.order_by(key)
    if query.sort in NOT_NULL_SORTS:
        return stmt.order_by(key, tie)
    return stmt.order_by(key.nulls_last(), tie)


# --- the list ----------------------------------------------------------------------


def _sql_counts(conn: Connection, query: AgentQuery) -> tuple[int, int]:
    """(rows, online rows) after every filter except status."""
    if query.quarantined is None:
        # count(*) alone is SQLite's b-tree count and the online count an index
        # range: together about half the cost of one scan with a FILTER term.
        everyone = conn.execute(select(func.count()).select_from(agents)).scalar_one()
        online = conn.execute(
            select(func.count()).select_from(agents).where(_online(query.online_since))
        ).scalar_one()
        return everyone, online
    stmt = select(func.count(), func.count().filter(_online(query.online_since)))
    everyone, online = conn.execute(_filtered(stmt.select_from(agents), query, None)).one()
    return everyone, online


def _sql_rows(conn: Connection, query: AgentQuery, common: bool) -> list[dict[str, Any]]:
    stmt = _ordered(_filtered(select(*COLUMNS), query, query.status, common), query)
    stmt = stmt.limit(query.limit).offset(query.offset)
    return [agent_row(r._mapping) for r in conn.execute(stmt).all()]


def _sql_page(conn: Connection, query: AgentQuery) -> AgentPage:
    if query.limit is None:
        rows = _sql_rows(conn, query, common=True)
        return AgentPage(rows, query.offset + len(rows))
    everyone, online = _sql_counts(conn, query)
    offline = everyone - online
    total = {None: everyone, "online": online, "offline": offline}[query.status]
    common = _is_common(total, everyone, query.offset + query.limit)
    return AgentPage(_sql_rows(conn, query, common), total, online, offline)


def _matches(row: Any, patterns: dict[str, Any]) -> bool:
    return all(
        any(pattern.search(getattr(row, c) or "") is not None for c in PATTERN_COLUMNS[name])
        for name, pattern in patterns.items()
    )


def _matching(conn: Connection, query: AgentQuery, status: str | None) -> list[tuple[str, bool]]:
    """(pc_id, online) of the rows among the first CANDIDATES in list order
    (SQL filters and ``status`` applied) that every pattern matches."""
    patterns = query.active_patterns()
    names = {c for name in patterns for c in PATTERN_COLUMNS[name]}
    columns = [agents.c.pc_id, agents.c.last_heartbeat, *(agents.c[n] for n in names - {"pc_id"})]
    stmt = _ordered(_filtered(select(*columns), query, status), query).limit(CANDIDATES)
    since = query.online_since
    return [
        (row.pc_id, row.last_heartbeat is not None and row.last_heartbeat >= since)
        for row in conn.execute(stmt).all()
        if _matches(row, patterns)
    ]


def _rows_by_id(conn: Connection, ids: list[str]) -> list[dict[str, Any]]:
    """Full rows of ``ids``, in that order (same read transaction: all still there)."""
    found: dict[str, Any] = {}
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        found.update(
            (r.pc_id, r) for r in conn.execute(select(*COLUMNS).where(agents.c.pc_id.in_(chunk)))
        )
    return [agent_row(found[pc_id]._mapping) for pc_id in ids]


def _regex_page(conn: Connection, query: AgentQuery) -> AgentPage:
    matched = _matching(conn, query, query.status)
    end = None if query.limit is None else query.offset + query.limit
    rows = _rows_by_id(conn, [pc_id for pc_id, _ in matched[query.offset : end]])
    if query.limit is None:
        return AgentPage(rows, query.offset + len(rows))
    if query.status is None:
        online = sum(1 for _, is_online in matched if is_online)
        return AgentPage(rows, len(matched), online, len(matched) - online)
    # The chips ignore status: count the other status in its own window.
    other = "offline" if query.status == "online" else "online"
    counts = {query.status: len(matched), other: len(_matching(conn, query, other))}
    return AgentPage(rows, len(matched), counts["online"], counts["offline"])


def list_agents(conn: Connection, query: AgentQuery) -> AgentPage:
    """One page of agents in list order, with the counts for the headers.

    Without patterns, SQL filters, pages and counts exactly. With patterns, SQL
    applies quarantined and status and reads at most CANDIDATES rows in list
    order; the page, the total and the chips count the rows that match. The
    chips (online/offline, ignoring status) are computed only when ``limit`` is
    given; without it the total is ``offset`` plus the rows returned.
    """
    if query.active_patterns():
        return _regex_page(conn, query)
    return _sql_page(conn, query)


# --- detail and versions ----------------------------------------------------------------


def get_agent(conn: Connection, pc_id: str) -> dict[str, Any] | None:
    """The ``AgentRow`` of ``pc_id``, or None."""
    row = conn.execute(select(*COLUMNS).where(agents.c.pc_id == pc_id)).first()
    return None if row is None else agent_row(row._mapping)


def version_counts(conn: Connection, online_since: str) -> list[dict[str, Any]]:
    """Agents per version (``""`` counted as null) and how many of them are online;
    most agents first, then by version ascending (null before any text)."""
    # Grouped by the raw column (an index on it can serve the scan); "" is merged
    # into null here, over a handful of groups.
    online = func.count().filter(_online(online_since))
    stmt = select(agents.c.agent_version, func.count(), online).group_by(agents.c.agent_version)
    counts: dict[str | None, list[int]] = {}
    for version, total, active in conn.execute(stmt):
        merged = counts.setdefault(version or None, [0, 0])
        merged[0] += total
        merged[1] += active
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0] is not None, kv[0] or ""))
    return [{"version": v, "total": t, "active": a} for v, (t, a) in ordered]


# --- parameters ----------------------------------------------------------------------


def check_meta_params(items: Iterable[tuple[str, str]]) -> None:
    """Refuse ``meta.<key>.<op>`` query parameters (api.md §3.3) with ParamError.

    The name splits on its last dot into key and op. A malformed name or an
    unknown op is refused as such; a value op (contains, eq, neq, starts) with a
    blank value is ignored, as the contract says; anything else needs the
    agent_meta mirror, which does not exist yet.
    """
    for name, value in items:
        if not name.startswith("meta."):
            continue
        key, dot, op = name[len("meta.") :].rpartition(".")
        if not dot or not key.strip():
            raise ParamError(name, "a name of the form meta.<key>.<op> with a non-empty key")
        if op not in META_OPS:
            raise ParamError(name, "an op of " + ", ".join(repr(o) for o in META_OPS), op)
        if op in META_VALUE_OPS and not value.strip():
            continue
        raise ParamError(name, META_LATER, value)


@dataclass(frozen=True)
class SortParam(Param):
    """``sort``: an enum of column spellings, plus ``meta:<key>``, which is refused
    with its own reason until the agent_meta mirror exists (and so is not listed
    as a valid value in the OpenAPI document)."""

    def parse(self, raw: str) -> Any:
        if raw.startswith("meta:"):
            if not raw[len("meta:") :].strip():
                raise ParamError(self.name, "meta:<key> with a non-empty key", raw)
            raise ParamError(self.name, META_SORT_LATER, raw)
        return super().parse(raw)


@dataclass(frozen=True)
class LaterPhaseParam(Param):
    """A parameter of the contract this phase cannot serve: any non-blank value is
    refused with 400 saying why. Declare it with ``pattern=""`` so the OpenAPI
    document admits only the empty value (which counts as absent)."""

    def parse(self, raw: str) -> Any:
        raise ParamError(self.name, META_LATER, raw)


def agent_query(args: dict[str, Any], online_since: str) -> AgentQuery:
    """The AgentQuery of parsed list parameters."""
    sort = args["sort"]
    direction = args["dir"] or ("desc" if sort == DEFAULT_SORT else "asc")
    return AgentQuery(
        online_since=online_since,
        sort=sort,
        descending=direction == "desc",
        status=args["status"],
        quarantined=args["quarantined"],
        patterns={name: args[name] for name in PATTERN_COLUMNS},
        limit=args["limit"],
        offset=args["offset"],
    )


def _online_since(request: Request) -> str:
    return db_time(now(request) - ONLINE_WINDOW)


# --- handlers -----------------------------------------------------------------------


async def agent_list(request: Request, args: dict[str, Any]) -> Any:
    check_meta_params(request.query_params.multi_items())
    query = agent_query(args, _online_since(request))
    page = await database(request).run(list_agents, query)
    return CompactJSON(page.rows, headers=page.headers())


async def agent_versions(request: Request, args: dict[str, Any]) -> Any:
    return await database(request).run(version_counts, _online_since(request))


async def agent_detail(request: Request, args: dict[str, Any]) -> Any:
    pc_id = args["pc_id"]
    row = await database(request).run(get_agent, pc_id)
    if row is None:
        raise NotFound(f"no agent {pc_id!r}")
    return row


_META_HELP = "Agent metadata filters need the agent_meta mirror (a later phase): refused with 400."

LIST_PARAMS = (
    regex_param("q", "the PC id or the hostname (a missing one matches as empty)"),
    regex_param("user", "the last logon user or its display name (a missing one matches as empty)"),
    regex_param("version", "the agent version (a missing one matches as empty)"),
    Param(
        "quarantined",
        "string",
        "Only agents whose quarantined_versions list holds exactly this version.",
    ),
    Param(
        "status",
        "enum",
        "online: a heartbeat within the last 2 minutes; offline: an older one or none.",
        choices={"online": "online", "offline": "offline"},
    ),
    Param("limit", "integer", "Rows to return; absent: every row from offset on.", minimum=0),
    Param("offset", "integer", "Rows to skip first.", default=0, minimum=0),
    SortParam(
        "sort",
        "enum",
        "Sort column: pc_id, hostname, os_family (os), agent_version (agent), "
        "last_heartbeat, last_logon_user (last_logon) or updated_at. NULLs (and empty "
        "logon users) always come last; ties are broken by pc_id in the same direction. "
        "meta:<key> needs the agent_meta mirror (a later phase) and is refused with 400.",
        default=DEFAULT_SORT,
        choices=SORT_SPELLINGS,
    ),
    Param(
        "dir",
        "enum",
        "Sort direction; default desc for updated_at, else asc.",
        choices={"asc": "asc", "desc": "desc"},
    ),
    LaterPhaseParam("meta_key", "string", _META_HELP, pattern=""),
    LaterPhaseParam("meta_value", "string", _META_HELP, pattern=""),
    LaterPhaseParam("meta_any", "string", _META_HELP, pattern=""),
)

ENDPOINTS = [
    Endpoint(
        "/api/agents",
        agent_list,
        "Agents, filtered, sorted and offset-paged. meta.<key>.<op> parameters need the "
        "agent_meta mirror (a later phase) and are refused with 400.",
        array(AGENT_ROW),
        params=LIST_PARAMS,
        headers={
            TOTAL: "With limit: the rows matching every filter, status included. "
            "Without limit: offset plus the rows returned.",
            ONLINE: "Only with limit: online rows matching every filter except status.",
            OFFLINE: "Only with limit: offline rows matching every filter except status.",
        },
    ),
    Endpoint(
        "/api/agents/versions",
        agent_versions,
        "Agents per agent version and how many are online; most agents first, then by version.",
        array(obj(version=string(nullable=True), total=integer(), active=integer())),
    ),
    Endpoint(
        "/api/agents/{pc_id}",
        agent_detail,
        "One agent.",
        AGENT_ROW,
        params=(Param("pc_id", "string", "The PC id.", where="path"),),
        statuses={404: "No agent with this PC id."},
    ),
]
