"""Storage: SQLAlchemy 2 models, engine set-up and Alembic migrations."""

from gridmap.storage.coverage import (  # noqa: F401  (tables)
    Household,
    HouseholdKind,
    HouseholdLocation,
    PatrolSegment,
    PatrolTrack,
    Visit,
    VisitIssue,
)
from gridmap.storage.db import Database, connect
from gridmap.storage.interop import ApiKey, Open311Token  # noqa: F401  (tables)
from gridmap.storage.models import Area, Base, Issue, IssueEscalation, IssueTransition, Meta
from gridmap.storage.security import ApiToken, AuditEntry, IdempotencyKey, User  # noqa: F401  (tables)
from gridmap.storage.workflow import GridWorker, GridWorkerCell  # noqa: F401  (tables)

__all__ = ["Area", "Base", "Database", "Issue", "IssueEscalation", "IssueTransition", "Meta", "connect"]
