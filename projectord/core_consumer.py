"""Core-NATS projectors (heartbeat, host_perf, process_perf): buffer, then flush.

Core NATS has no replay, so these projectors are best effort by nature; what we
can do is never lose what we did receive. Records are buffered (coalesced per
key where the projector says so) and flushed in one transaction every interval
or when the buffer is full. A transient database error puts the window back
under newer arrivals instead of dropping it as the original did; a message the
database refuses is isolated and recorded like a JetStream reject.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from sqlalchemy import Connection

from .batch_commit import commit_isolating, retry_transient
from .checkpoints import record_reject
from .database import Writer
from .metrics import ProjectordMetrics
from .projectors.contract import CoreProjector, Delivery, Rejected

log = structlog.get_logger("projectord.core")


@dataclass(slots=True)
class Buffered:
    delivery: Delivery
    record: Any


class CoreConsumer:
    """Subscribes ``projector.subject`` and flushes its buffer until stopped."""

    def __init__(
        self,
        projector: CoreProjector,
        nc: Client,
        writer: Writer,
        options: dict[str, Any],
        stop: asyncio.Event,
        metrics: ProjectordMetrics | None = None,
    ) -> None:
        self.p = projector
        self.nc = nc
        self.writer = writer
        self.interval: float = options["flush_interval_ms"] / 1000
        self.flush_max: int = options["flush_max"]
        self.max_backoff: float = options["retry_max_backoff_s"]
        self.payload_limit: int = options["reject_payload_bytes"]
        self.stop = stop
        self.metrics = metrics or ProjectordMetrics()
        self.buffer: dict[Any, Buffered] = {}
        self.rejects: list[tuple[Delivery, str]] = []
        self.full = asyncio.Event()
        self.applied = 0
        self.rejected = 0
        self._seq = 0
        self.log = log.bind(stream=None, consumer=projector.subject, seq=None)

    def on_message(self, msg: Msg) -> None:
        """Decode and buffer one message (called for every core-NATS delivery)."""
        delivery = Delivery.from_core(msg)
        try:
            record = self.p.decode(delivery)
        except Rejected as exc:
            self.rejects.append((delivery, str(exc)))
            self.log.warning("message_rejected", subject=delivery.subject, error=str(exc))
            return
        except Exception as exc:
            self.rejects.append((delivery, f"decoder failed: {type(exc).__name__}: {exc}"))
            return
        self._put(Buffered(delivery, record))

    def _put(self, item: Buffered) -> None:
        if self.p.key is None:
            self._seq += 1
            self.buffer[self._seq] = item
        else:
            key = self.p.key(item.record)
            have = self.buffer.get(key)
            if have is not None and self.p.merge is not None:
                item = Buffered(item.delivery, self.p.merge(have.record, item.record))
            self.buffer[key] = item
        if len(self.buffer) >= self.flush_max:
            self.full.set()

    async def run(self) -> None:
        async def cb(msg: Msg) -> None:
            self.on_message(msg)

        sub = await self.nc.subscribe(
            self.p.subject, cb=cb, pending_msgs_limit=1_000_000, pending_bytes_limit=-1
        )
        try:
            while not self.stop.is_set():
                waiter = asyncio.create_task(self.full.wait())
                stopper = asyncio.create_task(self.stop.wait())
                await asyncio.wait(
                    {waiter, stopper}, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
                stopper.cancel()
                await self.flush()
        finally:
            try:
                await sub.unsubscribe()
            except Exception:
                pass
            await self.flush()  # whatever arrived before the unsubscribe

    async def flush(self) -> None:
        """Write the buffered window and any rejects; transient errors are retried."""
        self.full.clear()
        window, self.buffer = list(self.buffer.values()), {}
        self._seq = 0
        rejects, self.rejects = self.rejects, []
        if not window and not rejects:
            return
        ctx = {"stream": None, "consumer": self.p.subject, "seq": None}
        started, poisoned = time.perf_counter(), 0
        if rejects:
            await retry_transient(
                self.writer,
                self._write_rejects,
                rejects,
                max_backoff=self.max_backoff,
                log_context=ctx,
            )
        if window:
            poisoned = await commit_isolating(
                self.writer,
                window,
                self._write,
                self._write_poison,
                max_backoff=self.max_backoff,
                log_context=ctx,
            )
        seconds = time.perf_counter() - started
        self.rejected += len(rejects) + poisoned
        self.applied += len(window) - poisoned
        self.metrics.batch_committed(
            self.p.name, len(window) - poisoned, len(rejects) + poisoned, seconds
        )

    def _write(self, conn: Connection, items: Sequence[Buffered]) -> None:
        self.p.apply(conn, [i.record for i in items])

    def _write_poison(self, conn: Connection, item: Buffered, error: str) -> None:
        record_reject(conn, self.p.name, None, item.delivery, error, self.payload_limit)

    def _write_rejects(self, conn: Connection, rejects: Sequence[tuple[Delivery, str]]) -> None:
        for delivery, error in rejects:
            record_reject(conn, self.p.name, None, delivery, error, self.payload_limit)
