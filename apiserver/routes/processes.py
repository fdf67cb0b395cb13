"""Processes of one PC (api.md 3.5): the newest snapshot and a per-name timeline.

Process samples exist only while a PC is in investigation mode. Both routes
read one PC's rows through the (pc_id, at, pid) primary key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, case, func, literal, select
from starlette.requests import Request

from projectord.schema import process_perf_samples

from ..endpoint import Endpoint, database, now
from ..openapi_types import array, integer, mapping, number, obj, string, timestamp
from ..params import Param, db_time
from ..time_buckets import Buckets, chart_window, window_params
from ..wire_time import api_time

METRICS = {
    "cpu_pct": "cpu_pct",
    "cpu": "cpu_pct",
    "rss_bytes": "rss_bytes",
    "rss": "rss_bytes",
    "mem": "rss_bytes",
    "memory": "rss_bytes",
    "disk_read_bytes_per_sec": "disk_read_bytes_per_sec",
    "disk_read": "disk_read_bytes_per_sec",
    "disk_written_bytes_per_sec": "disk_written_bytes_per_sec",
    "disk_written": "disk_written_bytes_per_sec",
}
OTHER = "other"  # the series every name outside the top ones folds into
TIMELINE_STEP = timedelta(seconds=60)
PROCESS_COLUMNS = (
    "pid",
    "name",
    "cpu_pct",
    "rss_bytes",
    "disk_read_bytes_per_sec",
    "disk_written_bytes_per_sec",
)


# --- /api/agents/{pc_id}/processes -------------------------------------------------


def latest_processes(conn: Connection, pc_id: str) -> tuple[str | None, list[dict[str, Any]]]:
    """The stored time of the PC's newest sample instant and its rows, ``cpu_pct`` desc.

    Ties in cpu_pct go to the smaller pid. No samples: ``(None, [])``.
    """
    p = process_perf_samples
    latest = conn.execute(
        select(p.c.at).where(p.c.pc_id == pc_id).order_by(p.c.at.desc()).limit(1)
    ).scalar()
    if latest is None:
        return None, []
    rows = conn.execute(
        select(*(p.c[name] for name in PROCESS_COLUMNS))
        .where(p.c.pc_id == pc_id, p.c.at == latest)
        .order_by(p.c.cpu_pct.desc(), p.c.pid)
    )
    return latest, [dict(row._mapping) for row in rows]


async def processes(request: Request, args: dict[str, Any]) -> Any:
    latest, rows = await database(request).run(latest_processes, args["pc_id"])
    return {"pc_id": args["pc_id"], "latest_at": api_time(latest), "processes": rows}


# --- /api/agents/{pc_id}/processes/timeline ----------------------------------------


def timeline(
    conn: Connection, pc_id: str, metric: str, buckets: Buckets, top: int
) -> tuple[list[str], list[dict[str, Any]]]:
    """The series names and the points of the PC's process timeline.

    Only non-NULL values of ``metric`` count. The ``top`` names with the
    highest window-wide average (ties: name ascending) keep their own series;
    every other name folds into ``other``, whose bucket value is the average
    over all of its rows in the bucket (as each name's is over its rows). A
    process literally named ``other`` among the top shares that series.
    Points are the buckets with any value, ascending.
    """
    p = process_perf_samples
    col = p.c[metric]
    in_window = (
        p.c.pc_id == pc_id,
        p.c.at >= db_time(buckets.start),
        p.c.at < db_time(buckets.end),
        col.is_not(None),
    )
    average = func.avg(col)
    tops = list(
        conn.execute(
            select(p.c.name)
            .where(*in_window)
            .group_by(p.c.name)
            .order_by(average.desc(), p.c.name)
            .limit(top)
        ).scalars()
    )
    if not tops:
        return [], []
    series = case((p.c.name.in_(tops), p.c.name), else_=literal(OTHER)).label("series")
    bucket = buckets.sql_bucket(p.c.at).label("bucket")
    rows = conn.execute(
        select(bucket, series, average.label("value"))
        .where(*in_window)
        .group_by(bucket, series)
        .order_by(bucket)
    )
    points: dict[int, dict[str, float]] = {}
    seen: set[str] = set()
    for row in rows:
        points.setdefault(row.bucket, {})[row.series] = row.value
        seen.add(row.series)
    names = tops + ([OTHER] if OTHER in seen and OTHER not in tops else [])
    order = {name: n for n, name in enumerate(names)}
    return names, [
        {
            "at": buckets.at(key),
            "values": dict(sorted(values.items(), key=lambda item: order[item[0]])),
        }
        for key, values in sorted(points.items())
    ]


async def process_timeline(request: Request, args: dict[str, Any]) -> Any:
    step = args["step"] or TIMELINE_STEP
    buckets = chart_window(args["from"], args["to"], step, now(request))
    metric = args["metric"]
    names, points = await database(request).run(
        timeline, args["pc_id"], metric, buckets, args["top"]
    )
    return {
        "pc_id": args["pc_id"],
        "metric": metric,
        **buckets.header(),
        "names": names,
        "points": points,
    }


# --- declarations ------------------------------------------------------------------

PC_ID = Param("pc_id", "string", "The PC id.", where="path")
PROCESS = obj(
    pid=integer(),
    name=string(),
    cpu_pct=number(),
    rss_bytes=integer(),
    disk_read_bytes_per_sec=number(nullable=True),
    disk_written_bytes_per_sec=number(nullable=True),
)

ENDPOINTS = [
    Endpoint(
        "/api/agents/{pc_id}/processes",
        processes,
        "The processes of the PC's newest process sample, highest cpu_pct first; "
        "no samples: latest_at null and no processes.",
        obj(pc_id=string(), latest_at=timestamp(nullable=True), processes=array(PROCESS)),
        params=(PC_ID,),
    ),
    Endpoint(
        "/api/agents/{pc_id}/processes/timeline",
        process_timeline,
        "Per bucket, the average of the metric for each of the top process names (by "
        "window-wide average) and for 'other' (every other name). A name missing from a "
        "bucket was not observed there.",
        obj(
            pc_id=string(),
            metric=string(enum=sorted(set(METRICS.values()))),
            **{"from": timestamp(), "to": timestamp()},
            step_seconds=integer(),
            names=array(string()),
            points=array(obj(at=timestamp(), values=mapping(number()))),
        ),
        params=(
            PC_ID,
            Param(
                "metric",
                "enum",
                "The metric (aliases accepted; the response names the column).",
                default="cpu_pct",
                choices=METRICS,
            ),
            *window_params("60s"),
            Param(
                "top",
                "integer",
                "How many names keep their own series (clamped to 1..20).",
                default=5,
                minimum=1,
                maximum=20,
                clamp=True,
            ),
        ),
    ),
]
