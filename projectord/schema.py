"""The one schema: SQLAlchemy Core tables for every table projectord writes.

Queries everywhere import these objects; alembic revisions restate them as DDL so
old revisions never change when this file moves on.

Timestamp columns are declared ``TIMESTAMP`` but hold RFC 3339 text in the fixed
format of :mod:`projectord.timestamps`; the column type does no conversion, so
what the code binds is exactly what is stored.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import REAL as Real
from sqlalchemy.types import UserDefinedType


class Timestamp(UserDefinedType):
    """RFC 3339 UTC text, declared TIMESTAMP; values pass through unchanged."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "TIMESTAMP"


metadata = MetaData()

agents = Table(
    "agents",
    metadata,
    Column("pc_id", Text, primary_key=True),
    Column("hostname", Text),
    Column("last_heartbeat", Timestamp),
    Column("agent_version", Text),
    Column("os_family", Text),
    Column("updated_at", Timestamp, nullable=False),
    Column("agent_cpu_pct", Real),
    Column("agent_rss_bytes", Integer),
    Column("agent_disk_read_bytes", Integer),
    Column("agent_disk_written_bytes", Integer),
    Column("quarantined_versions", Text),
    Column("last_logon_user", Text),
    Column("last_logon_display_name", Text),
    Column("command_keys", Text),
    Column("enforcing", Integer),
    Column("nats_user", Text),
    Column("nats_user_since", Text),
    Column("command_protocols", Text),
    Index("idx_agents_heartbeat", text("last_heartbeat DESC")),
    Index("idx_agents_updated", text("updated_at DESC"), text("pc_id DESC")),
)

execution_results = Table(
    "execution_results",
    metadata,
    Column("result_id", Text, primary_key=True),
    Column("request_id", Text, nullable=False),
    Column("exec_id", Text),
    Column("pc_id", Text, nullable=False),
    Column("exit_code", Integer),
    Column("stdout", Text, nullable=False, server_default=""),
    Column("stderr", Text, nullable=False, server_default=""),
    Column("started_at", Timestamp, nullable=False),
    Column("finished_at", Timestamp),
    Column("recorded_at", Timestamp, nullable=False),
    Column("job_id", Text),
    Column("version", Text),
    Column("reaped", Integer, nullable=False, server_default="0"),
    Column("expires_at", Timestamp),
    Column("parent_result_id", Text),
    Column("skipped", Integer, nullable=False, server_default="0"),
    Index(
        "idx_results_exec_recorded",
        "exec_id",
        text("recorded_at DESC"),
        sqlite_where=text("exec_id IS NOT NULL"),
    ),
    Index(
        "idx_results_inflight_started",
        text("started_at DESC"),
        sqlite_where=text("finished_at IS NULL"),
    ),
    Index(
        "idx_results_job_pc_finished",
        "job_id",
        "pc_id",
        text("finished_at DESC"),
        sqlite_where=text("job_id IS NOT NULL"),
    ),
    Index("idx_results_pc_recorded", "pc_id", text("recorded_at DESC")),
    Index(
        "idx_results_job_recorded",
        "job_id",
        text("recorded_at DESC"),
        sqlite_where=text("job_id IS NOT NULL"),
    ),
    Index("idx_results_request", "request_id"),
    Index("idx_results_started_result", text("started_at DESC"), text("result_id DESC")),
    Index("idx_results_recorded", "recorded_at"),
    Index(
        "idx_results_finished",
        "finished_at",
        sqlite_where=text("finished_at IS NOT NULL"),
    ),
    Index(
        "idx_results_expires_inflight",
        "expires_at",
        sqlite_where=text("finished_at IS NULL"),
    ),
    Index(
        "idx_results_parent",
        "parent_result_id",
        sqlite_where=text("parent_result_id IS NOT NULL"),
    ),
)

executions = Table(
    "executions",
    metadata,
    Column("exec_id", Text, primary_key=True),
    Column("job_id", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("initiated_by", Text, nullable=False),
    Column("initiated_at", Timestamp, nullable=False),
    Column("target_count", Integer, nullable=False),
    Column("success_count", Integer, nullable=False, server_default="0"),
    Column("failure_count", Integer, nullable=False, server_default="0"),
    Column("status", Text, nullable=False, server_default="pending"),
    # Ours: which schedule fired this execution (NULL for operator runs).
    Column("schedule_id", Text),
    Index("idx_executions_job_initiated", "job_id", text("initiated_at DESC")),
    Index("idx_executions_initiated", "initiated_at"),
    Index(
        "idx_executions_active",
        "status",
        "job_id",
        sqlite_where=text("status IN ('running', 'pending')"),
    ),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text),
    Column("payload", Text),
    Column("occurred_at", Timestamp, nullable=False),
    Column("stream_seq", Integer),
    Index("idx_audit_action_occurred", "action", "occurred_at"),
    Index("idx_audit_actor_occurred", "actor", "occurred_at"),
    Index("idx_audit_occurred", "occurred_at"),
    Index(
        "idx_audit_stream_seq",
        "stream_seq",
        unique=True,
        sqlite_where=text("stream_seq IS NOT NULL"),
    ),
    sqlite_autoincrement=True,
)

