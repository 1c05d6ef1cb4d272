"""Tables of the workflow: escalation records and the grid workers responsible for cells."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from gridmap.storage.models import Base, Issue, UTCDateTime


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

    issue: Mapped[Issue] = relationship(
        backref=backref(
            "escalations",
            order_by="IssueEscalation.id",
            cascade="all, delete-orphan",
            passive_deletes=True,
        )
    )

    __table_args__ = (UniqueConstraint("issue_id", "level", "deadline", name="uq_issue_escalations_issue_level_deadline"),)


class GridWorker(Base):
    """A grid worker (网格员): a unique name and a phone number."""

    __tablename__ = "grid_workers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    phone: Mapped[str | None] = mapped_column(String(40))

    cells: Mapped[list[GridWorkerCell]] = relationship(
        back_populates="worker", cascade="all, delete-orphan", passive_deletes=True, order_by="GridWorkerCell.cell_code"
    )


class GridWorkerCell(Base):
    """The one grid worker responsible for a cell."""

    __tablename__ = "grid_worker_cells"
    cell_code: Mapped[str] = mapped_column(String(15), primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("grid_workers.id", ondelete="CASCADE"), index=True)

    worker: Mapped[GridWorker] = relationship(back_populates="cells")
