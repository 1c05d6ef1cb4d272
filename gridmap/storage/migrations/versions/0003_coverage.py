"""coverage: household kinds, households and their locations, visits, patrol tracks and segments

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = ("coverage",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "household_kinds",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.Column("key", sa.Boolean(), nullable=False),
        sa.Column("visit_interval_months", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "households",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_id"),
    )
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_households_kind"), ["kind"], unique=False)

    op.create_table(
        "household_locations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("located_by", sa.String(length=8), nullable=False),
        sa.Column("cell_code", sa.String(length=15), nullable=False),
        sa.Column("community_code", sa.String(length=12), nullable=False),
        sa.Column("street_code", sa.String(length=9), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("household_id", "valid_from", name="uq_household_locations_household_from"),
    )
    with op.batch_alter_table("household_locations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_household_locations_cell_code"), ["cell_code"], unique=False)

    op.create_table(
        "visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("visitor", sa.String(length=100), nullable=False),
        sa.Column("visited_at", sa.DateTime(), nullable=False),
        sa.Column("visited_on", sa.Date(), nullable=False),
        sa.Column("cell_code", sa.String(length=15), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("household_id", "visited_at", name="uq_visits_household_at"),
    )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visits_household_id"), ["household_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_visits_visited_on"), ["visited_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_visits_visitor"), ["visitor"], unique=False)

    op.create_table(
        "visit_issues",
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["issue_id"], ["issues.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("visit_id", "issue_id"),
    )
    with op.batch_alter_table("visit_issues", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visit_issues_issue_id"), ["issue_id"], unique=False)

    op.create_table(
        "patrol_tracks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=False),
        sa.Column("points", sa.JSON(), nullable=False),
        sa.Column("point_count", sa.Integer(), nullable=False),
        sa.Column("outside_points", sa.Integer(), nullable=False),
        sa.Column("length_m", sa.Float(), nullable=False),
        sa.Column("outside_length_m", sa.Float(), nullable=False),
        sa.Column("outside_seconds", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("worker", "started_at", name="uq_patrol_tracks_worker_started"),
    )
    with op.batch_alter_table("patrol_tracks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patrol_tracks_day"), ["day"], unique=False)
        batch_op.create_index(batch_op.f("ix_patrol_tracks_worker"), ["worker"], unique=False)

    op.create_table(
        "patrol_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("cell_code", sa.String(length=15), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("entered_at", sa.DateTime(), nullable=False),
        sa.Column("left_at", sa.DateTime(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("length_m", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["track_id"], ["patrol_tracks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("patrol_segments", schema=None) as batch_op:
        batch_op.create_index("ix_patrol_segments_cell_day", ["cell_code", "day"], unique=False)
        batch_op.create_index(batch_op.f("ix_patrol_segments_track_id"), ["track_id"], unique=False)


def downgrade() -> None:
    op.drop_table("patrol_segments")
    op.drop_table("patrol_tracks")
    op.drop_table("visit_issues")
    op.drop_table("visits")
    op.drop_table("household_locations")
    op.drop_table("households")
    op.drop_table("household_kinds")
