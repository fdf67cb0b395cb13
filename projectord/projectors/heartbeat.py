"""``heartbeat.>`` (core NATS) -> ``agents``, one row per PC.

Heartbeats and ping replies share this path, and ping replies omit fields a
periodic heartbeat carries; hence the column rules of projection-semantics.md
7.3: identity fields are sticky, metrics are overwritten, and reported-or-not
fields (logon user, command keys) keep the stored value when a message omits
them. The in-memory buffer merges heartbeats of one PC with the same rules, so
a flush writes exactly what applying each message in turn would have.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, case, func
from sqlalchemy.dialects.sqlite import insert

from ..schema import agents
from ..timestamps import now_db
from . import message_fields as f
from .contract import CoreProjector, Delivery, decode_object

STICKY = ("hostname", "os_family")
OVERWRITTEN = (
    "agent_version",
    "last_heartbeat",
    "agent_cpu_pct",
    "agent_rss_bytes",
    "agent_disk_read_bytes",
    "agent_disk_written_bytes",
    "quarantined_versions",
)
KEPT_IF_MISSING = ("last_logon_user", "command_keys", "enforcing", "command_protocols")


def _list_text(values: list[str] | None, *, empty_is_null: bool) -> str | None:
    if values is None or (empty_is_null and not values):
        return None
    return f.json_text(values)


def decode(delivery: Delivery) -> dict[str, Any]:
    body = decode_object(delivery)
    enforcing = f.opt_bool(body, "enforcing")
    return {
        "pc_id": f.req_str(body, "pc_id", non_empty=True),
        "last_heartbeat": f.req_ts(body, "at"),
        "agent_version": f.req_str(body, "agent_version"),
        "hostname": f.opt_str(body, "hostname"),
        "os_family": f.opt_str(body, "os_family"),
        "agent_cpu_pct": f.opt_num(body, "agent_cpu_pct"),
        "agent_rss_bytes": f.opt_int(body, "agent_rss_bytes"),
        "agent_disk_read_bytes": f.opt_int(body, "agent_disk_read_bytes"),
        "agent_disk_written_bytes": f.opt_int(body, "agent_disk_written_bytes"),
        "quarantined_versions": _list_text(
            f.opt_str_list(body, "quarantined_versions"), empty_is_null=True
        ),
        "last_logon_user": f.opt_str(body, "last_logon_user"),
        "last_logon_display_name": f.opt_str(body, "last_logon_display_name"),
        # Absent = agent too old to report; [] = reports holding no keys.
        "command_keys": _list_text(f.opt_str_list(body, "command_keys"), empty_is_null=False),
        "enforcing": None if enforcing is None else int(enforcing),
        "command_protocols": _list_text(
            f.opt_str_list(body, "command_protocols"), empty_is_null=False
        ),
    }


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Combine two buffered heartbeats of one PC as two upserts in a row would."""
    out = dict(new)
    for col in STICKY:
        if old[col] is not None:
            out[col] = old[col]
    for col in KEPT_IF_MISSING:
        if new[col] is None:
            out[col] = old[col]
    if new["last_logon_user"] is None:
        out["last_logon_display_name"] = old["last_logon_display_name"]
    return out


_ins = insert(agents)
_x = _ins.excluded
_a = agents.c
_UPSERT = _ins.on_conflict_do_update(
    index_elements=[_a.pc_id],
    set_={
        **{col: func.coalesce(_a[col], _x[col]) for col in STICKY},
        **{col: _x[col] for col in OVERWRITTEN},
        **{col: func.coalesce(_x[col], _a[col]) for col in KEPT_IF_MISSING},
        "last_logon_display_name": case(
            (_x.last_logon_user.is_not(None), _x.last_logon_display_name),
            else_=_a.last_logon_display_name,
        ),
        "updated_at": _x.updated_at,
    },
)


def apply(conn: Connection, records: Sequence[dict[str, Any]]) -> None:
    now = now_db()
    conn.execute(_UPSERT, [{**r, "updated_at": now} for r in records])


PROJECTOR = CoreProjector(
    name="heartbeat",
    subject="heartbeat.>",
    decode=decode,
    apply=apply,
    key=lambda r: r["pc_id"],
    merge=merge,
)
