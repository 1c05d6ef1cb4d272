"""Tables of the workflow: the grid workers responsible for cells.

The escalation records (IssueEscalation) live beside Issue in gridmap.storage.models and are
imported here too, where they used to be defined.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridmap.storage.models import Base, IssueEscalation, UTCDateTime  # noqa: F401  (IssueEscalation re-exported)


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
