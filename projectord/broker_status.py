"""Snapshots of the broker for apiserver, which has no broker connection.

Every ``interval_s`` projectord writes each stream's size and sequence range,
each projector durable's pending count, ack floor and redeliveries (for
``/api/projector/status``), and whether every stream, KV bucket and object store
the read API probes exists (for ``/api/jetstream/status`` and
``/api/health/fleet``). Rows of streams or durables that no longer exist are
removed, so the tables never show a stale consumer as healthy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from sqlalchemy import Connection, delete, tuple_
from sqlalchemy.dialects.sqlite import insert

from .broker_resources import STREAMS
from .database import Writer
from .metrics import ProjectordMetrics
from .projectors.contract import JetStreamProjector
from .schema import broker_consumers, broker_resources, broker_streams
from .timestamps import now_db

log = structlog.get_logger("projectord.broker_status")

# What the read API reports on (api.md 3.2, the /api/jetstream/status list; the
# /api/health/fleet probes are a subset). projectord creates only some of them
# (broker_resources.py); the others belong to other parts of kanade.
PROBED_STREAMS = ("INVENTORY", "RESULTS", "EXEC", "EVENTS", "AUDIT", "OBS_EVENTS", "NOTIFICATIONS")
PROBED_KV = (
    "script_current",
    "script_status",
    "agents_state",
    "agent_config",
    "agent_groups",
    "agent_groups_derived",
    "agent_meta",
    "group_contacts",
    "schedules",
    "jobs",
    "fleet_config",
    "notifications_read",
    "jobs_yaml",
    "schedules_yaml",
)
PROBED_OBJECT_STORES = ("agent_releases", "app_packages", "scripts", "result_output", "collections")


def probed_resources() -> list[tuple[str, str, str]]:
    """(kind, name, backing stream) of every resource recorded in ``broker_resources``.

    A KV bucket ``X`` is the stream ``KV_X``; an object store ``Y`` is ``OBJ_Y``.
    """
    return [
        *(("stream", name, name) for name in PROBED_STREAMS),
        *(("kv", name, f"KV_{name}") for name in PROBED_KV),
        *(("object_store", name, f"OBJ_{name}") for name in PROBED_OBJECT_STORES),
    ]


async def list_streams(js: JetStreamContext) -> dict[str, Any]:
    """Every stream of the account by name, with its info, from the paged listing.

    One request per 256 streams (the server's page size) instead of one per
    resource probed.
    """
    infos: dict[str, Any] = {}
    offset = 0
    while True:
        page = await js.streams_info_iterator(offset=offset)
        batch = list(page)
        infos.update((info.config.name, info) for info in batch)
        offset += len(batch)
        if not batch or offset >= page.total:
            return infos


def resource_rows(stream_names: Container[str], observed_at: str) -> list[dict[str, Any]]:
    """One ``broker_resources`` row per probed resource: present iff its stream exists."""
    return [
        {
            "kind": kind,
            "name": name,
            "present": int(stream in stream_names),
            "observed_at": observed_at,
        }
        for kind, name, stream in probed_resources()
    ]


@dataclass(frozen=True)
class Snapshot:
    """Rows for ``broker_streams``, ``broker_consumers`` and ``broker_resources``."""

    streams: list[dict[str, Any]]
    consumers: list[dict[str, Any]]
    resources: list[dict[str, Any]]


def stream_row(info: Any, observed_at: str) -> dict[str, Any]:
    state = info.state
    return {
        "stream": info.config.name,
        "messages": state.messages,
        "bytes": state.bytes,
        "first_seq": state.first_seq,
        "last_seq": state.last_seq,
        "consumers": state.consumer_count,
        "observed_at": observed_at,
    }


def consumer_row(info: Any, observed_at: str) -> dict[str, Any]:
    return {
        "stream": info.stream_name,
        "durable": info.name,
        "pending": info.num_pending or 0,
        "ack_pending": info.num_ack_pending or 0,
        "redelivered": info.num_redelivered or 0,
        "ack_floor_seq": info.ack_floor.stream_seq if info.ack_floor else 0,
        "delivered_seq": info.delivered.stream_seq if info.delivered else 0,
        "observed_at": observed_at,
    }


async def take_snapshot(js: JetStreamContext, projectors: Sequence[JetStreamProjector]) -> Snapshot:
    """Stream, consumer and resource rows as the broker reports them now."""
    observed_at = now_db()
    listed = await list_streams(js)
    streams = [stream_row(listed[s.name], observed_at) for s in STREAMS if s.name in listed]
    consumers = []
    for p in projectors:
        try:
            consumers.append(consumer_row(await js.consumer_info(p.stream, p.durable), observed_at))
        except NotFoundError:
            continue
    return Snapshot(streams, consumers, resource_rows(listed, observed_at))


def _upsert(table: Any, keys: list[str]) -> Any:
    stmt = insert(table)
    others = [c.name for c in table.c if c.name not in keys]
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={name: stmt.excluded[name] for name in others}
    )


_STREAMS_UPSERT = _upsert(broker_streams, ["stream"])
_CONSUMERS_UPSERT = _upsert(broker_consumers, ["stream", "durable"])
_RESOURCES_UPSERT = _upsert(broker_resources, ["kind", "name"])


def write_snapshot(conn: Connection, snapshot: Snapshot) -> None:
    """Replace the status tables' contents with one snapshot (in the caller's transaction)."""
    streams, consumers, resources = snapshot.streams, snapshot.consumers, snapshot.resources
    if streams:
        conn.execute(_STREAMS_UPSERT, streams)
    conn.execute(
        delete(broker_streams).where(broker_streams.c.stream.not_in([s["stream"] for s in streams]))
    )
    if consumers:
        conn.execute(_CONSUMERS_UPSERT, consumers)
    present = [(c["stream"], c["durable"]) for c in consumers]
    pair = tuple_(broker_consumers.c.stream, broker_consumers.c.durable)
    conn.execute(delete(broker_consumers).where(pair.not_in(present)))
    if resources:
        conn.execute(_RESOURCES_UPSERT, resources)
    # Rows of names no longer probed (an older release's list) would be reported forever.
    kinds = tuple_(broker_resources.c.kind, broker_resources.c.name)
    conn.execute(
        delete(broker_resources).where(kinds.not_in([(r["kind"], r["name"]) for r in resources]))
    )


class BrokerStatus:
    """Writes a snapshot every ``interval_s`` until ``stop`` is set."""

    def __init__(
        self,
        js: JetStreamContext,
        writer: Writer,
        projectors: Sequence[JetStreamProjector],
        interval_s: float,
        stop: asyncio.Event,
        metrics: ProjectordMetrics | None = None,
    ) -> None:
        self.js = js
        self.writer = writer
        self.projectors = projectors
        self.interval_s = interval_s
        self.stop = stop
        self.metrics = metrics or ProjectordMetrics()
        self._names = {(p.stream, p.durable): p.name for p in projectors}

    async def run(self) -> None:
        while not self.stop.is_set():
            try:
                snapshot = await take_snapshot(self.js, self.projectors)
                await self.writer.transaction(write_snapshot, snapshot)
                for row in snapshot.consumers:
                    name = self._names[row["stream"], row["durable"]]
                    self.metrics.consumer_state(name, row["pending"], row["ack_pending"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker may be restarting; try again later
                log.warning("broker_status_failed", error=str(exc) or type(exc).__name__)
            try:
                await asyncio.wait_for(self.stop.wait(), self.interval_s)
            except TimeoutError:
                pass
