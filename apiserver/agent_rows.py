"""An ``agents`` row as the API's ``AgentRow`` (api.md §3.3), and its JSON schema.

The table stores what heartbeats reported: JSON-array text for lists, 0/1 for
``enforcing``, NULL for "never reported", raw ``""`` logon values. This module
turns that into the wire shape, where "never reported" and "empty" mean an
omitted key and ``""`` logon values mean null.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement

from projectord.schema import agents

from .openapi_types import array, boolean, integer, number, obj, string, timestamp
from .stored_json import decode_or_none
from .wire_time import api_time

# Every column the row is built from, in the row's key order.
COLUMNS: tuple[ColumnElement[Any], ...] = tuple(
    agents.c[name]
    for name in (
        "pc_id",
        "hostname",
        "os_family",
        "agent_version",
        "last_heartbeat",
        "updated_at",
        "agent_cpu_pct",
        "agent_rss_bytes",
        "agent_disk_read_bytes",
        "agent_disk_written_bytes",
        "quarantined_versions",
        "last_logon_user",
        "last_logon_display_name",
        "command_keys",
        "enforcing",
        "nats_user",
        "nats_user_since",
    )
)


def json_strings(text: str | None) -> list[str] | None:
    """The strings of a stored JSON array; None when NULL or not a JSON array.

    Non-string elements are dropped: the contract's lists hold strings only.
    """
    value = decode_or_none(text)
    if not isinstance(value, list):
        return None
    return [item for item in value if isinstance(item, str)]


def _finite(value: float | None) -> float | None:
    # SQLite REAL can hold infinities, which JSON cannot carry.
    return value if value is None or math.isfinite(value) else None


def agent_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``AgentRow`` of one stored row (a mapping with every name in COLUMNS).

    ``quarantined_versions`` is omitted when empty; ``command_keys`` and
    ``enforcing`` when never reported (an empty ``command_keys`` is kept);
    ``nats_user`` and ``nats_user_since`` when NULL or empty. ``meta`` is never
    present: the agent-metadata mirror is a later phase.
    """
    out: dict[str, Any] = {
        "pc_id": row["pc_id"],
        "hostname": row["hostname"],
        "os_family": row["os_family"],
        "agent_version": row["agent_version"],
        "last_heartbeat": api_time(row["last_heartbeat"]),
        "updated_at": api_time(row["updated_at"]),
        "agent_cpu_pct": _finite(row["agent_cpu_pct"]),
        "agent_rss_bytes": row["agent_rss_bytes"],
        "agent_disk_read_bytes": row["agent_disk_read_bytes"],
        "agent_disk_written_bytes": row["agent_disk_written_bytes"],
    }
    quarantined = json_strings(row["quarantined_versions"])
    if quarantined:
        out["quarantined_versions"] = quarantined
    out["last_logon_user"] = row["last_logon_user"] or None
    out["last_logon_display_name"] = row["last_logon_display_name"] or None
    command_keys = json_strings(row["command_keys"])
    if command_keys is not None:
        out["command_keys"] = command_keys
    if row["enforcing"] is not None:
        out["enforcing"] = bool(row["enforcing"])
    if row["nats_user"]:
        out["nats_user"] = row["nats_user"]
    if row["nats_user_since"]:
        out["nats_user_since"] = api_time(row["nats_user_since"])
    return out


AGENT_ROW = obj(
    optional=(
        "quarantined_versions",
        "command_keys",
        "enforcing",
        "nats_user",
        "nats_user_since",
    ),
    pc_id=string(),
    hostname=string(nullable=True),
    os_family=string(nullable=True),
    agent_version=string(nullable=True),
    last_heartbeat=timestamp(nullable=True),
    updated_at=timestamp(nullable=True),
    agent_cpu_pct=number(nullable=True),
    agent_rss_bytes=integer(nullable=True),
    agent_disk_read_bytes=integer(nullable=True),
    agent_disk_written_bytes=integer(nullable=True),
    quarantined_versions=array(string()),
    last_logon_user=string(nullable=True),
    last_logon_display_name=string(nullable=True),
    command_keys=array(string()),
    enforcing=boolean(),
    nats_user=string(),
    nats_user_since=timestamp(),
)
