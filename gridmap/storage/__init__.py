"""Storage: SQLAlchemy 2 models, engine set-up and Alembic migrations."""

from gridmap.storage.db import Database, connect
from gridmap.storage.models import Area, Base, Issue, IssueTransition, Meta

__all__ = ["Area", "Base", "Database", "Issue", "IssueTransition", "Meta", "connect"]
