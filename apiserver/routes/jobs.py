"""``/api/jobs`` and ``/api/freeze`` (api.md 3.11): the job catalog and the fleet freeze.

Both come from KV mirrors in ``kv_entries`` (buckets ``jobs`` and
``fleet_config``). A manifest projectord's ``parse_manifest`` refuses is left
out, as the scheduler treats it as "no such job".
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from starlette.requests import Request

from projectord.scheduler.manifest import ManifestError, parse_manifest
from projectord.schema import executions, kv_entries

from ..endpoint import Endpoint, database
from ..openapi_types import array, integer, obj, string

LIVE_STATUSES = ("running", "pending")
FREEZE_FIELDS = ("from", "until", "reason", "tz")

_kv = kv_entries.c
_e = executions.c


def live_counts(conn: Connection) -> dict[str, dict[str, int]]:
    """Per job with any, ``{running, pending}`` executions (``idx_executions_active``).

    The statuses are rendered into the SQL, not bound: SQLite uses a partial
    index only when it can see that the query's WHERE implies the index's.
    """
    live = bindparam("live", list(LIVE_STATUSES), expanding=True, literal_execute=True)
    stmt = (
        select(_e.job_id, _e.status, func.count())
        .where(_e.status.in_(live))
        .group_by(_e.status, _e.job_id)
    )
    out: dict[str, dict[str, int]] = {}
    for job_id, state, n in conn.execute(stmt):
        out.setdefault(job_id, dict.fromkeys(LIVE_STATUSES, 0))[state] = n
    return out


def list_jobs(conn: Connection) -> list[dict[str, Any]]:
    """Valid manifests by id, each with ``live: {running, pending}`` added."""
    stmt = select(_kv.key, _kv.value).where(_kv.bucket == "jobs").order_by(_kv.key)
    live = live_counts(conn)
    out = []
    for key, value in conn.execute(stmt):
        try:
            parse_manifest(key, value)
        except (ManifestError, RecursionError):  # nested too deep to decode
            continue
        manifest = json.loads(value)
        manifest["live"] = live.get(key, dict.fromkeys(LIVE_STATUSES, 0))
        out.append(manifest)
    return out


def shape_freeze(value: str) -> dict[str, str]:
    """The Freeze object (wire-contract 6.12) a stored value means.

    Its known fields as stored (null ones omitted, others ignored, as a typed
    decode would). A value that does not decode as a Freeze reads as ``{}``,
    frozen indefinitely, which is how the scheduler treats it (fail closed).
    """
    try:
        body = json.loads(value)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(body, dict):
        return {}
    fields = {k: body[k] for k in FREEZE_FIELDS if body.get(k) is not None}
    if not all(isinstance(v, str) for v in fields.values()):
        return {}
    return fields


def read_freeze(conn: Connection) -> dict[str, str] | None:
    """The freeze, or None when the key does not exist (not frozen)."""
    stmt = select(_kv.value).where(_kv.bucket == "fleet_config", _kv.key == "freeze")
    value = conn.execute(stmt).scalar()
    return None if value is None else shape_freeze(value)


async def job_list(request: Request, args: dict[str, Any]) -> Any:
    return await database(request).run(list_jobs)


async def freeze(request: Request, args: dict[str, Any]) -> Any:
    return await database(request).run(read_freeze)


LIVE = obj(running=integer(), pending=integer())
JOB = {
    "type": "object",
    "description": "A job manifest as stored in KV `jobs` (wire-contract 6.9), plus `live`.",
    "properties": {"live": LIVE},
    "required": ["live"],
}
FREEZE = {
    **obj(
        optional=FREEZE_FIELDS,
        nullable=True,
        **{name: string() for name in FREEZE_FIELDS},
    ),
    "additionalProperties": False,
}

ENDPOINTS = [
    Endpoint(
        "/api/jobs",
        job_list,
        "Job manifests from KV `jobs`, by id, fields at top level plus live: {running, "
        "pending} = executions of the job in each status. Manifests the scheduler "
        "would refuse are left out (see /api/schedules/rejects).",
        array(JOB),
    ),
    Endpoint(
        "/api/freeze",
        freeze,
        "The fleet freeze (KV fleet_config/freeze), or null when there is none. A stored "
        "value that does not decode reads as {} (frozen indefinitely), as the scheduler "
        "treats it.",
        FREEZE,
    ),
]
