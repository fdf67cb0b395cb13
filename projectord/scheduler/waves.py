"""Rollout waves with a delay: kept in ``pending_waves`` and sent when due.

The original held them in memory, so a restart lost every wave not yet sent.
A wave is deleted only after its publish was acked; a crash in between sends
it again, which agents drop as a replay (same ``request_id``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import structlog
from nats.js import JetStreamContext
from sqlalchemy import Connection, delete, select

from ..database import Writer
from ..schema import pending_waves
from ..timestamps import format_db, utc_now
from .signing import Signer

log = structlog.get_logger("projectord.scheduler")

_w = pending_waves.c


def due_waves(conn: Connection, now: datetime) -> list[tuple[int, str, bytes, str]]:
    """(id, subject, body, exec_id) of every wave due at ``now``, oldest first."""
    stmt = (
        select(_w.id, _w.subject, _w.body, _w.exec_id)
        .where(_w.due_at <= format_db(now))
        .order_by(_w.due_at, _w.id)
    )
    return [tuple(row) for row in conn.execute(stmt)]


def forget_wave(conn: Connection, wave_id: int) -> None:
    conn.execute(delete(pending_waves).where(_w.id == wave_id))


class WaveSender:
    """Sends due waves every ``interval_s`` until ``stop`` is set."""

    def __init__(
        self,
        js: JetStreamContext,
        writer: Writer,
        stop: asyncio.Event,
        interval_s: float = 5.0,
        clock: Callable[[], datetime] = utc_now,
        signer: Signer | None = None,
    ) -> None:
        self.signer = signer
        self.js = js
        self.writer = writer
        self.stop = stop
        self.interval_s = interval_s
        self.clock = clock

    async def run(self) -> None:
        while not self.stop.is_set():
            await self.send_due()
            try:
                await asyncio.wait_for(self.stop.wait(), self.interval_s)
            except TimeoutError:
                pass

    async def send_due(self) -> int:
        """Send every due wave; return how many went out. Failures wait for the next round."""
        sent = 0
        for wave_id, subject, body, exec_id in await self.writer.read(due_waves, self.clock()):
            try:
                # Signed now, with the real send time.
                headers = self.signer.headers(body) if self.signer else None
                await self.js.publish(subject, body, headers=headers)
            except Exception as exc:
                log.warning("wave_publish_failed", exec_id=exec_id, subject=subject, error=str(exc))
                continue
            await self.writer.transaction(forget_wave, wave_id)
            log.info("wave_sent", exec_id=exec_id, subject=subject)
            sent += 1
        return sent
