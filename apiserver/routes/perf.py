"""Host performance (api.md 3.4): per-PC charts, the fleet chart, top PCs, investigations.

Per-PC charts read one PC's samples through the (pc_id, at) primary key. The
fleet chart reads projectord's per-minute rollup (``host_perf_rollup``) where
that is exact, so a 24 h chart reads about 1,440 rows instead of every sample.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from starlette.requests import Request

from projectord.schema import agents, host_perf_rollup, host_perf_samples, process_perf_samples

from ..endpoint import Endpoint, database, now
from ..openapi_types import array, integer, number, obj, string, timestamp
from ..params import Param, db_time
from ..time_buckets import Buckets, chart_window, unix_seconds, whole_seconds, window_params
from ..wire_time import api_time

# The metrics of a per-PC chart point, in api.md's order.
HOST_METRICS = (
    "cpu_pct",
    "mem_used_bytes",
    "mem_total_bytes",
    "swap_used_bytes",
    "swap_total_bytes",
    "disk_read_bytes_per_sec",
    "disk_written_bytes_per_sec",
    "net_rx_bytes_per_sec",
    "net_tx_bytes_per_sec",
)
# Fleet and top metrics: every accepted spelling -> the column (these are the
# metrics the rollup keeps, ROLLUP_METRICS).
FLEET_METRICS = {
    "cpu_pct": "cpu_pct",
    "cpu": "cpu_pct",
    "mem_used_bytes": "mem_used_bytes",
    "mem": "mem_used_bytes",
    "memory": "mem_used_bytes",
    "disk_read_bytes_per_sec": "disk_read_bytes_per_sec",
    "disk_read": "disk_read_bytes_per_sec",
    "disk_written_bytes_per_sec": "disk_written_bytes_per_sec",
    "disk_written": "disk_written_bytes_per_sec",
    "net_rx_bytes_per_sec": "net_rx_bytes_per_sec",
    "net_rx": "net_rx_bytes_per_sec",
    "net_tx_bytes_per_sec": "net_tx_bytes_per_sec",
    "net_tx": "net_tx_bytes_per_sec",
}
AGGREGATES = {"avg": "avg", "mean": "avg", "max": "max"}
PC_STEP = FLEET_STEP = timedelta(seconds=300)
TOP_WINDOW = timedelta(minutes=5)
INVESTIGATION_WINDOW = timedelta(seconds=300)
MINUTE = timedelta(minutes=1)
_OLDEST = datetime(1, 1, 1, tzinfo=UTC)


def _minute_floor(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def _minute_ceil(value: datetime) -> datetime:
    floor = _minute_floor(value)
    return floor if floor == value else floor + MINUTE


def _not_for_ordering(column: Any) -> ColumnElement[Any]:
    """``+column``: SQLite then cannot use an index on ``column`` to order a GROUP BY.

    Grouping by pc_id otherwise tempts the planner to walk the whole (pc_id, at)
    primary key for its order instead of reading only the recent rows through
    the ``at`` index and sorting those.
    """
    return UnaryExpression(column, operator=operators.custom_op("+"))


# --- /api/agents/{pc_id}/perf ------------------------------------------------------


def pc_points(conn: Connection, pc_id: str, buckets: Buckets) -> list[dict[str, Any]]:
    """One PC's samples in the window, each metric averaged per bucket, ascending.

    Buckets without samples are omitted; a metric NULL in every sample of a
    bucket is null.
    """
    s = host_perf_samples
    bucket = buckets.sql_bucket(s.c.at).label("bucket")
    stmt = (
        select(bucket, *(func.avg(s.c[m]).label(m) for m in HOST_METRICS))
        .where(
            s.c.pc_id == pc_id,
            s.c.at >= db_time(buckets.start),
            s.c.at < db_time(buckets.end),
        )
        .group_by(bucket)
        .order_by(bucket)
    )
    return [
        {"at": buckets.at(row.bucket), **{m: row._mapping[m] for m in HOST_METRICS}}
        for row in conn.execute(stmt)
    ]


async def pc_perf(request: Request, args: dict[str, Any]) -> Any:
    buckets = chart_window(args["from"], args["to"], args["step"] or PC_STEP, now(request))
    points = await database(request).run(pc_points, args["pc_id"], buckets)
    return {"pc_id": args["pc_id"], **buckets.header(), "points": points}


# --- /api/perf/fleet ---------------------------------------------------------------
#
# When the rollup is exact. A bucket starts at floor(unix / step) * step. When
# step is a whole number of minutes, every bucket boundary is a minute boundary,
# so each UTC minute of the rollup lies wholly inside one bucket, and per bucket
# sum(<m>_sum) / sum(<m>_count) is the average of the raw samples, max(<m>_max)
# their maximum and sum(samples) > 0 says the bucket has samples. The window
# [from, to) rarely falls on minutes (to defaults to now), so it is split into
# the whole minutes [ceil(from), floor(to)), read from the rollup, and at most
# two partial minutes [from, ceil(from)) and [floor(to), to), read from the raw
# samples (at most one minute of the fleet each, through idx_host_perf_at) and
# added to the bucket they belong to. Any other step, or a window shorter than
# one whole minute, reads the raw samples only; they are the reference.


def rollup_applies(buckets: Buckets) -> bool:
    """Whether the fleet chart of ``buckets`` may read the minute rollup (see above)."""
    return buckets.step % 60 == 0 and _minute_ceil(buckets.start) < _minute_floor(buckets.end)


def fleet_points_raw(
    conn: Connection, metric: str, agg: str, buckets: Buckets
) -> list[dict[str, Any]]:
    """The fleet chart from every sample in the window (the reference result)."""
    s = host_perf_samples
    bucket = buckets.sql_bucket(s.c.at).label("bucket")
    value = (func.avg if agg == "avg" else func.max)(s.c[metric]).label("value")
    stmt = (
        select(bucket, value)
        .where(s.c.at >= db_time(buckets.start), s.c.at < db_time(buckets.end))
        .group_by(bucket)
        .order_by(bucket)
    )
    return [{"at": buckets.at(row.bucket), "value": row.value} for row in conn.execute(stmt)]


def _raw_partial(
    conn: Connection, metric: str, start: datetime, end: datetime
) -> tuple[int, float | None, int, float | None]:
    """Samples, sum, non-NULL count and max of ``metric`` over raw samples in [start, end)."""
    col = host_perf_samples.c[metric]
    stmt = select(func.count(), func.sum(col), func.count(col), func.max(col)).where(
        host_perf_samples.c.at >= db_time(start), host_perf_samples.c.at < db_time(end)
    )
    samples, total, count, peak = conn.execute(stmt).one()
    return samples, total, count, peak


def fleet_points_rollup(
    conn: Connection, metric: str, agg: str, buckets: Buckets
) -> list[dict[str, Any]]:
    """The same points as :func:`fleet_points_raw`, from the rollup plus partial minutes.

    Only valid when :func:`rollup_applies`.
    """
    r = host_perf_rollup
    first, last = _minute_ceil(buckets.start), _minute_floor(buckets.end)
    bucket = buckets.sql_bucket(r.c.bucket_at).label("bucket")
    stmt = (
        select(
            bucket,
            func.sum(r.c.samples),
            func.sum(r.c[f"{metric}_sum"]),
            func.sum(r.c[f"{metric}_count"]),
            func.max(r.c[f"{metric}_max"]),
        )
        .where(r.c.bucket_at >= db_time(first), r.c.bucket_at < db_time(last))
        .group_by(bucket)
        .order_by(bucket)
    )
    # bucket -> [samples, sum, count, max]
    acc: dict[int, list[Any]] = {row[0]: list(row[1:]) for row in conn.execute(stmt)}
    for start, end in ((buckets.start, first), (last, buckets.end)):
        if start >= end:
            continue
        samples, total, count, peak = _raw_partial(conn, metric, start, end)
        if not samples:
            continue
        have = acc.setdefault(buckets.floor(unix_seconds(start)), [0, None, 0, None])
        have[0] += samples
        if count:
            have[1] = total if have[1] is None else have[1] + total
            have[2] = (have[2] or 0) + count
            have[3] = peak if have[3] is None else max(have[3], peak)
    points = []
    for key in sorted(acc):
        samples, total, count, peak = acc[key]
        if not samples:
            continue
        if agg == "max":
            value = peak
        else:
            value = total / count if count else None
        points.append({"at": buckets.at(key), "value": value})
    return points


def fleet_points(conn: Connection, metric: str, agg: str, buckets: Buckets) -> list[dict]:
    """The fleet chart: ``agg`` of ``metric`` over all PCs per bucket, ascending."""
    if rollup_applies(buckets):
        return fleet_points_rollup(conn, metric, agg, buckets)
    return fleet_points_raw(conn, metric, agg, buckets)


async def fleet_perf(request: Request, args: dict[str, Any]) -> Any:
    buckets = chart_window(args["from"], args["to"], args["step"] or FLEET_STEP, now(request))
    metric, agg = args["metric"], args["agg"]
    points = await database(request).run(fleet_points, metric, agg, buckets)
    return {"metric": metric, "agg": agg, **buckets.header(), "points": points}


# --- /api/perf/top -----------------------------------------------------------------


def top_rows(conn: Connection, metric: str, since: str, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` PCs with the highest average ``metric`` over samples after ``since``.

    Reads the window through idx_host_perf_at and sorts it by PC (30,000 PCs
    sampling every minute: 150,000 rows for 5 minutes); only the winners are
    joined to agents. Ties go to the smaller pc_id.
    """
    s = host_perf_samples
    col = s.c[metric]
    value = func.avg(col).label("value")
    ranked = (
        select(s.c.pc_id, value)
        .where(s.c.at > since, col.is_not(None))
        .group_by(_not_for_ordering(s.c.pc_id))
        .order_by(value.desc(), s.c.pc_id)
        .limit(limit)
        .subquery()
    )
    stmt = (
        select(ranked.c.pc_id, agents.c.hostname, ranked.c.value)
        .select_from(ranked.outerjoin(agents, agents.c.pc_id == ranked.c.pc_id))
        .order_by(ranked.c.value.desc(), ranked.c.pc_id)
    )
    return [dict(row._mapping) for row in conn.execute(stmt)]


