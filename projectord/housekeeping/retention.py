"""Retention: delete rows older than each table's keep period, in short transactions.

The original deleted the perf tables in one statement and the others in at
most ten 10 000-row statements per tick. One statement over a large backlog
holds SQLite's write lock for seconds, stalling every projector; a cap per
tick lets a fast-growing table (host_perf at 30 000 agents adds 150 000 rows
per 5 minutes) fall behind for ever. Here every table is deleted oldest first
in batches of ``delete_batch_rows``, each its own transaction, until nothing
old is left: projector commits queue on the same writer and run between them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Connection, Table, delete, literal_column, select

from ..schema import (
    audit_log,
    execution_results,
    executions,
    host_perf_rollup,
    host_perf_samples,
    obs_events,
    process_perf_samples,
    schedule_fires,
)
from ..timestamps import format_db


@dataclass(frozen=True)
class Retention:
    """One table's rule: rows whose ``column`` is older than ``days`` (config key) go."""

    table: Table
    column: Column[str]
    days_key: str


RETENTION = (
    Retention(host_perf_samples, host_perf_samples.c.at, "host_perf_days"),
    # The fleet's per-minute rollup of those samples lives as long as they do.
    Retention(host_perf_rollup, host_perf_rollup.c.bucket_at, "host_perf_days"),
    Retention(process_perf_samples, process_perf_samples.c.at, "process_perf_days"),
    Retention(obs_events, obs_events.c.at, "obs_events_days"),
    Retention(execution_results, execution_results.c.recorded_at, "results_days"),
    Retention(executions, executions.c.initiated_at, "executions_days"),
    Retention(audit_log, audit_log.c.occurred_at, "audit_days"),
    Retention(schedule_fires, schedule_fires.c.decided_at, "schedule_fires_days"),
)


def cutoffs(options: Mapping[str, int], now: datetime) -> dict[Retention, str]:
    """Each enabled rule's cutoff in storage format; a keep period of 0 disables it."""
    return {
        rule: format_db(now - timedelta(days=options[rule.days_key]))
        for rule in RETENTION
        if options[rule.days_key] > 0
    }


def delete_oldest(
    conn: Connection, table: Table, column: Column[str], cutoff: str, limit: int
) -> int:
    """Delete up to ``limit`` rows with ``column < cutoff``, oldest first; return how many.

    Rows are chosen through the column's index and deleted by rowid, so one
    batch costs the same however large the table is.
    """
    rowid = literal_column("rowid")
    oldest = select(rowid).select_from(table).where(column < cutoff).order_by(column).limit(limit)
    return conn.execute(delete(table).where(rowid.in_(oldest.scalar_subquery()))).rowcount
