"""scheduler: fire decisions, rejected schedules and jobs, calendar state, pending waves

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.TIMESTAMP()


def upgrade() -> None:
    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("schedule_id", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Text(), nullable=True),
        sa.Column("due_at", TIMESTAMP, nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("exec_id", sa.Text(), nullable=True),
        sa.Column("target_count", sa.Integer(), nullable=True),
        sa.Column("last_due_at", TIMESTAMP, nullable=False),
        sa.Column("repeats", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "idx_schedule_fires_schedule", "schedule_fires", ["schedule_id", sa.text("due_at DESC")]
    )
    op.create_index("idx_schedule_fires_decided", "schedule_fires", ["decided_at"])
    op.create_table(
        "scheduler_rejects",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("seen_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", name="pk_scheduler_rejects"),
    )
    op.create_table(
        "schedule_calendar_state",
        sa.Column("schedule_id", sa.Text(), nullable=False),
        sa.Column("decided_through", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("schedule_id"),
    )
    op.create_table(
        "pending_waves",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("exec_id", sa.Text(), nullable=False),
        sa.Column("schedule_id", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("due_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("idx_pending_waves_due", "pending_waves", ["due_at"])


def downgrade() -> None:
    op.drop_index("idx_pending_waves_due", table_name="pending_waves")
    op.drop_table("pending_waves")
    op.drop_table("schedule_calendar_state")
    op.drop_table("scheduler_rejects")
    op.drop_index("idx_schedule_fires_decided", table_name="schedule_fires")
    op.drop_index("idx_schedule_fires_schedule", table_name="schedule_fires")
    op.drop_table("schedule_fires")
