"""What the household registry and the visits share: row text, the import report and household look-ups."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.errors import NotFound
from gridmap.issues.intake import ImportReport
from gridmap.security.access import UNLIMITED, AccessScope
from gridmap.storage.coverage import Household, HouseholdLocation


def text_value(value: Any) -> str | None:
    """A cell's text stripped, None when it is empty (or NaN, as pandas reads an empty cell)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


@dataclass
class CoverageImportReport(ImportReport):
    """What a household or visit import did: rows, how many were taken, the bad rows, ids written."""

    ids: list[int] = field(default_factory=list)
    moved: int = 0
    issues_created: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {**super().as_dict(), "moved": self.moved, "issues_created": self.issues_created}


class Rollback(Exception):
    """Raised inside a transaction to discard it (dry run, or bad rows without skip_bad_rows)."""


def current_location(session: Session, household_id: int) -> HouseholdLocation | None:
    """The household's current address, None once it left the registry."""
    return session.scalar(select(HouseholdLocation).where(HouseholdLocation.household_id == household_id,
                                                          HouseholdLocation.valid_to.is_(None)))


def find_household(session: Session, reference: Any, access: AccessScope = UNLIMITED) -> Household | None:
    """A household by external_id, else by numeric id; None when there is none in ``access``."""
    text = str(reference).strip()
    household = session.scalar(select(Household).where(Household.external_id == text))
    if household is None and text.isdigit():
        household = session.get(Household, int(text))
    if household is None or not household_in_scope(session, household.id, access):
        return None
    return household


def household_or_404(session: Session, household_id: int, access: AccessScope = UNLIMITED) -> Household:
    """The household with this id in ``access``; NotFound (the same words outside the scope) otherwise."""
    household = session.get(Household, household_id)
    if household is None or not household_in_scope(session, household_id, access):
        raise NotFound(f"no household with id {household_id}")  # the same words outside the scope: nothing revealed
    return household


def latest_cells(session: Session, household_ids: Sequence[int]) -> dict[int, str]:
    """household id → the cell of its current address, or of its last one if it left the registry."""
    cells: dict[int, str] = {}
    ids = sorted(set(household_ids))
    for start in range(0, len(ids), 500):
        statement = (select(HouseholdLocation.household_id, HouseholdLocation.cell_code)
                     .where(HouseholdLocation.household_id.in_(ids[start:start + 500]))
                     .order_by(HouseholdLocation.household_id, HouseholdLocation.valid_from))
        cells.update(session.execute(statement).all())  # the latest address wins
    return cells


def household_in_scope(session: Session, household_id: int, access: AccessScope) -> bool:
    """Whether a household's current address (or its last, if it left) lies in a cell of ``access``."""
    if access.areas is None:
        return True
    return access.covers_cell(latest_cells(session, [household_id]).get(household_id))
