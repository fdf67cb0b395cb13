"""``/api/projector/status``: how far each projector got, and what it refused.

Checkpoints are committed with the rows they cover (DESIGN decision 1); consumer
and stream figures come from projectord's periodic broker snapshot, so they are
as old as ``snapshot_at``. Core-NATS projectors have no checkpoint or consumer
and appear only once they have rejected something.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select
from starlette.requests import Request

from projectord.schema import (
    broker_consumers,
    broker_streams,
    kv_mirror_status,
    projector_checkpoints,
    projector_gaps,
    projector_rejects,
)
from projectord.timestamps import parse_rfc3339

from ..endpoint import Endpoint, database, now
from ..openapi_types import array, integer, number, obj, string, timestamp
from ..wire_time import api_time

_CONSUMER_FIELDS = (
    "pending",
    "ack_pending",
    "redelivered",
    "ack_floor_seq",
    "delivered_seq",
    "observed_at",
)
_STREAM_FIELDS = ("stream", "messages", "bytes", "first_seq", "last_seq", "consumers")


def status_rows(conn: Connection) -> dict[str, Any]:
    """Every table the status is made of, as plain row mappings (small tables only)."""
    cp, bc = projector_checkpoints.c, broker_consumers.c
    joined = projector_checkpoints.outerjoin(
        broker_consumers, and_(bc.stream == cp.stream, bc.durable == cp.durable)
    )
    checkpoints = conn.execute(
        select(
            cp.projector,
            cp.stream,
            cp.durable,
            cp.last_seq,
            cp.last_message_at,
            cp.updated_at,
            bc.durable.label("consumer_durable"),
            *(bc[name] for name in _CONSUMER_FIELDS),
        ).select_from(joined)
    ).mappings()
    rj, gp = projector_rejects.c, projector_gaps.c
    # Both grouped reads walk idx_rejects_projector_recorded / the gaps table once.
    rejects = conn.execute(
        select(rj.projector, func.count(), func.max(rj.recorded_at)).group_by(rj.projector)
    )
    gaps = conn.execute(select(gp.projector, func.count()).group_by(gp.projector))
    return {
        "checkpoints": [dict(row) for row in checkpoints],
        "rejects": {p: (n, last) for p, n, last in rejects},
        "gaps": {p: n for p, n in gaps},
        "streams": [
            dict(row)
            for row in conn.execute(
                select(broker_streams).order_by(broker_streams.c.stream)
            ).mappings()
        ],
        "consumers_at": conn.execute(select(func.max(bc.observed_at))).scalar(),
        "kv_mirrors": [
            dict(row)
            for row in conn.execute(
                select(kv_mirror_status).order_by(kv_mirror_status.c.bucket)
            ).mappings()
        ],
    }


def _projector_entry(
    name: str,
    checkpoint: dict[str, Any] | None,
    stream_last: dict[str, int],
    rejects: tuple[int, str] | None,
    gap_count: int,
) -> dict[str, Any]:
    reject_count, last_reject_at = rejects or (0, None)
    entry: dict[str, Any] = {
        "projector": name,
        "stream": None,
        "durable": None,
        "checkpoint": None,
        "last_message_at": None,
        "updated_at": None,
        "consumer": None,
        "lag": None,
        "reject_count": reject_count,
        "gap_count": gap_count,
        "last_reject_at": api_time(last_reject_at),
    }
    if checkpoint is None:
        return entry
    entry.update(
        stream=checkpoint["stream"],
        durable=checkpoint["durable"],
        checkpoint=checkpoint["last_seq"],
        last_message_at=api_time(checkpoint["last_message_at"]),
        updated_at=api_time(checkpoint["updated_at"]),
    )
    if checkpoint["consumer_durable"] is not None:
        consumer = {k: checkpoint[k] for k in _CONSUMER_FIELDS}
        consumer["observed_at"] = api_time(consumer["observed_at"])
        entry["consumer"] = consumer
    last_seq = stream_last.get(checkpoint["stream"])
    if last_seq is not None:
        # Against the whole stream: a filtered consumer's own backlog is consumer.pending.
        # Never negative (a recreated stream restarts its sequences).
        entry["lag"] = max(last_seq - checkpoint["last_seq"], 0)
    return entry


def _age_seconds(at: datetime, stored: str | None) -> float | None:
    if stored is None:
        return None
    try:
        return round((at - parse_rfc3339(stored)).total_seconds(), 3)
    except ValueError:  # a legacy value in another format: no age rather than a 500
        return None


def projector_status(rows: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The response body from :func:`status_rows` at the app's time ``at``."""
    checkpoints = {row["projector"]: row for row in rows["checkpoints"]}
    names = sorted(set(checkpoints) | set(rows["rejects"]) | set(rows["gaps"]))
    stream_last = {s["stream"]: s["last_seq"] for s in rows["streams"]}
    projectors = [
        _projector_entry(
            name,
            checkpoints.get(name),
            stream_last,
            rows["rejects"].get(name),
            rows["gaps"].get(name, 0),
        )
        for name in names
    ]
    streams = [
        {**{k: s[k] for k in _STREAM_FIELDS}, "observed_at": api_time(s["observed_at"])}
        for s in rows["streams"]
    ]
    kv_mirrors = [
        {
            "bucket": m["bucket"],
            "synced_at": api_time(m["synced_at"]),
            "changed_at": api_time(m["changed_at"]),
            "key_count": m["key_count"],
            "error": m["error"],
            "error_at": api_time(m["error_at"]),
            "age_seconds": _age_seconds(at, m["synced_at"]),
        }
        for m in rows["kv_mirrors"]
    ]
    stamps = [s["observed_at"] for s in rows["streams"]] + [rows["consumers_at"]]
    snapshot_at = max((s for s in stamps if s is not None), default=None)
    return {
        "projectors": projectors,
        "streams": streams,
        "kv_mirrors": kv_mirrors,
        "snapshot_at": api_time(snapshot_at),
    }


