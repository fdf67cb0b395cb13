"""broker mirrors: KV entries and stream/consumer snapshots for apiserver

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

apiserver has no broker connection, so projectord copies what the dashboard
needs from the broker into the database: the schedules, jobs, fleet_config and
agent_groups KV buckets, and a snapshot of each stream and consumer.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.TIMESTAMP()


def upgrade() -> None:
    op.create_table(
        "kv_entries",
        sa.Column("bucket", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("written_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("bucket", "key", name="pk_kv_entries"),
    )
    op.create_table(
        "kv_mirror_status",
        sa.Column("bucket", sa.Text(), nullable=False),
        sa.Column("synced_at", TIMESTAMP, nullable=True),
        sa.Column("changed_at", TIMESTAMP, nullable=True),
        sa.Column("key_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("bucket"),
    )
    op.create_table(
        "broker_streams",
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("consumers", sa.Integer(), nullable=False),
        sa.Column("observed_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("stream"),
    )
    op.create_table(
        "broker_consumers",
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("durable", sa.Text(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("ack_pending", sa.Integer(), nullable=False),
        sa.Column("redelivered", sa.Integer(), nullable=False),
        sa.Column("ack_floor_seq", sa.Integer(), nullable=False),
        sa.Column("delivered_seq", sa.Integer(), nullable=False),
        sa.Column("observed_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("stream", "durable", name="pk_broker_consumers"),
    )


def downgrade() -> None:
    op.drop_table("broker_consumers")
    op.drop_table("broker_streams")
    op.drop_table("kv_mirror_status")
    op.drop_table("kv_entries")