async def perf_top(request: Request, args: dict[str, Any]) -> Any:
    window = whole_seconds("window", args["window"] or TOP_WINDOW)
    try:
        since = now(request) - timedelta(seconds=window)
    except OverflowError:  # a window reaching before year 1 covers every sample
        since = _OLDEST
    rows = await database(request).run(top_rows, args["metric"], db_time(since), args["limit"])
    return {"metric": args["metric"], "window_seconds": window, "rows": rows}


# --- /api/perf/active-investigations -----------------------------------------------


def investigations(conn: Connection, since: str) -> list[dict[str, Any]]:
    """PCs with process samples at or after ``since``: newest ``latest_at`` first."""
    p = process_perf_samples
    latest = func.max(p.c.at).label("latest_at")
    recent = (
        select(p.c.pc_id, latest)
        .where(p.c.at >= since)
        .group_by(_not_for_ordering(p.c.pc_id))
        .subquery()
    )
    stmt = (
        select(recent.c.pc_id, agents.c.hostname, recent.c.latest_at)
        .select_from(recent.outerjoin(agents, agents.c.pc_id == recent.c.pc_id))
        .order_by(recent.c.latest_at.desc(), recent.c.pc_id)
    )
    return [
        {"pc_id": row.pc_id, "hostname": row.hostname, "latest_at": api_time(row.latest_at)}
        for row in conn.execute(stmt)
    ]