async def status(request: Request, args: dict[str, Any]) -> Any:
    rows = await database(request).run(status_rows)
    return projector_status(rows, now(request))


_CONSUMER = obj(
    nullable=True,
    pending=integer(),
    ack_pending=integer(),
    redelivered=integer(),
    ack_floor_seq=integer(),
    delivered_seq=integer(),
    observed_at=timestamp(),
)
_PROJECTOR = obj(
    projector=string(),
    stream=string(nullable=True),
    durable=string(nullable=True),
    checkpoint=integer(nullable=True),
    last_message_at=timestamp(nullable=True),
    updated_at=timestamp(nullable=True),
    consumer=_CONSUMER,
    lag=integer(nullable=True),
    reject_count=integer(),
    gap_count=integer(),
    last_reject_at=timestamp(nullable=True),
)
_STREAM = obj(
    stream=string(),
    messages=integer(),
    bytes=integer(),
    first_seq=integer(),
    last_seq=integer(),
    consumers=integer(),
    observed_at=timestamp(),
)
_KV_MIRROR = obj(
    bucket=string(),
    synced_at=timestamp(nullable=True),
    changed_at=timestamp(nullable=True),
    key_count=integer(),
    error=string(nullable=True),
    error_at=timestamp(nullable=True),
    age_seconds=number(nullable=True),
)

ENDPOINTS = [
    Endpoint(
        "/api/projector/status",
        status,
        "Per projector: checkpoint, consumer backlog, lag, rejects and gaps; stream sizes"
        " and KV mirror freshness from projectord's broker snapshot.",
        obj(
            projectors=array(_PROJECTOR),
            streams=array(_STREAM),
            kv_mirrors=array(_KV_MIRROR),
            snapshot_at=timestamp(nullable=True),
        ),
    )
]
