"""Target resolution (scheduler.md 7): which PCs a Target means right now.

Alive = heartbeat within the last 2 minutes (the dashboard's rule). Group
membership is the union of KV ``agent_groups`` and ``agent_groups_derived``,
as agents subscribe by that union (the original read only the first, so
derived members were never targeted). ``pcs`` are taken as listed, alive or
not. The *roster* variant drops the liveness filter for ``all`` and
``groups``; once-per-target dedup and coverage use it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection, select

from ..schema import agents, kv_entries
from ..timestamps import format_db
from .schedule import Target

log = structlog.get_logger("projectord.scheduler")

ALIVE_WINDOW = timedelta(minutes=2)
GROUP_BUCKETS = ("agent_groups", "agent_groups_derived")


def resolve_target(
    target: Target,
    heartbeats: Mapping[str, str | None],
    groups: Mapping[str, frozenset[str]],
    now: datetime,
    alive_only: bool = True,
) -> list[str]:
    """Sorted, de-duplicated PCs of ``target``. ``heartbeats`` covers every known agent."""
    alive_after = format_db(now - ALIVE_WINDOW)

    def counts(pc: str) -> bool:
        if not alive_only:
            return True
        hb = heartbeats.get(pc)
        return hb is not None and hb >= alive_after

    chosen: set[str] = set(target.pcs)
    if target.all:
        chosen.update(pc for pc in heartbeats if counts(pc))
    if target.groups:
        wanted = set(target.groups)
        chosen.update(pc for pc, member_of in groups.items() if member_of & wanted and counts(pc))
    return sorted(chosen)


def parse_groups(value: str) -> frozenset[str]:
    """An AgentGroups value ``{"groups": [...]}``; ValueError for anything else."""
    body = json.loads(value)
    if not isinstance(body, dict) or not isinstance(body.get("groups"), list):
        raise ValueError('expected {"groups": [...]}')
    return frozenset(g for g in body["groups"] if isinstance(g, str))


def read_heartbeats(conn: Connection) -> dict[str, str | None]:
    """Every known agent and its last heartbeat (None if it never sent one)."""
    return dict(conn.execute(select(agents.c.pc_id, agents.c.last_heartbeat)).all())


def read_groups(conn: Connection) -> dict[str, frozenset[str]]:
    """pc_id -> groups, from the mirrored group buckets (their union)."""
    stmt = select(kv_entries.c.bucket, kv_entries.c.key, kv_entries.c.value).where(
        kv_entries.c.bucket.in_(GROUP_BUCKETS)
    )
    out: dict[str, frozenset[str]] = {}
    for bucket, pc_id, value in conn.execute(stmt):
        try:
            member_of = parse_groups(value)
        except ValueError as exc:  # a bare array was an old format: it matches nothing
            log.warning("agent_groups_unreadable", bucket=bucket, pc_id=pc_id, error=str(exc))
            continue
        out[pc_id] = out.get(pc_id, frozenset()) | member_of
    return out
