"""Tables of coverage: households and where they lived, visits, patrol tracks and their cell segments.

Dates (``valid_from``, ``visited_on``, ``day``) are local calendar days of the service's time
zone, stamped when the data comes in, so that periods are counted without time-zone arithmetic.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridmap.storage.models import Base, UTCDateTime


class HouseholdKind(Base):
    """A household kind and how often it must be visited (a copy of the operator's kinds file)."""

    __tablename__ = "household_kinds"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    key: Mapped[bool] = mapped_column(Boolean)  # 重点户
    visit_interval_months: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)


class Household(Base):
    """A household (户) in the registry; where it lives is in :class:`HouseholdLocation`."""

    __tablename__ = "households"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)  # 户编号 of the source registry
    name: Mapped[str | None] = mapped_column(String(100))  # head of household (personal data)
    phone: Mapped[str | None] = mapped_column(String(40))  # personal data
    kind: Mapped[str] = mapped_column(String(32), index=True)
    members: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    locations: Mapped[list[HouseholdLocation]] = relationship(
        back_populates="household",
        order_by="HouseholdLocation.valid_from",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class HouseholdLocation(Base):
    """Where a household lived from ``valid_from`` up to (not including) ``valid_to``; open-ended if None."""

    __tablename__ = "household_locations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    address: Mapped[str] = mapped_column(String(300))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    located_by: Mapped[str] = mapped_column(String(8))  # "point" (lon/lat given) or "cell" (cell code given)
    cell_code: Mapped[str] = mapped_column(String(15), index=True)
    community_code: Mapped[str] = mapped_column(String(12))
    street_code: Mapped[str] = mapped_column(String(9))
    district_code: Mapped[str] = mapped_column(String(6))

    household: Mapped[Household] = relationship(back_populates="locations")

    __table_args__ = (UniqueConstraint("household_id", "valid_from", name="uq_household_locations_household_from"),)


class Visit(Base):
    """A home visit (入户走访): who visited which household when, stamped with the household's cell then."""

    __tablename__ = "visits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"), index=True)
    visitor: Mapped[str] = mapped_column(String(100), index=True)
    visited_at: Mapped[datetime] = mapped_column(UTCDateTime)
    visited_on: Mapped[date] = mapped_column(Date, index=True)  # local day of visited_at
    cell_code: Mapped[str] = mapped_column(String(15))
    notes: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # api, form, import, demo
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    issue_links: Mapped[list[VisitIssue]] = relationship(cascade="all, delete-orphan", passive_deletes=True)

    __table_args__ = (UniqueConstraint("household_id", "visited_at", name="uq_visits_household_at"),)


class VisitIssue(Base):
    """An issue raised at a visit."""

    __tablename__ = "visit_issues"
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"), primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True, index=True)


class PatrolTrack(Base):
    """A worker's GPS track of one patrol, with its points as ``[[lon, lat, unix seconds], …]`` (WGS84)."""

    __tablename__ = "patrol_tracks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker: Mapped[str] = mapped_column(String(100), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)  # local day of started_at
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    points: Mapped[list[Any]] = mapped_column(JSON)
    point_count: Mapped[int] = mapped_column(Integer)
    outside_points: Mapped[int] = mapped_column(Integer)  # points outside every cell
    length_m: Mapped[float] = mapped_column(Float)
    outside_length_m: Mapped[float] = mapped_column(Float)
    outside_seconds: Mapped[float] = mapped_column(Float)
    source: Mapped[str | None] = mapped_column(String(200))  # file name, or api
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    segments: Mapped[list[PatrolSegment]] = relationship(
        order_by="PatrolSegment.entered_at", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (UniqueConstraint("worker", "started_at", name="uq_patrol_tracks_worker_started"),)


class PatrolSegment(Base):
    """A stretch of a track inside one cell: when it entered and left, how long and how far."""

    __tablename__ = "patrol_segments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("patrol_tracks.id", ondelete="CASCADE"), index=True)
    cell_code: Mapped[str] = mapped_column(String(15))
    day: Mapped[date] = mapped_column(Date)  # local day of entered_at
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seconds: Mapped[float] = mapped_column(Float)
    length_m: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_patrol_segments_cell_day", "cell_code", "day"),)
