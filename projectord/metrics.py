"""projectord's Prometheus metrics, in a registry of their own.

One :class:`ProjectordMetrics` per process (the daemon makes it and hands it to
the parts it instruments); a part made without one gets a private instance, so
tests and tools that build a consumer or a scheduler alone need no metrics set-up.
Every metric is labelled with bounded values only: projector names, decision
outcomes and reason codes, housekeeping tasks and table names.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

PREFIX = "kanade_projectord_"

# A batch is 1 to batch_size (at most 10 000) messages.
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
# A commit takes milliseconds; a locked or slow disk, seconds.
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ProjectordMetrics:
    """The counters, histograms and gauges of one projectord process."""

    def __init__(self) -> None:
        # A `_created` gauge beside every counter and histogram doubles the series
        # stored for nothing the dashboards use (process-wide setting).
        disable_created_metrics()
        self.registry = CollectorRegistry()
        r, by_projector = self.registry, ("projector",)
        self.applied = Counter(
            PREFIX + "messages_applied",
            "Messages written to the projection (core-NATS projectors: records after "
            "coalescing per key).",
            by_projector,
            registry=r,
        )
        self.rejected = Counter(
            PREFIX + "messages_rejected",
            "Messages refused (undecodable, against the contract, or refused by the "
            "database) and recorded in projector_rejects.",
            by_projector,
            registry=r,
        )
        self.batch_size = Histogram(
            PREFIX + "batch_messages",
            "Messages written per transaction.",
            by_projector,
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            PREFIX + "commit_duration_seconds",
            "Time to commit one batch, retries and splits included.",
            by_projector,
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self.checkpoint = Gauge(
            PREFIX + "checkpoint_sequence",
            "Last stream sequence applied (the checkpoint in projector_checkpoints).",
            by_projector,
            registry=r,
        )
        self.pending = Gauge(
            PREFIX + "consumer_pending_messages",
            "Messages in the stream not yet delivered to the projector's durable (lag), "
            "as of the last broker snapshot.",
            by_projector,
            registry=r,
        )
        self.ack_pending = Gauge(
            PREFIX + "consumer_ack_pending_messages",
            "Messages delivered to the projector's durable and not yet acked, as of the "
            "last broker snapshot.",
            by_projector,
            registry=r,
        )
        self.decisions = Counter(
            PREFIX + "schedule_decisions",
            "Scheduler decisions by outcome (fired, skipped, failed) and reason code.",
            ("outcome", "reason"),
            registry=r,
        )
        self.housekeeping_rows = Counter(
            PREFIX + "housekeeping_rows",
            "Rows changed by housekeeping, by task (expire, reap, retention, prune) and table.",
            ("task", "table"),
            registry=r,
        )

    def declare_projectors(self, jetstream: Iterable[str], core: Iterable[str]) -> None:
        """Show every projector's series from the start, at zero, before its first batch."""
        for name in (*jetstream, *core):
            for metric in (self.applied, self.rejected, self.batch_size, self.commit_seconds):
                metric.labels(name)

    def batch_committed(self, projector: str, applied: int, rejected: int, seconds: float) -> None:
        """Count one committed transaction of ``applied + rejected`` messages."""
        self.applied.labels(projector).inc(applied)
        self.rejected.labels(projector).inc(rejected)
        self.batch_size.labels(projector).observe(applied + rejected)
        self.commit_seconds.labels(projector).observe(seconds)

    def checkpoint_at(self, projector: str, seq: int) -> None:
        """The projector's committed checkpoint is now ``seq``."""
        self.checkpoint.labels(projector).set(seq)

    def consumer_state(self, projector: str, pending: int, ack_pending: int) -> None:
        """The broker's view of the projector's durable in the latest snapshot."""
        self.pending.labels(projector).set(pending)
        self.ack_pending.labels(projector).set(ack_pending)

    def schedule_decision(self, outcome: str, reason: str) -> None:
        """Count one scheduler decision; ``reason`` is a code, never free text."""
        self.decisions.labels(outcome, reason).inc()

    def housekeeping_rows_touched(self, task: str, table: str, rows: int) -> None:
        """Count rows a housekeeping task changed (also when zero, to show the series)."""
        self.housekeeping_rows.labels(task, table).inc(rows)
