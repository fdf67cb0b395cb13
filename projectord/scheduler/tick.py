"""The scheduler loop: once a minute, every enabled schedule, gate by gate.

Schedules come from the ``schedules`` mirror (``kv_mirror``), the job from KV
at fire time. Beyond the original (scheduler.md 11):

* only the projectord holding the database lock runs this, so nothing
  double-fires;
* each schedule's tick runs as its own task and a tick never starts while the
  previous one of the same schedule is still running;
* every decision, fired or skipped and why, goes to ``schedule_fires``;
* a calendar fire missed while projectord was down fires once on start if
  still within its starting deadline (or ``catch_up_grace_s``). Progress is
  stored *before* dispatching, so a crash can lose a fire but never repeat it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from sqlalchemy import select

from ..database import Writer
from ..metrics import ProjectordMetrics
from ..schema import kv_mirror_status
from ..server_settings import controller_group, read_settings_value
from ..timestamps import format_wire, parse_rfc3339, utc_now
from .calendar_fires import fires_between
from .dedup import (
    eligible_pcs,
    in_flight_count,
    mark_key_pc,
    mark_key_target,
    mark_prefix_pc,
    suppression_window,
    target_armed,
    unsuppressed,
    within_cap,
)
from .dispatch import Dispatched, Dispatcher, DispatchError
from .gates import active_reason, constraints_reason, freeze_reason
from .manifest import Manifest, ManifestError, parse_manifest
from .reason_codes import reason_code
from .records import (
    clear_rejects,
    decided_through,
    job_run_state,
    read_bucket,
    read_completions,
    read_value,
    record_decision,
    record_reject,
    set_decided_through,
)
from .schedule import Schedule, ScheduleError, Target, parse_schedule
from .signing import Signer
from .targets import read_groups, read_heartbeats, resolve_target
from .triggers import AgentEvent, Calendar, Reconcile

log = structlog.get_logger("projectord.scheduler")

TICK = timedelta(minutes=1)
MARKS_BUCKET = "scheduler_dispatch"
MARK_TTL_S = 3600
MARK_TTL = timedelta(seconds=MARK_TTL_S)
MARKS_PER_KEY_MAX = 64  # above this, marks are read with one watch over the prefix
MARKS_TIMEOUT_S = 60


class Skip(Exception):
    """A gate said no; the message is the recorded reason."""


def _mirror_synced(conn: Any, bucket: str) -> bool:
    c = kv_mirror_status.c
    return conn.execute(select(c.synced_at).where(c.bucket == bucket)).scalar() is not None


class Scheduler:
    """Fires schedules until ``stop`` is set. ``clock`` gives "now" (tests move it)."""

    def __init__(
        self,
        js: JetStreamContext,
        writer: Writer,
        options: Mapping[str, Any],
        stop: asyncio.Event,
        clock: Callable[[], datetime] = utc_now,
        signer: Signer | None = None,
        metrics: ProjectordMetrics | None = None,
    ) -> None:
        self.js = js
        self.writer = writer
        self.stop = stop
        self.clock = clock
        self.metrics = metrics or ProjectordMetrics()
        self.grace = timedelta(seconds=options["catch_up_grace_s"])
        self.dispatcher = Dispatcher(js, writer, signer)
        self.running: dict[str, asyncio.Task[None]] = {}
        self._marks: Any = None
        self._fleet_read: asyncio.Future[Any] | None = None
        self._mark_cache: dict[str, datetime] = {}

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        await self._wait_for_mirrors()
        while not self.stop.is_set():
            await self.tick(self.clock())
            now = self.clock()
            wait = TICK.total_seconds() - (now.timestamp() % TICK.total_seconds())
            try:
                await asyncio.wait_for(self.stop.wait(), wait)
            except TimeoutError:
                pass
        await self.settle()

    async def _wait_for_mirrors(self) -> None:
        """Until the schedules and freeze are loaded, a tick would see no schedule
        and an unknown freeze; the first tick waits for them instead."""

        def synced(conn: Any) -> bool:
            return all(_mirror_synced(conn, b) for b in ("schedules", "fleet_config"))

        while not self.stop.is_set() and not await self.writer.read(synced):
            try:
                await asyncio.wait_for(self.stop.wait(), 0.2)
            except TimeoutError:
                pass

    async def settle(self) -> None:
        """Wait for every schedule tick in progress."""
        await asyncio.gather(*self.running.values(), return_exceptions=True)

    async def tick(self, now: datetime) -> None:
        """Start one tick of every enabled backend schedule (as tasks)."""
        self._fleet_read = None  # read afresh, once, by the first schedule that needs it
        self._mark_cache = {k: t for k, t in self._mark_cache.items() if now - t < MARK_TTL}
        invalid: set[str] = set()
        for key, value, revision in await self.writer.read(read_bucket, "schedules"):
            try:
                schedule = parse_schedule(key, value)
            except ScheduleError as exc:
                invalid.add(key)
                if await self.writer.transaction(
                    record_reject, "schedule", key, revision, str(exc)
                ):
                    log.warning("schedule_invalid", schedule_id=key, error=str(exc))
                continue
            if not schedule.enabled or schedule.runs_on_agent:
                continue
            previous = self.running.get(key)
            if previous is not None and not previous.done():
                await self._decide(schedule, now, "skipped", "previous tick still running")
                continue
            self.running[key] = asyncio.create_task(self._tick_one(schedule, now))
        # Fixed or deleted schedules lose their reject.
        await self.writer.transaction(clear_rejects, "schedule", invalid)

    async def _decide(
        self,
        s: Schedule,
        due: datetime,
        outcome: str,
        reason: str | None = None,
        fired: Dispatched | None = None,
    ) -> None:
        await self.writer.transaction(
            record_decision,
            s.id,
            s.job_id,
            due,
            outcome,
            reason,
            fired.exec_id if fired else None,
            fired.target_count if fired else None,
        )
        self.metrics.schedule_decision(outcome, reason_code(outcome, reason))
        if outcome != "skipped":
            log.info(
                "schedule_decision",
                schedule_id=s.id,
                outcome=outcome,
                reason=reason,
                exec_id=fired.exec_id if fired else None,
            )

    async def _tick_one(self, s: Schedule, now: datetime) -> None:
        try:
            if isinstance(s.trigger, Calendar):
                await self._calendar(s, now)
            elif isinstance(s.trigger, Reconcile):
                await self._reconcile(s, s.trigger, now)
            elif isinstance(s.trigger, AgentEvent):
                await self._decide(s, now, "skipped", "agent-side event trigger; agents fire it")
        except Skip as skip:
            await self._decide(s, now, "skipped", str(skip))
        except DispatchError as exc:
            await self._decide(s, now, "failed", str(exc))
        except Exception as exc:  # never let one schedule stop the others
            log.exception("schedule_tick_failed", schedule_id=s.id)
            try:
                await self._decide(s, now, "failed", f"{type(exc).__name__}: {exc}")
            except Exception:
                pass

    # ------------------------------------------------------------------ gates

    async def _gates(self, s: Schedule, now: datetime) -> Manifest:
        """Freeze, active, constraints, then the job as it is now; Skip with the reason."""

        def freeze(conn: Any) -> tuple[bool, str | None]:
            return _mirror_synced(conn, "fleet_config"), read_value(conn, "fleet_config", "freeze")

        synced, raw = await self.writer.read(freeze)
        if not synced:
            raise Skip("freeze state unknown (fleet_config not mirrored yet)")
        for reason in (
            freeze_reason(raw.encode() if raw is not None else None, now),
            active_reason(s.active, s.zone, now),
            constraints_reason(s.constraints, s.zone, now),
        ):
            if reason:
                raise Skip(reason)
        return await self._job(s.job_id)

    async def _job(self, job_id: str) -> Manifest:
        try:
            entry = await (await self.js.key_value("jobs")).get(job_id)
        except (KeyNotFoundError, BucketNotFoundError):
            raise Skip(f"job not registered: {job_id}") from None
        try:
            manifest = parse_manifest(job_id, entry.value or b"")
        except ManifestError as exc:
            if await self.writer.transaction(
                record_reject, "job", job_id, entry.revision, str(exc)
            ):
                log.warning("job_invalid", job_id=job_id, error=str(exc))
            raise Skip(f"job not registered: {job_id} is invalid ({exc})") from None
        return manifest

    # ------------------------------------------------------------------ calendar

    async def _calendar(self, s: Schedule, now: datetime) -> None:
        assert isinstance(s.trigger, Calendar)
        through = await self.writer.read(decided_through, s.id)
        if through is None:  # first sight: fires from now on
            await self.writer.transaction(set_decided_through, s.id, now)
            return
        due = fires_between(s.trigger.rule, s.zone, through, now)
        if not due:
            return
        # Decided before anything is sent: a crash may lose this fire, never repeat it.
        await self.writer.transaction(set_decided_through, s.id, now)
        *missed, latest = due
        for instant in missed:
            await self._decide(s, instant, "skipped", "missed while projectord was down")
        allowed = max(s.starting_deadline or timedelta(0), self.grace, TICK)
        if now - latest > allowed:
            await self._decide(s, latest, "skipped", "missed while projectord was down")
            return
        # Recorded against the fire instant, not the tick that ran it.
        try:
            manifest = await self._gates(s, now)
            deadline = latest + s.starting_deadline if s.starting_deadline else None
            target, expected, _roster = await self._targets(s, manifest, now)
            fired = await self.dispatcher.dispatch(
                s, manifest, target, len(expected), now, deadline, with_waves=True
            )
        except Skip as skip:
            await self._decide(s, latest, "skipped", str(skip))
            return
        except DispatchError as exc:
            await self._decide(s, latest, "failed", str(exc))
            return
        await self._decide(s, latest, "fired", None, fired)

    # ------------------------------------------------------------------ reconcile

    async def _fleet(self) -> tuple[dict[str, str | None], dict[str, frozenset[str]]]:
        """Agents' heartbeats and groups, read once per tick for every schedule."""

        def read(conn: Any) -> tuple[dict[str, str | None], dict[str, frozenset[str]]]:
            return read_heartbeats(conn), read_groups(conn)

        if self._fleet_read is None:
            self._fleet_read = asyncio.ensure_future(self.writer.read(read))
        return await asyncio.shield(self._fleet_read)

    async def _reconcile(self, s: Schedule, trigger: Reconcile, now: datetime) -> None:
        manifest = await self._gates(s, now)
        target, expected, roster = await self._targets(s, manifest, now)
        cooldown = trigger.cooldown
        since = now - cooldown if cooldown else None
        completions = await self.writer.read(read_completions, s.job_id, since)
        window = suppression_window(
            s.jitter or timedelta(0), manifest.timeout, s.retry_max, s.retry_backoff
        )
        if trigger.per_pc:
            eligible = eligible_pcs(expected, completions, cooldown, now)
            if not eligible:
                raise Skip("no PC needs a run")
            marks = await self._read_marks(
                [mark_key_pc(s.id, pc) for pc in eligible], mark_prefix_pc(s.id)
            )
            pc_marks = {pc: marks[mark_key_pc(s.id, pc)] for pc in eligible}
            dispatched = {pc: m for pc, m in pc_marks.items() if m and now - m < window}
            eligible = unsuppressed(eligible, pc_marks, window, now)
            if not eligible:
                raise Skip("every eligible PC has a dispatch in flight")
            running, last_finished = await self.writer.read(job_run_state, s.job_id)
            in_flight = in_flight_count(running, dispatched, last_finished)
            eligible = within_cap(eligible, s.max_concurrent, in_flight)
            if not eligible:
                raise Skip(f"max_concurrent reached ({in_flight} in flight)")
            fired = await self.dispatcher.dispatch(
                s,
                manifest,
                Target(pcs=tuple(eligible)),
                len(eligible),
                now,
                self._deadline(s, now),
                with_waves=False,
            )
            await self._write_marks([mark_key_pc(s.id, pc) for pc in eligible], now)
        else:
            if not target_armed(roster, completions, cooldown, now):
                raise Skip("target already succeeded")
            if not expected:
                raise Skip("no PC of the target is alive")
            key = mark_key_target(s.id)
            mark = (await self._read_marks([key]))[key]
            if mark is not None and now - mark < window:
                raise Skip("previous dispatch still in flight")
            fired = await self.dispatcher.dispatch(
                s, manifest, target, len(expected), now, self._deadline(s, now), with_waves=True
            )
            await self._write_marks([key], now)
        await self._decide(s, now, "fired", None, fired)

    async def _targets(
        self, s: Schedule, manifest: Manifest, now: datetime
    ) -> tuple[Target, list[str], list[str]]:
        """(what to dispatch to, the alive PCs expected, the roster incl. offline PCs).

        A controller-tier job runs only on alive members of ServerSettings'
        ``controller_group`` (scheduler.md 8), addressed as explicit PCs; every
        doubt (no group, unreadable settings, a rollout, nobody left) refuses.
        """
        heartbeats, groups = await self._fleet()
        expected = resolve_target(s.target, heartbeats, groups, now)
        roster = resolve_target(s.target, heartbeats, groups, now, alive_only=False)
        if not manifest.controller:
            return s.target, expected, roster
        if s.waves:
            raise Skip("controller-tier job: rollouts are refused")
        try:
            group = controller_group(await read_settings_value(self.js))
        except Exception as exc:
            raise Skip(f"controller-tier job: server settings unreadable ({exc})") from None
        if group is None:
            raise Skip("controller-tier job: no controller_group in server settings")
        members = set(resolve_target(Target(groups=(group,)), heartbeats, groups, now))
        requested = members if s.target.all else set(expected)
        pcs = sorted(requested & members)
        if not pcs:
            raise Skip(f"controller-tier job: no alive member of {group} in the target")
        return Target(pcs=tuple(pcs)), pcs, roster

    @staticmethod
    def _deadline(s: Schedule, now: datetime) -> datetime | None:
        return now + s.starting_deadline if s.starting_deadline else None

    # ------------------------------------------------------------------ marks

    async def _marks_kv(self) -> Any:
        if self._marks is None:
            try:
                self._marks = await self.js.key_value(MARKS_BUCKET)
            except BucketNotFoundError:
                self._marks = await self.js.create_key_value(
                    bucket=MARKS_BUCKET, history=1, ttl=MARK_TTL_S
                )
        return self._marks

    async def _read_marks(
        self, keys: list[str], prefix: str | None = None
    ) -> dict[str, datetime | None]:
        """Mark instants by key; a missing or unreadable mark is None (never suppresses).

        Marks this process wrote are known without asking the broker (only the
        lock holder schedules, so nobody else writes them); the rest are read,
        many under one ``prefix`` with a single watch rather than a request each.
        """
        now = self.clock()
        out: dict[str, datetime | None] = {}
        unknown = []
        for key in keys:
            cached = self._mark_cache.get(key)
            if cached is not None and now - cached < MARK_TTL:
                out[key] = cached
            else:
                unknown.append(key)
        if unknown:
            out.update(await self._fetch_marks(unknown, prefix))
        return out

    async def _fetch_marks(self, keys: list[str], prefix: str | None) -> dict[str, datetime | None]:
        out: dict[str, datetime | None] = dict.fromkeys(keys)
        try:
            kv = await self._marks_kv()
            if prefix is not None and len(keys) > MARKS_PER_KEY_MAX:
                watcher = await kv.watch(prefix + ">")
                try:
                    while (entry := await watcher.updates(timeout=30)) is not None:
                        if entry.key in out and entry.operation is None:
                            out[entry.key] = _mark_instant(entry.value)
                finally:
                    await watcher.stop()
                return out
        except Exception as exc:
            log.warning("dispatch_marks_unavailable", error=str(exc))
            return dict.fromkeys(keys)
        sem = asyncio.Semaphore(16)

        async def read(key: str) -> None:
            async with sem:
                try:
                    out[key] = _mark_instant((await kv.get(key)).value)
                except Exception:
                    out[key] = None

        await asyncio.gather(*(read(k) for k in keys))
        return out

    async def _write_marks(self, keys: list[str], now: datetime) -> None:
        """Write the marks, pipelined; a failure only loses suppression (logged)."""
        try:
            await self._marks_kv()
            value = format_wire(now).encode()
            futures = [
                await self.js.publish_async(f"$KV.{MARKS_BUCKET}.{key}", value, wait_stall=30)
                for key in keys
            ]
            acks = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), MARKS_TIMEOUT_S
            )
        except Exception as exc:
            log.warning("dispatch_marks_failed", error=str(exc) or type(exc).__name__)
            return
        for key, ack in zip(keys, acks, strict=True):
            if not isinstance(ack, BaseException):
                self._mark_cache[key] = now
        failed = sum(isinstance(a, BaseException) for a in acks)
        if failed:
            log.warning("dispatch_marks_failed", failed=failed, of=len(keys))


def _mark_instant(value: bytes | None) -> datetime | None:
    try:
        return parse_rfc3339((value or b"").decode())
    except ValueError:
        return None
