"""open work: issues.sla_next_at (the next moment the SLA tick has work) and the indexes of the tick and the queue

Existing rows with a clock to watch get the "due now" mark: the first ``gridmap sla tick`` after the
upgrade evaluates them once and stores each one's next moment.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

FINISHED = "('closed', 'revisited', 'rejected')"
RUNNING = "status IN ('reported', 'registered', 'dispatched', 'in_progress', 'handled', 'checked')"


def upgrade() -> None:
    op.add_column("issues", sa.Column("sla_next_at", sa.DateTime(), nullable=True))
    op.execute(
        sa.text(
            "UPDATE issues SET sla_next_at = :due WHERE sla_state IS NOT NULL "
            f"OR (deadline IS NOT NULL AND status NOT IN {FINISHED})"
        ).bindparams(sa.bindparam("due", datetime(2000, 1, 1), type_=sa.DateTime()))
    )
    scheduled = "sla_next_at IS NOT NULL"
    op.create_index("ix_issues_sla_next_at", "issues", ["sla_next_at"],
                    postgresql_where=sa.text(scheduled), sqlite_where=sa.text(scheduled))
    op.create_index("ix_issues_running_deadline", "issues", ["deadline", "id"],
                    postgresql_where=sa.text(RUNNING), sqlite_where=sa.text(RUNNING))


def downgrade() -> None:
    op.drop_index("ix_issues_running_deadline", table_name="issues")
    op.drop_index("ix_issues_sla_next_at", table_name="issues")
    with op.batch_alter_table("issues") as batch:
        batch.drop_column("sla_next_at")
