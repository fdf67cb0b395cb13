"""read side: fleet host-perf rollup per minute, broker resource existence

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.TIMESTAMP()
METRICS = (
    "cpu_pct",
    "mem_used_bytes",
    "disk_read_bytes_per_sec",
    "disk_written_bytes_per_sec",
    "net_rx_bytes_per_sec",
    "net_tx_bytes_per_sec",
)


def upgrade() -> None:
    columns = []
    for metric in METRICS:
        columns += [
            sa.Column(f"{metric}_sum", sa.REAL(), nullable=True),
            sa.Column(f"{metric}_count", sa.Integer(), nullable=True),
            sa.Column(f"{metric}_max", sa.REAL(), nullable=True),
        ]
    op.create_table(
        "host_perf_rollup",
        sa.Column("bucket_at", TIMESTAMP, nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        *columns,
        sa.PrimaryKeyConstraint("bucket_at"),
    )
    # Fill the rollup from the samples already stored, so the fleet chart of an
    # upgraded database is not empty until new samples arrive.
    sums = ", ".join(f"SUM({m}), COUNT({m}), MAX({m})" for m in METRICS)
    names = ", ".join(f"{m}_sum, {m}_count, {m}_max" for m in METRICS)
    op.execute(
        f"INSERT INTO host_perf_rollup (bucket_at, samples, {names}) "
        # The minute of "YYYY-MM-DDTHH:MM:SS.ffffff+00:00": seconds and fraction zeroed.
        f"SELECT substr(at, 1, 17) || '00.000000' || substr(at, 27), COUNT(*), {sums} "
        "FROM host_perf_samples GROUP BY substr(at, 1, 16)"
    )
    op.create_table(
        "broker_resources",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("present", sa.Integer(), nullable=False),
        sa.Column("observed_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", name="pk_broker_resources"),
    )


def downgrade() -> None:
    op.drop_table("broker_resources")
    op.drop_table("host_perf_rollup")