obs_events = Table(
    "obs_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pc_id", Text, nullable=False),
    Column("at", Timestamp, nullable=False),
    Column("kind", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("event_record_id", Text),
    Column("payload", Text),
    UniqueConstraint("pc_id", "source", "event_record_id", name="uq_obs_events_dedup"),
    Index("idx_obs_events_at", "at"),
    Index("idx_obs_events_kind_at", "kind", text("at DESC")),
    Index("idx_obs_events_pc_at", "pc_id", text("at DESC")),
    Index("idx_obs_events_source", "source"),
    sqlite_autoincrement=True,
)

host_perf_samples = Table(
    "host_perf_samples",
    metadata,
    Column("pc_id", Text, nullable=False),
    Column("at", Timestamp, nullable=False),
    Column("cpu_pct", Real),
    Column("cpu_count", Integer),
    Column("mem_used_bytes", Integer),
    Column("mem_total_bytes", Integer),
    Column("swap_used_bytes", Integer),
    Column("swap_total_bytes", Integer),
    Column("disk_read_bytes_per_sec", Real),
    Column("disk_written_bytes_per_sec", Real),
    Column("net_rx_bytes_per_sec", Real),
    Column("net_tx_bytes_per_sec", Real),
    PrimaryKeyConstraint("pc_id", "at", name="pk_host_perf_samples"),
    Index("idx_host_perf_at", "at"),
)