async def active_investigations(request: Request, args: dict[str, Any]) -> Any:
    since = db_time(now(request) - INVESTIGATION_WINDOW)
    rows = await database(request).run(investigations, since)
    return {"window_seconds": int(INVESTIGATION_WINDOW.total_seconds()), "rows": rows}


# --- declarations ------------------------------------------------------------------

PC_ID = Param("pc_id", "string", "The PC id.", where="path")
METRIC = Param(
    "metric",
    "enum",
    "The metric (aliases accepted; the response names the column).",
    default="cpu_pct",
    choices=FLEET_METRICS,
)
PC_POINT = obj(at=timestamp(), **{m: number(nullable=True) for m in HOST_METRICS})
HOST_ROW = {"pc_id": string(), "hostname": string(nullable=True)}

ENDPOINTS = [
    Endpoint(
        "/api/perf/fleet",
        fleet_perf,
        "All PCs' samples pooled: the metric averaged (or its maximum) per bucket, "
        "ascending; buckets without samples are omitted.",
        obj(
            metric=string(enum=sorted(set(FLEET_METRICS.values()))),
            agg=string(enum=["avg", "max"]),
            **{"from": timestamp(), "to": timestamp()},
            step_seconds=integer(),
            points=array(obj(at=timestamp(), value=number(nullable=True))),
        ),
        params=(
            METRIC,
            Param("agg", "enum", "avg (alias mean) or max.", default="avg", choices=AGGREGATES),
            *window_params("5m"),
        ),
    ),
    Endpoint(
        "/api/perf/top",
        perf_top,
        "The PCs with the highest average of the metric over the last window, highest first.",
        obj(
            metric=string(enum=sorted(set(FLEET_METRICS.values()))),
            window_seconds=integer(),
            rows=array(obj(**HOST_ROW, value=number())),
        ),
        params=(
            METRIC,
            Param("window", "duration", "How far back, at least 1s. Default: 5m."),
            Param(
                "limit",
                "integer",
                "How many PCs (clamped to 1..50).",
                default=5,
                minimum=1,
                maximum=50,
                clamp=True,
            ),
        ),
    ),
    Endpoint(
        "/api/perf/active-investigations",
        active_investigations,
        "PCs that sent process samples in the last 5 minutes, newest first.",
        obj(
            window_seconds=integer(),
            rows=array(obj(**HOST_ROW, latest_at=timestamp())),
        ),
    ),
    Endpoint(
        "/api/agents/{pc_id}/perf",
        pc_perf,
        "One PC's host metrics averaged per bucket, ascending; buckets without samples "
        "are omitted. An unknown PC has no points.",
        obj(
            pc_id=string(),
            **{"from": timestamp(), "to": timestamp()},
            step_seconds=integer(),
            points=array(PC_POINT),
        ),
        params=(PC_ID, *window_params("5m")),
    ),
]
