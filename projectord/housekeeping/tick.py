"""The cleanup tick: every ``interval_s`` (the first at start), steps in a fixed order.

projection-semantics section 10. One ``now`` per tick; a step that fails is
logged and the next step still runs. Beyond the original:

* expiry and the reaper wait until the RESULTS and EVENTS projectors have
  reached the end of their streams once since start. Right after a restart
  the streams may still hold the very results and started events that show
  a run is alive; reaping first would count a failure that a success follows.
* retention deletes in short transactions (see ``retention``), and stops
  between batches when projectord is stopping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from nats.js import JetStreamContext
from sqlalchemy import Column, Table

from ..database import Writer
from ..metrics import ProjectordMetrics
from ..schema import agents
from ..server_settings import prune_days, read_settings_value
from ..timestamps import format_db, utc_now
from .expiry import expire_pending, reap_orphans
from .retention import cutoffs, delete_oldest
from .watchdog import Watchdog, read_heartbeats

log = structlog.get_logger("projectord.housekeeping")


@dataclass
class TickReport:
    """What one tick did, for the log line and the tests."""

    now: datetime
    events_published: int = 0
    expired: int | None = None  # None: step deferred or failed
    reaped: int | None = None
    deleted: dict[str, int] = field(default_factory=dict)
    agents_pruned: int | None = None
    failed: list[str] = field(default_factory=list)


class Housekeeping:
    """Runs cleanup ticks until ``stop`` is set.

    ``caught_up()`` says whether the projectors expiry and reaping depend on
    have reached their streams' end; ``clock`` gives "now" (tests move it).
    """

    def __init__(
        self,
        writer: Writer,
        js: JetStreamContext,
        options: Mapping[str, Any],
        stop: asyncio.Event,
        caught_up: Callable[[], bool],
        started_at: datetime,
        clock: Callable[[], datetime] = utc_now,
        metrics: ProjectordMetrics | None = None,
    ) -> None:
        self.writer = writer
        self.js = js
        self.options = options
        self.stop = stop
        self.caught_up = caught_up
        self.clock = clock
        self.metrics = metrics or ProjectordMetrics()
        self.watchdog = Watchdog(js, started_at, timedelta(seconds=options["offline_after_s"]))

    async def run(self) -> None:
        while not self.stop.is_set():
            await self.tick()
            try:
                await asyncio.wait_for(self.stop.wait(), self.options["interval_s"])
            except TimeoutError:
                pass

    async def tick(self) -> TickReport:
        """One tick; never raises (each step's failure is logged and reported)."""
        report = TickReport(self.clock())
        steps = (self._watchdog, self._expire_and_reap, self._retention, self._prune_agents)
        for step in steps:
            if self.stop.is_set():
                break
            try:
                await step(report)
            except Exception as exc:
                name = step.__name__.lstrip("_")
                report.failed.append(name)
                log.warning("housekeeping_step_failed", step=name, error=str(exc) or repr(exc))
        log.info(
            "housekeeping_tick",
            now=format_db(report.now),
            events_published=report.events_published,
            expired=report.expired,
            reaped=report.reaped,
            deleted=report.deleted,
            agents_pruned=report.agents_pruned,
            failed=report.failed,
        )
        self._count_rows(report)
        return report

    def _count_rows(self, report: TickReport) -> None:
        touched = [
            ("expire", "executions", report.expired),
            ("reap", "execution_results", report.reaped),
            ("prune", "agents", report.agents_pruned),
            *(("retention", table, rows) for table, rows in report.deleted.items()),
        ]
        for task, table, rows in touched:
            if rows is not None:  # None: the step did not run
                self.metrics.housekeeping_rows_touched(task, table, rows)

    async def _watchdog(self, report: TickReport) -> None:
        heartbeats = await self.writer.read(read_heartbeats)
        report.events_published = await self.watchdog.run_sweep(heartbeats, report.now)

    async def _expire_and_reap(self, report: TickReport) -> None:
        if not self.caught_up():
            log.info(
                "housekeeping_deferred", step="expire_and_reap", reason="projectors catching up"
            )
            return
        now, options = report.now, self.options
        report.expired = await self.writer.transaction(
            expire_pending, now, timedelta(seconds=options["pending_expiry_s"])
        )
        report.reaped = await self.writer.transaction(
            reap_orphans, now, timedelta(seconds=options["reap_fallback_s"])
        )

    async def _retention(self, report: TickReport) -> None:
        for rule, cutoff in cutoffs(self.options, report.now).items():
            report.deleted[rule.table.name] = await self._delete_older(
                rule.table, rule.column, cutoff
            )

    async def _prune_agents(self, report: TickReport) -> None:
        days = prune_days(await read_settings_value(self.js))
        if days > 0:
            cutoff = format_db(report.now - timedelta(days=days))
            report.agents_pruned = await self._delete_older(agents, agents.c.last_heartbeat, cutoff)

    async def _delete_older(self, table: Table, column: Column[str], cutoff: str) -> int:
        """Delete every row with ``column < cutoff``, one short transaction per batch."""
        limit, total = self.options["delete_batch_rows"], 0
        while not self.stop.is_set():
            n = await self.writer.transaction(delete_oldest, table, column, cutoff, limit)
            total += n
            if n < limit:
                break
        return total