process_perf_samples = Table(
    "process_perf_samples",
    metadata,
    Column("pc_id", Text, nullable=False),
    Column("at", Timestamp, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("cpu_pct", Real, nullable=False),
    Column("rss_bytes", Integer, nullable=False),
    Column("disk_read_bytes_per_sec", Real),
    Column("disk_written_bytes_per_sec", Real),
    PrimaryKeyConstraint("pc_id", "at", "pid", name="pk_process_perf_samples"),
    Index("idx_process_perf_at", "at"),
)

# --- our own bookkeeping -------------------------------------------------------

projector_checkpoints = Table(
    "projector_checkpoints",
    metadata,
    Column("projector", Text, primary_key=True),
    Column("stream", Text, nullable=False),
    Column("durable", Text, nullable=False),
    # Highest stream sequence applied (or recorded as a reject) and committed.
    Column("last_seq", Integer, nullable=False),
    # JetStream publish time of that message.
    Column("last_message_at", Timestamp),
    # Creation time of the stream the sequence belongs to: a stream deleted and
    # recreated restarts its sequences at 1, and an old checkpoint would then
    # skip every new message as "already applied".
    Column("stream_created", Timestamp),
    Column("updated_at", Timestamp, nullable=False),
)

projector_rejects = Table(
    "projector_rejects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("projector", Text, nullable=False),
    # NULL for core-NATS projectors, which have no stream position.
    Column("stream", Text),
    Column("stream_seq", Integer),
    Column("subject", Text, nullable=False),
    Column("error", Text, nullable=False),
    # The first bytes of the raw body, so an operator can see what was sent.
    Column("payload", LargeBinary, nullable=False),
    Column("payload_size", Integer, nullable=False),
    Column("published_at", Timestamp),
    Column("recorded_at", Timestamp, nullable=False),
    # published_at too: a recreated stream reuses sequence numbers.
    Index(
        "uq_rejects_stream_seq",
        "stream",
        "stream_seq",
        "published_at",
        unique=True,
        sqlite_where=text("stream_seq IS NOT NULL"),
    ),
    Index("idx_rejects_projector_recorded", "projector", "recorded_at"),
    Index("idx_rejects_recorded", "recorded_at"),
    sqlite_autoincrement=True,
)

projector_gaps = Table(
    "projector_gaps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("projector", Text, nullable=False),
    Column("stream", Text, nullable=False),
    # Stream sequences [from_seq, to_seq] that aged out before they were applied.
    Column("from_seq", Integer, nullable=False),
    Column("to_seq", Integer, nullable=False),
    Column("missing", Integer, nullable=False),
    Column("detected_at", Timestamp, nullable=False),
    UniqueConstraint("projector", "stream", "from_seq", name="uq_projector_gaps"),
    sqlite_autoincrement=True,
)

# --- mirrors of broker state for apiserver, which has no broker connection -------

kv_entries = Table(
    "kv_entries",
    metadata,
    Column("bucket", Text, nullable=False),
    Column("key", Text, nullable=False),
    # The value as the bucket holds it (UTF-8 text, usually JSON).
    Column("value", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    # When the value was written to the bucket (the KV message's publish time).
    Column("written_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("bucket", "key", name="pk_kv_entries"),
)

kv_mirror_status = Table(
    "kv_mirror_status",
    metadata,
    Column("bucket", Text, primary_key=True),
    # Last full reconcile with the bucket (initial load or reopened watch).
    Column("synced_at", Timestamp),
    # Last change applied from the live watch.
    Column("changed_at", Timestamp),
    Column("key_count", Integer, nullable=False, server_default="0"),
    # Last failure to read the bucket (NULL once a reconcile succeeds).
    Column("error", Text),
    Column("error_at", Timestamp),
)

broker_streams = Table(
    "broker_streams",
    metadata,
    Column("stream", Text, primary_key=True),
    Column("messages", Integer, nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("first_seq", Integer, nullable=False),
    Column("last_seq", Integer, nullable=False),
    Column("consumers", Integer, nullable=False),
    Column("observed_at", Timestamp, nullable=False),
)

broker_consumers = Table(
    "broker_consumers",
    metadata,
    Column("stream", Text, nullable=False),
    Column("durable", Text, nullable=False),
    # Messages in the stream the consumer has not been handed yet.
    Column("pending", Integer, nullable=False),
    Column("ack_pending", Integer, nullable=False),
    Column("redelivered", Integer, nullable=False),
    Column("ack_floor_seq", Integer, nullable=False),
    Column("delivered_seq", Integer, nullable=False),
    Column("observed_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("stream", "durable", name="pk_broker_consumers"),
)

# --- the scheduler's memory (DESIGN decision 5) ------------------------------------

schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("schedule_id", Text, nullable=False),
    Column("job_id", Text),
    # The instant the decision was for: a calendar fire time or a reconcile tick.
    Column("due_at", Timestamp, nullable=False),
    Column("decided_at", Timestamp, nullable=False),
    # "fired", "skipped" or "failed".
    Column("outcome", Text, nullable=False),
    Column("reason", Text),
    Column("exec_id", Text),
    Column("target_count", Integer),
    # Consecutive identical skips (a reconcile schedule with nothing to do ticks
    # every minute) are one row: the last one's time and how many there were.
    Column("last_due_at", Timestamp, nullable=False),
    Column("repeats", Integer, nullable=False, server_default="1"),
    Index("idx_schedule_fires_schedule", "schedule_id", text("due_at DESC")),
    Index("idx_schedule_fires_decided", "decided_at"),
    sqlite_autoincrement=True,
)

# Schedules and jobs in KV that fail validation: skipped, and shown by the API.
scheduler_rejects = Table(
    "scheduler_rejects",
    metadata,
    Column("kind", Text, nullable=False),  # "schedule" or "job"
    Column("key", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("seen_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("kind", "key", name="pk_scheduler_rejects"),
)

# Per calendar schedule: every fire instant up to here has been decided, so a
# restart catches up a missed fire once and never fires one twice.
schedule_calendar_state = Table(
    "schedule_calendar_state",
    metadata,
    Column("schedule_id", Text, primary_key=True),
    Column("decided_through", Timestamp, nullable=False),
)

# Rollout waves with a delay, persisted so a restart still sends them.
pending_waves = Table(
    "pending_waves",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("exec_id", Text, nullable=False),
    Column("schedule_id", Text),
    Column("subject", Text, nullable=False),
    # The Command body, signed (if a key is configured) when it is sent.
    Column("body", LargeBinary, nullable=False),
    Column("due_at", Timestamp, nullable=False),
    Index("idx_pending_waves_due", "due_at"),
    sqlite_autoincrement=True,
)

# --- read-side helpers for apiserver ---------------------------------------------

# Fleet-wide host perf per minute, kept by the host_perf projector in the same
# transaction as the samples, so /api/perf/fleet over 24 h reads 1,440 rows
# instead of every sample of 30,000 PCs. Per metric: sum and count of the
# non-NULL values (for the average) and the maximum.
ROLLUP_METRICS = (
    "cpu_pct",
    "mem_used_bytes",
    "disk_read_bytes_per_sec",
    "disk_written_bytes_per_sec",
    "net_rx_bytes_per_sec",
    "net_tx_bytes_per_sec",
)
host_perf_rollup = Table(
    "host_perf_rollup",
    metadata,
    Column("bucket_at", Timestamp, primary_key=True),  # start of the UTC minute
    Column("samples", Integer, nullable=False),
    *(
        Column(f"{metric}_{part}", kind)
        for metric in ROLLUP_METRICS
        for part, kind in (("sum", Real), ("count", Integer), ("max", Real))
    ),
)

# Which streams, KV buckets and object stores exist on the broker, for
# /api/jetstream/status and /api/health/fleet (apiserver cannot ask the broker).
broker_resources = Table(
    "broker_resources",
    metadata,
    Column("kind", Text, nullable=False),  # "stream", "kv" or "object_store"
    Column("name", Text, nullable=False),
    Column("present", Integer, nullable=False),
    Column("observed_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("kind", "name", name="pk_broker_resources"),
)
