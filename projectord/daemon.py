"""projectord's life: lock, migrate, bootstrap, reconcile, consume, stop gracefully.

Start-up order follows projection-semantics.md section 2: migrations, broker
resources, then every durable is reconciled with its checkpoint *before* any
projector starts, so no projector can move a position mid-check.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext

from .broker import connect
from .broker_resources import ensure_resources
from .broker_status import BrokerStatus
from .config import Settings
from .core_consumer import CoreConsumer
from .database import Writer, create_writer_engine
from .housekeeping import Housekeeping
from .jetstream_consumer import JetStreamConsumer
from .kv_mirror import MIRRORED_BUCKETS, KvMirror
from .manifest_timeouts import ManifestTimeouts
from .metrics import ProjectordMetrics
from .metrics_listener import MetricsListener, start_metrics_listener
from .migrations import upgrade_to_head
from .projectors import CORE, JETSTREAM
from .pulling import HelperPuller
from .scheduler.signing import signer_from_options
from .scheduler.tick import Scheduler
from .scheduler.waves import WaveSender
from .timestamps import utc_now
from .wal_checkpointer import WalCheckpointer
from .writer_lock import WriterLock

log = structlog.get_logger("projectord")


@dataclass
class BrokerContext:
    """What enrichment steps may use: the JetStream context and the jobs cache."""

    js: JetStreamContext
    manifest_timeouts: ManifestTimeouts


async def _supervise(name: str, run: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    """Run a loop until it returns after a stop; restart it if it ever crashes."""
    while True:
        try:
            await run()
            if stop.is_set():
                return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task_crashed_restarting", task=name)
        if stop.is_set():
            return
        await asyncio.sleep(1)


async def _connect_until_up(settings: Settings, stop: asyncio.Event) -> Client | None:
    """Connect to the broker, waiting as long as it takes; None if stopped first.

    nats-py keeps retrying an unreachable broker by itself (each failure is
    logged through the error callback), so the connect is raced against the
    stop event: a SIGTERM during a broker outage must still stop us promptly.
    """
    delay = 0.5
    stopped = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            attempt = asyncio.create_task(connect(settings.section("nats")))
            await asyncio.wait({attempt, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not attempt.done():
                attempt.cancel()
                await asyncio.gather(attempt, return_exceptions=True)
                return None
            try:
                return attempt.result()
            except Exception as exc:
                log.warning(
                    "broker_unreachable",
                    url=settings.section("nats")["url"],
                    error=str(exc) or type(exc).__name__,
                    retry_in_s=delay,
                )
            await asyncio.wait({stopped}, timeout=delay)
            delay = min(delay * 2, 10)
        return None
    finally:
        stopped.cancel()


class Daemon:
    """One projectord process. ``await Daemon(settings).run()`` returns an exit code."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.options: dict[str, Any] = dict(settings.section("projectord"))
        self.stop = asyncio.Event()
        self.jetstream: list[JetStreamConsumer] = []
        self.core: list[CoreConsumer] = []
        self.housekeeping: Housekeeping | None = None
        self.scheduler: Scheduler | None = None
        self.metrics = ProjectordMetrics()
        self.metrics.declare_projectors((p.name for p in JETSTREAM), (p.name for p in CORE))
        self.metrics_listener: MetricsListener | None = None
        # The watchdog ignores agents last heard of before this instant.
        self.started_at = utc_now()

    def request_stop(self, reason: str = "signal") -> None:
        if not self.stop.is_set():
            log.info("stopping", reason=reason)
            self.stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        lock = WriterLock(self.settings.db_path)
        lock.acquire()  # WriterLockHeld propagates: the CLI reports it
        db = self.settings.section("database")
        engine = create_writer_engine(self.settings.db_path, db["busy_timeout_ms"])
        writer = Writer(engine)
        checkpointer = WalCheckpointer(self.settings.db_path)
        nc: Client | None = None
        timeouts: ManifestTimeouts | None = None
        puller = HelperPuller(self.settings.section("nats"), self.settings.section("log"))
        try:
            # Only the lock holder listens: a second instance must not take the port.
            if self.options["metrics_bind"]:
                self.metrics_listener = start_metrics_listener(
                    self.options["metrics_bind"], self.metrics.registry, log
                )
            before, after = await loop.run_in_executor(None, upgrade_to_head, engine)
            log.info("schema_ready", db=str(self.settings.db_path), before=before, after=after)
            checkpointer.start()
            nc = await _connect_until_up(self.settings, self.stop)
            if nc is None:
                return 0
            js = nc.jetstream()
            await ensure_resources(js)
            timeouts = ManifestTimeouts(js)
            timeouts.start()
            ctx = BrokerContext(js, timeouts)
            self.jetstream = [
                JetStreamConsumer(p, js, writer, self.options, ctx, self.stop, puller, self.metrics)
                for p in JETSTREAM
            ]
            for consumer in self.jetstream:
                await consumer.ensure_positioned()
            if self.stop.is_set():
                return 0
            self.core = [
                CoreConsumer(p, nc, writer, self.options, self.stop, self.metrics) for p in CORE
            ]
            loops = [(c.p.name, c.run) for c in (*self.jetstream, *self.core)]
            for bucket in MIRRORED_BUCKETS:
                mirror = KvMirror(js, writer, bucket, self.options["kv_resync_s"], self.stop)
                loops.append((f"kv_mirror:{bucket}", mirror.run))
            status = BrokerStatus(
                js, writer, JETSTREAM, self.options["status_interval_s"], self.stop, self.metrics
            )
            loops.append(("broker_status", status.run))
            scheduler = self.settings.section("scheduler")
            if scheduler["enabled"]:
                signer = signer_from_options(
                    scheduler["signing_key_file"], scheduler["signing_kid"]
                )
                log.info("command_signing", key=signer.identity if signer else None)
                self.scheduler = Scheduler(
                    js, writer, scheduler, self.stop, signer=signer, metrics=self.metrics
                )
                loops.append(("scheduler", self.scheduler.run))
                waves = WaveSender(js, writer, self.stop, signer=signer)
                loops.append(("rollout_waves", waves.run))
            housekeeping = self.settings.section("housekeeping")
            if housekeeping["enabled"]:
                self.housekeeping = Housekeeping(
                    writer,
                    js,
                    housekeeping,
                    self.stop,
                    self._reaping_safe,
                    self.started_at,
                    metrics=self.metrics,
                )
                loops.append(("housekeeping", self.housekeeping.run))
            tasks = [
                asyncio.create_task(_supervise(name, run, self.stop), name=name)
                for name, run in loops
            ]
            reporter = asyncio.create_task(self._report_progress())
            log.info("projectord_running", tasks=[t.get_name() for t in tasks])
            await self.stop.wait()
            started = time.monotonic()
            done, pending = await asyncio.wait(tasks, timeout=self.options["stop_timeout_s"])
            for task in pending:
                log.warning("stop_timeout_cancelling", task=task.get_name())
                task.cancel()
            await asyncio.gather(*pending, reporter, return_exceptions=True)
            reporter.cancel()
            log.info(
                "projectors_stopped",
                seconds=round(time.monotonic() - started, 3),
                checkpoints={c.p.name: c.checkpoint for c in self.jetstream},
            )
            return 0
        finally:
            if timeouts is not None:
                await timeouts.stop()
            # The projectors' last acks went through the helper: it flushes them.
            await puller.close()
            if nc is not None:
                # Whatever this connection still buffers (the helper flushed the acks).
                try:
                    await nc.flush(timeout=2)
                except Exception as exc:
                    log.warning("final_flush_failed", error=str(exc) or type(exc).__name__)
                await nc.close()
            checkpointer.stop()
            writer.close()
            if self.metrics_listener is not None:
                self.metrics_listener.close()
            lock.release()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    def _reaping_safe(self) -> bool:
        """Whether the streams that prove a run alive have been read to their end."""
        return all(c.caught_up for c in self.jetstream if c.p.stream in ("RESULTS", "EVENTS"))

    async def _report_progress(self) -> None:
        while not self.stop.is_set():
            try:
                await asyncio.wait_for(self.stop.wait(), 60)
            except TimeoutError:
                pass
            for c in self.jetstream:
                log.info(
                    "projector_progress",
                    stream=c.p.stream,
                    consumer=c.p.durable,
                    seq=c.checkpoint,
                    applied=c.stats.applied,
                    rejected=c.stats.rejected,
                    skipped=c.stats.skipped,
                )
            for core in self.core:
                log.info(
                    "projector_progress",
                    stream=None,
                    consumer=core.p.subject,
                    seq=None,
                    applied=core.applied,
                    rejected=core.rejected,
                )
