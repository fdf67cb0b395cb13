"""indexes for the API's hot reads: the agents page, a schedule's last run

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # /api/agents default order (updated_at desc, pc_id as tiebreak) without a sort.
    op.create_index(
        "idx_agents_updated", "agents", [sa.text("updated_at DESC"), sa.text("pc_id DESC")]
    )
    # /api/schedules/{id}/status: the job's newest result and its last 24 h.
    op.create_index(
        "idx_results_job_recorded",
        "execution_results",
        ["job_id", sa.text("recorded_at DESC")],
        sqlite_where=sa.text("job_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("idx_results_job_recorded", "execution_results")
    op.drop_index("idx_agents_updated", "agents")
