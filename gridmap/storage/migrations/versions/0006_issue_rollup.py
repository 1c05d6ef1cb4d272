"""issue rollup: counts per local day, area, category, source, status and department, kept by triggers

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

from gridmap.storage import rollup

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        rollup.ROLLUP_TABLE,
        sa.Column("day", sa.Date(), nullable=False),
        *(sa.Column(name, sa.String(length=length), nullable=False) for name, length in (
            ("cell_code", 15), ("community_code", 12), ("street_code", 9), ("district_code", 6),
            ("category", 16), ("source", 16), ("status", 16), ("department", 100))),
        sa.Column("issues", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", *rollup.KEY_COLUMNS),
    )
    op.create_table(
        rollup.ZONE_TABLE,
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("utc_offset", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("starts_at"),
    )
    connection = op.get_bind()
    rollup.install_triggers(connection)
    rollup.rebuild(connection, rollup.DEFAULT_TIMEZONE)


def downgrade() -> None:
    connection = op.get_bind()
    rollup.drop_triggers(connection)
    op.drop_table(rollup.ZONE_TABLE)
    op.drop_table(rollup.ROLLUP_TABLE)
