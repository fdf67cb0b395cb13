"""Snapshots of the streams and of our durable consumers, for ``/api/projector/status``.

apiserver cannot ask the broker, so every ``interval_s`` projectord writes each
stream's size and sequence range and each projector durable's pending count,
ack floor and redeliveries. Rows of streams or durables that no longer exist
are removed, so the table never shows a stale consumer as healthy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from sqlalchemy import Connection, delete, tuple_
from sqlalchemy.dialects.sqlite import insert

from .broker_resources import STREAMS
from .database import Writer
from .projectors.contract import JetStreamProjector
from .schema import broker_consumers, broker_streams
from .timestamps import now_db

log = structlog.get_logger("projectord.broker_status")


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


async def take_snapshot(
    js: JetStreamContext, projectors: Sequence[JetStreamProjector]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(stream rows, consumer rows) as the broker reports them now."""
    observed_at = now_db()
    streams, consumers = [], []
    for spec in STREAMS:
        try:
            streams.append(stream_row(await js.stream_info(spec.name), observed_at))
        except NotFoundError:
            continue
    for p in projectors:
        try:
            consumers.append(consumer_row(await js.consumer_info(p.stream, p.durable), observed_at))
        except NotFoundError:
            continue
    return streams, consumers


def _upsert(table: Any, keys: list[str]) -> Any:
    stmt = insert(table)
    others = [c.name for c in table.c if c.name not in keys]
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={name: stmt.excluded[name] for name in others}
    )


_STREAMS_UPSERT = _upsert(broker_streams, ["stream"])
_CONSUMERS_UPSERT = _upsert(broker_consumers, ["stream", "durable"])


def write_snapshot(
    conn: Connection, streams: list[dict[str, Any]], consumers: list[dict[str, Any]]
) -> None:
    """Replace the status tables' contents with one snapshot."""
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


class BrokerStatus:
    """Writes a snapshot every ``interval_s`` until ``stop`` is set."""

    def __init__(
        self,
        js: JetStreamContext,
        writer: Writer,
        projectors: Sequence[JetStreamProjector],
        interval_s: float,
        stop: asyncio.Event,
    ) -> None:
        self.js = js
        self.writer = writer
        self.projectors = projectors
        self.interval_s = interval_s
        self.stop = stop

    async def run(self) -> None:
        while not self.stop.is_set():
            try:
                streams, consumers = await take_snapshot(self.js, self.projectors)
                await self.writer.transaction(write_snapshot, streams, consumers)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker may be restarting; try again later
                log.warning("broker_status_failed", error=str(exc) or type(exc).__name__)
            try:
                await asyncio.wait_for(self.stop.wait(), self.interval_s)
            except TimeoutError:
                pass
