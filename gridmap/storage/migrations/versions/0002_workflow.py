"""workflow: issue clock and duplicate columns, transition details, escalations, grid workers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = ("workflow",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_limit_kind", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("time_limit_value", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("extension_count", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("suspended_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("suspended_from", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("paused_seconds", sa.Float(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("sla_state", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("possible_duplicate_of", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_issues_possible_duplicate_of", "issues", ["possible_duplicate_of"], ["id"])

    with op.batch_alter_table("issue_transitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("details", sa.JSON(), nullable=True))

    op.create_table(
        "issue_escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("area_level", sa.String(length=16), nullable=False),
        sa.Column("area_code", sa.String(length=15), nullable=False),
        sa.Column("deadline", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["issue_id"], ["issues.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("issue_id", "level", "deadline", name="uq_issue_escalations_issue_level_deadline"),
    )
    with op.batch_alter_table("issue_escalations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issue_escalations_issue_id"), ["issue_id"], unique=False)

    op.create_table(
        "grid_workers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "grid_worker_cells",
        sa.Column("cell_code", sa.String(length=15), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["worker_id"], ["grid_workers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cell_code"),
    )
    with op.batch_alter_table("grid_worker_cells", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grid_worker_cells_worker_id"), ["worker_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("grid_worker_cells", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grid_worker_cells_worker_id"))
    op.drop_table("grid_worker_cells")
    op.drop_table("grid_workers")
    with op.batch_alter_table("issue_escalations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issue_escalations_issue_id"))
    op.drop_table("issue_escalations")

    with op.batch_alter_table("issue_transitions", schema=None) as batch_op:
        batch_op.drop_column("details")

    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.drop_constraint("fk_issues_possible_duplicate_of", type_="foreignkey")
        batch_op.drop_column("possible_duplicate_of")
        batch_op.drop_column("sla_state")
        batch_op.drop_column("paused_seconds")
        batch_op.drop_column("suspended_from")
        batch_op.drop_column("suspended_at")
        batch_op.drop_column("extension_count")
        batch_op.drop_column("time_limit_value")
        batch_op.drop_column("time_limit_kind")
