"""baseline: projection tables and projector bookkeeping

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Every table of the projection in scope (projection-semantics.md section 12) plus
projectord's own checkpoints, rejects and gaps. Types are spelled out here rather
than imported from projectord.schema so this revision never changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

# RFC 3339 UTC text; the declared type only names the column's meaning.
TIMESTAMP = sa.TIMESTAMP()

# Indexes with a DESC key part, which autogenerate cannot reflect on SQLite.
DESC_INDEXES = [
    ("idx_agents_heartbeat", "agents", ["last_heartbeat DESC"], None),
    (
        "idx_results_exec_recorded",
        "execution_results",
        ["exec_id", "recorded_at DESC"],
        "exec_id IS NOT NULL",
    ),
    (
        "idx_results_inflight_started",
        "execution_results",
        ["started_at DESC"],
        "finished_at IS NULL",
    ),
    (
        "idx_results_job_pc_finished",
        "execution_results",
        ["job_id", "pc_id", "finished_at DESC"],
        "job_id IS NOT NULL",
    ),
    ("idx_results_pc_recorded", "execution_results", ["pc_id", "recorded_at DESC"], None),
    (
        "idx_results_started_result",
        "execution_results",
        ["started_at DESC", "result_id DESC"],
        None,
    ),
    ("idx_executions_job_initiated", "executions", ["job_id", "initiated_at DESC"], None),
    ("idx_obs_events_kind_at", "obs_events", ["kind", "at DESC"], None),
    ("idx_obs_events_pc_at", "obs_events", ["pc_id", "at DESC"], None),
]


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("pc_id", sa.Text(), nullable=False),
        sa.Column("hostname", sa.Text(), nullable=True),
        sa.Column("last_heartbeat", TIMESTAMP, nullable=True),
        sa.Column("agent_version", sa.Text(), nullable=True),
        sa.Column("os_family", sa.Text(), nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("agent_cpu_pct", sa.REAL(), nullable=True),
        sa.Column("agent_rss_bytes", sa.Integer(), nullable=True),
        sa.Column("agent_disk_read_bytes", sa.Integer(), nullable=True),
        sa.Column("agent_disk_written_bytes", sa.Integer(), nullable=True),
        sa.Column("quarantined_versions", sa.Text(), nullable=True),
        sa.Column("last_logon_user", sa.Text(), nullable=True),
        sa.Column("last_logon_display_name", sa.Text(), nullable=True),
        sa.Column("command_keys", sa.Text(), nullable=True),
        sa.Column("enforcing", sa.Integer(), nullable=True),
        sa.Column("nats_user", sa.Text(), nullable=True),
        sa.Column("nats_user_since", sa.Text(), nullable=True),
        sa.Column("command_protocols", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pc_id"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("stream_seq", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("idx_audit_action_occurred", ["action", "occurred_at"], unique=False)
        batch_op.create_index("idx_audit_actor_occurred", ["actor", "occurred_at"], unique=False)
        batch_op.create_index("idx_audit_occurred", ["occurred_at"], unique=False)
        batch_op.create_index(
            "idx_audit_stream_seq",
            ["stream_seq"],
            unique=True,
            sqlite_where=sa.text("stream_seq IS NOT NULL"),
        )

    op.create_table(
        "execution_results",
        sa.Column("result_id", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("exec_id", sa.Text(), nullable=True),
        sa.Column("pc_id", sa.Text(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("stdout", sa.Text(), server_default="", nullable=False),
        sa.Column("stderr", sa.Text(), server_default="", nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.Column("job_id", sa.Text(), nullable=True),
        sa.Column("version", sa.Text(), nullable=True),
        sa.Column("reaped", sa.Integer(), server_default="0", nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("parent_result_id", sa.Text(), nullable=True),
        sa.Column("skipped", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("result_id"),
    )
    with op.batch_alter_table("execution_results", schema=None) as batch_op:
        batch_op.create_index(
            "idx_results_expires_inflight",
            ["expires_at"],
            unique=False,
            sqlite_where=sa.text("finished_at IS NULL"),
        )
        batch_op.create_index(
            "idx_results_finished",
            ["finished_at"],
            unique=False,
            sqlite_where=sa.text("finished_at IS NOT NULL"),
        )
        batch_op.create_index(
            "idx_results_parent",
            ["parent_result_id"],
            unique=False,
            sqlite_where=sa.text("parent_result_id IS NOT NULL"),
        )
        batch_op.create_index("idx_results_recorded", ["recorded_at"], unique=False)
        batch_op.create_index("idx_results_request", ["request_id"], unique=False)

    op.create_table(
        "executions",
        sa.Column("exec_id", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("initiated_by", sa.Text(), nullable=False),
        sa.Column("initiated_at", TIMESTAMP, nullable=False),
        sa.Column("target_count", sa.Integer(), nullable=False),
        sa.Column("success_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failure_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("schedule_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("exec_id"),
    )
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.create_index(
            "idx_executions_active",
            ["status", "job_id"],
            unique=False,
            sqlite_where=sa.text("status IN ('running', 'pending')"),
        )
        batch_op.create_index("idx_executions_initiated", ["initiated_at"], unique=False)

    op.create_table(
        "host_perf_samples",
        sa.Column("pc_id", sa.Text(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("cpu_pct", sa.REAL(), nullable=True),
        sa.Column("cpu_count", sa.Integer(), nullable=True),
        sa.Column("mem_used_bytes", sa.Integer(), nullable=True),
        sa.Column("mem_total_bytes", sa.Integer(), nullable=True),
        sa.Column("swap_used_bytes", sa.Integer(), nullable=True),
        sa.Column("swap_total_bytes", sa.Integer(), nullable=True),
        sa.Column("disk_read_bytes_per_sec", sa.REAL(), nullable=True),
        sa.Column("disk_written_bytes_per_sec", sa.REAL(), nullable=True),
        sa.Column("net_rx_bytes_per_sec", sa.REAL(), nullable=True),
        sa.Column("net_tx_bytes_per_sec", sa.REAL(), nullable=True),
        sa.PrimaryKeyConstraint("pc_id", "at", name="pk_host_perf_samples"),
    )
    with op.batch_alter_table("host_perf_samples", schema=None) as batch_op:
        batch_op.create_index("idx_host_perf_at", ["at"], unique=False)

    op.create_table(
        "obs_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pc_id", sa.Text(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("event_record_id", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pc_id", "source", "event_record_id", name="uq_obs_events_dedup"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("obs_events", schema=None) as batch_op:
        batch_op.create_index("idx_obs_events_at", ["at"], unique=False)
        batch_op.create_index("idx_obs_events_source", ["source"], unique=False)

    op.create_table(
        "process_perf_samples",
        sa.Column("pc_id", sa.Text(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("cpu_pct", sa.REAL(), nullable=False),
        sa.Column("rss_bytes", sa.Integer(), nullable=False),
        sa.Column("disk_read_bytes_per_sec", sa.REAL(), nullable=True),
        sa.Column("disk_written_bytes_per_sec", sa.REAL(), nullable=True),
        sa.PrimaryKeyConstraint("pc_id", "at", "pid", name="pk_process_perf_samples"),
    )
    with op.batch_alter_table("process_perf_samples", schema=None) as batch_op:
        batch_op.create_index("idx_process_perf_at", ["at"], unique=False)

    op.create_table(
        "projector_checkpoints",
        sa.Column("projector", sa.Text(), nullable=False),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("durable", sa.Text(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_message_at", TIMESTAMP, nullable=True),
        sa.Column("stream_created", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("projector"),
    )
    op.create_table(
        "projector_gaps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("projector", sa.Text(), nullable=False),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("from_seq", sa.Integer(), nullable=False),
        sa.Column("to_seq", sa.Integer(), nullable=False),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.Column("detected_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("projector", "stream", "from_seq", name="uq_projector_gaps"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "projector_rejects",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("projector", sa.Text(), nullable=False),
        sa.Column("stream", sa.Text(), nullable=True),
        sa.Column("stream_seq", sa.Integer(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("payload_size", sa.Integer(), nullable=False),
        sa.Column("published_at", TIMESTAMP, nullable=True),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("projector_rejects", schema=None) as batch_op:
        batch_op.create_index(
            "idx_rejects_projector_recorded", ["projector", "recorded_at"], unique=False
        )
        batch_op.create_index("idx_rejects_recorded", ["recorded_at"], unique=False)
        batch_op.create_index(
            "uq_rejects_stream_seq",
            ["stream", "stream_seq", "published_at"],
            unique=True,
            sqlite_where=sa.text("stream_seq IS NOT NULL"),
        )

    for name, table, parts, where in DESC_INDEXES:
        op.create_index(
            name,
            table,
            [sa.text(p) for p in parts],
            sqlite_where=sa.text(where) if where else None,
        )


def downgrade() -> None:
    for name, table, _parts, _where in DESC_INDEXES:
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("projector_rejects", schema=None) as batch_op:
        batch_op.drop_index("uq_rejects_stream_seq", sqlite_where=sa.text("stream_seq IS NOT NULL"))
        batch_op.drop_index("idx_rejects_recorded")
        batch_op.drop_index("idx_rejects_projector_recorded")

    op.drop_table("projector_rejects")
    op.drop_table("projector_gaps")
    op.drop_table("projector_checkpoints")
    with op.batch_alter_table("process_perf_samples", schema=None) as batch_op:
        batch_op.drop_index("idx_process_perf_at")

    op.drop_table("process_perf_samples")
    with op.batch_alter_table("obs_events", schema=None) as batch_op:
        batch_op.drop_index("idx_obs_events_source")
        batch_op.drop_index("idx_obs_events_at")

    op.drop_table("obs_events")
    with op.batch_alter_table("host_perf_samples", schema=None) as batch_op:
        batch_op.drop_index("idx_host_perf_at")

    op.drop_table("host_perf_samples")
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index("idx_executions_initiated")
        batch_op.drop_index(
            "idx_executions_active", sqlite_where=sa.text("status IN ('running', 'pending')")
        )

    op.drop_table("executions")
    with op.batch_alter_table("execution_results", schema=None) as batch_op:
        batch_op.drop_index("idx_results_request")
        batch_op.drop_index("idx_results_recorded")
        batch_op.drop_index(
            "idx_results_parent", sqlite_where=sa.text("parent_result_id IS NOT NULL")
        )
        batch_op.drop_index("idx_results_finished", sqlite_where=sa.text("finished_at IS NOT NULL"))
        batch_op.drop_index(
            "idx_results_expires_inflight", sqlite_where=sa.text("finished_at IS NULL")
        )

    op.drop_table("execution_results")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("idx_audit_stream_seq", sqlite_where=sa.text("stream_seq IS NOT NULL"))
        batch_op.drop_index("idx_audit_occurred")
        batch_op.drop_index("idx_audit_actor_occurred")
        batch_op.drop_index("idx_audit_action_occurred")

    op.drop_table("audit_log")
    op.drop_table("agents")
