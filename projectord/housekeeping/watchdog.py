"""Agent watchdog: ``agent_offline`` / ``agent_online`` events from heartbeat ages.

projection-semantics section 9. Open outages live in memory (``pc_id`` -> the
last heartbeat before the outage, "the key"). Events are published to
``obs.<pc_id>`` through JetStream, so the obs projector stores them like any
agent's, and their record ids are derived from the key: a retried publish, or
a second backend sweeping the same fleet, deduplicates instead of doubling.
PCs last heard of before this process started are ignored, so a restart after
a long stop does not report the whole fleet as having just gone offline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from nats.js import JetStreamContext
from sqlalchemy import Connection, select

from ..schema import agents
from ..timestamps import epoch_millis, format_db, format_wire, parse_rfc3339

log = structlog.get_logger("projectord.housekeeping")

SOURCE = "backend:heartbeat-watchdog"


@dataclass(frozen=True)
class OutageEvent:
    """One event to publish. ``key`` and ``at`` are in storage format."""

    kind: str  # "agent_offline" or "agent_online"
    pc_id: str
    key: str
    at: str


def sweep(
    outages: Mapping[str, str],
    heartbeats: Iterable[tuple[str, str | None]],
    now: datetime,
    started_at: datetime,
    threshold: timedelta,
) -> list[OutageEvent]:
    """The events one sweep emits, in order per PC. Pure.

    * stale (heartbeat older than ``now - threshold``) and no open outage:
      ``agent_offline`` at the last heartbeat, which becomes the key;
    * open outage and a fresh heartbeat: ``agent_online`` at that heartbeat;
    * open outage, heartbeat newer than the key but stale again (recovered and
      lost between two sweeps): ``agent_online`` then a new ``agent_offline``.
    """
    stale_before = format_db(now - threshold)
    start = format_db(started_at)
    events: list[OutageEvent] = []
    for pc_id, heartbeat in heartbeats:
        if heartbeat is None or heartbeat < start:
            continue
        key = outages.get(pc_id)
        stale = heartbeat < stale_before
        if key is not None and heartbeat > key:
            events.append(OutageEvent("agent_online", pc_id, key, heartbeat))
            key = None
        if key is None and stale:
            events.append(OutageEvent("agent_offline", pc_id, heartbeat, heartbeat))
    return events


def event_body(event: OutageEvent, threshold: timedelta) -> bytes:
    """The ObsEvent JSON (wire-contract 6.6) for ``event``."""
    key = parse_rfc3339(event.key)
    body = {
        "pc_id": event.pc_id,
        "at": format_wire(parse_rfc3339(event.at)),
        "kind": event.kind,
        "source": SOURCE,
        "event_record_id": f"{event.kind}:{epoch_millis(key)}",
        "payload": {
            "last_heartbeat": format_wire(key),
            "threshold_secs": int(threshold.total_seconds()),
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def read_heartbeats(conn: Connection) -> list[tuple[str, str | None]]:
    """(pc_id, last_heartbeat) of every agent that ever sent a heartbeat."""
    stmt = select(agents.c.pc_id, agents.c.last_heartbeat).where(
        agents.c.last_heartbeat.is_not(None)
    )
    return [(pc, hb) for pc, hb in conn.execute(stmt)]


class Watchdog:
    """Holds the open outages between sweeps; ``run_sweep`` publishes one sweep."""

    def __init__(self, js: JetStreamContext, started_at: datetime, threshold: timedelta) -> None:
        self.js = js
        self.started_at = started_at
        self.threshold = threshold
        self.outages: dict[str, str] = {}

    async def run_sweep(self, heartbeats: Iterable[tuple[str, str | None]], now: datetime) -> int:
        """Publish this sweep's events; return how many were acked.

        A PC's outage state changes only when all its events were acked, so a
        failed publish is simply redone by the next sweep.
        """
        heartbeats = list(heartbeats)
        known = {pc_id for pc_id, _hb in heartbeats}
        # A pruned agent's outage is forgotten with it.
        self.outages = {pc: key for pc, key in self.outages.items() if pc in known}
        by_pc: dict[str, list[OutageEvent]] = {}
        for event in sweep(self.outages, heartbeats, now, self.started_at, self.threshold):
            by_pc.setdefault(event.pc_id, []).append(event)
        acked = 0
        for pc_id, events in by_pc.items():
            try:
                for event in events:
                    await self.js.publish(f"obs.{pc_id}", event_body(event, self.threshold))
            except Exception as exc:
                log.warning("watchdog_publish_failed", pc_id=pc_id, error=str(exc) or repr(exc))
                continue
            acked += len(events)
            last = events[-1]  # the PC's state after the sweep
            if last.kind == "agent_offline":
                self.outages[pc_id] = last.key
            else:
                del self.outages[pc_id]
        return acked
