"""Database tables. Times are stored as UTC and come back timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Largest row id and offset a query may use: PostgreSQL's INTEGER (SQLite's limit is larger).
MAX_ROW_ID = 2**31 - 1


#: ``sla_next_at`` of an issue the next ``gridmap sla tick`` must evaluate: written where the rules
#: that place the next SLA change are not at hand (intake, imports, migration 0007).
SLA_DUE_NOW = datetime(2000, 1, 1, tzinfo=UTC)
#: Statuses that end an issue's clock for good (gridmap.issues.states: closed and discarded).
FINISHED_STATUSES = ("closed", "revisited", "rejected")
#: Open statuses whose deadline clock runs (gridmap.issues.states: open minus clock-stopped).
RUNNING_STATUSES = ("reported", "registered", "dispatched", "in_progress", "handled", "checked")
_RUNNING_CONDITION = "status IN (" + ", ".join(f"'{status}'" for status in RUNNING_STATUSES) + ")"


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, stored as naive UTC, aware UTC out (same on SQLite and PostgreSQL)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; attach a time zone first")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _sla_next_default(context: Any) -> datetime | None:
    """Due at the next tick when the row has a clock to watch or a state to clear, else None."""
    row = context.get_current_parameters()
    if row.get("status") in FINISHED_STATUSES:
        return SLA_DUE_NOW if row.get("sla_state") is not None else None
    return SLA_DUE_NOW if row.get("deadline") is not None or row.get("sla_state") is not None else None


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Key/value facts about the database, such as the layer set that was loaded."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Area(Base):
    """A district, street, community or grid cell of the loaded layer set."""

    __tablename__ = "areas"
    code: Mapped[str] = mapped_column(String(15), primary_key=True)
    level: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("areas.code"), index=True)
    area_m2: Mapped[float | None] = mapped_column(Float)
    geometry: Mapped[str] = mapped_column(Text)  # GeoJSON geometry, WGS84


class Issue(Base):
    """A citizen's problem (案件/诉求) with its location codes stamped at intake."""

    __tablename__ = "issues"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(16), index=True)
    description: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    reporter_name: Mapped[str | None] = mapped_column(String(100))
    reporter_phone: Mapped[str | None] = mapped_column(String(40))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(300))
    cell_code: Mapped[str] = mapped_column(String(15), index=True)
    community_code: Mapped[str] = mapped_column(String(12), index=True)
    street_code: Mapped[str] = mapped_column(String(9), index=True)
    district_code: Mapped[str] = mapped_column(String(6), index=True)
    urgency: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    department: Mapped[str | None] = mapped_column(String(100))
    assignee: Mapped[str | None] = mapped_column(String(100))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revisited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    photos: Mapped[list[str]] = mapped_column(JSON, default=list)
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("issues.id"))
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    external_id: Mapped[str | None] = mapped_column(String(100))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Workflow (migration 0002): the time limit fixed at registration, extensions, the
    # suspension clock, the SLA state of the last `gridmap sla tick`, a duplicate flagged at intake.
    time_limit_kind: Mapped[str | None] = mapped_column(String(32))
    time_limit_value: Mapped[float | None] = mapped_column(Float)
    extension_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspended_from: Mapped[str | None] = mapped_column(String(16))
    paused_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    sla_state: Mapped[str | None] = mapped_column(String(16))
    possible_duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("issues.id"))
    # Migration 0007: the next moment the SLA tick has work for the issue (warning starts, deadline
    # passes, next escalation level due); None when nothing can change before the next action.
    sla_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=_sla_next_default)

    transitions: Mapped[list[IssueTransition]] = relationship(
        back_populates="issue", order_by="IssueTransition.id", cascade="all, delete-orphan"
    )
    escalations: Mapped[list[IssueEscalation]] = relationship(
        back_populates="issue", order_by="IssueEscalation.id", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        Index("ix_issues_cell_reported", "cell_code", "reported_at"),
        # The SLA tick reads only the rows due (migration 0007).
        Index("ix_issues_sla_next_at", "sla_next_at", postgresql_where=text("sla_next_at IS NOT NULL"),
              sqlite_where=text("sla_next_at IS NOT NULL")),
        # Open issues with a running clock, by deadline: the dispatcher queue and the overdue count (migration 0007).
        Index("ix_issues_running_deadline", "deadline", "id", postgresql_where=text(_RUNNING_CONDITION),
              sqlite_where=text(_RUNNING_CONDITION)),
    )


class IssueTransition(Base):
    """One step of an issue's workflow: who moved it, when, from which status to which."""

    __tablename__ = "issue_transitions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    comment: Mapped[str | None] = mapped_column(Text)
    # The action's parameters (department, assignee, satisfaction, approver, deadline moved…).
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    issue: Mapped[Issue] = relationship(back_populates="transitions")


class IssueEscalation(Base):
    """An overdue issue escalated one level up the area hierarchy (cell → community → street).

    Written by ``gridmap sla tick`` once per issue, level and deadline: a moved deadline
    (extension, resume, reopen) that is missed again escalates again from level 1.
    """

    __tablename__ = "issue_escalations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    area_level: Mapped[str] = mapped_column(String(16))  # cell, community or street
    area_code: Mapped[str] = mapped_column(String(15))
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)  # the deadline that was missed
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when this level fell due
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the tick that wrote it

    issue: Mapped[Issue] = relationship(back_populates="escalations")

    __table_args__ = (
        UniqueConstraint("issue_id", "level", "deadline", name="uq_issue_escalations_issue_level_deadline"),
    )


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class (its ``__table__``, which SQLAlchemy types only as a FromClause)."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to one table")
    return table
