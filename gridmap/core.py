"""The core façade: settings, database, layer set, categories and calendar, built once.

Both the CLI and the Flask app work through a :class:`Gridmap`; it knows no web framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridmap.geo.areas import AreaIndex
from gridmap.issues.categories import CategoryTree, load_categories
from gridmap.issues.intake import Intake
from gridmap.issues.sla import WorkingCalendar
from gridmap.security.audit import install as install_audit_log
from gridmap.settings import database_url, load_settings
from gridmap.storage.db import Database

if TYPE_CHECKING:  # imported lazily at run time
    from gridmap.issues.dispatch import Routing
    from gridmap.issues.workflow import WorkflowRules


class Gridmap:
    """One configured gridmap: what every command and request works with."""

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        self.settings = load_settings(overrides)
        install_audit_log()  # before the first session: every change the service makes is logged
        self.db = Database(database_url(self.settings))

    @property
    def geodata(self) -> Path:
        return Path(self.settings["geodata"])

    @property
    def timezone(self) -> str:
        return self.settings["timezone"]

    @cached_property
    def areas(self) -> AreaIndex:
        """The active layer set, validated and indexed (loaded on first use)."""
        return AreaIndex.from_folder(self.geodata)

    @cached_property
    def categories(self) -> CategoryTree:
        return load_categories(self.settings["categories"])

    @cached_property
    def calendar(self) -> WorkingCalendar:
        return WorkingCalendar.load(self.settings["holidays"], timezone=self.timezone)

    @cached_property
    def intake(self) -> Intake:
        from gridmap.issues.duplicates import DuplicateRule

        return Intake(self.areas, self.categories, self.calendar, self.timezone,
                      routing=self.routing, duplicate_rule=DuplicateRule.from_settings(self.settings))

    @cached_property
    def routing(self) -> Routing:
        """Routing rules: category (and street) → department."""
        from gridmap.issues.dispatch import Routing

        return Routing.load(self.settings["routing"], self.categories)

    @cached_property
    def workflow_rules(self) -> WorkflowRules:
        """Calendar, category tree and warning share for :func:`gridmap.issues.workflow.apply_action`."""
        from gridmap.issues.workflow import WorkflowRules

        return WorkflowRules(self.calendar, self.categories, self.settings["sla_warning_share"])

    def init_database(self) -> int:
        """Create or migrate the schema and (re)load the active layer set; return the area count."""
        self.db.migrate()
        self.db.ensure_rollup_timezone(self.timezone)
        return self.db.load_layer_set(self.areas.layers)

    def secret_key(self) -> str:
        """The key that signs session cookies: the ``secret_key`` setting, else one made once and kept in the
        database."""
        if self.settings.get("secret_key"):
            return self.settings["secret_key"]
        import secrets

        from sqlalchemy.exc import IntegrityError, SQLAlchemyError

        from gridmap.storage.models import Meta

        try:
            stored = self.db.meta("secret_key")
        except SQLAlchemyError:  # not initialised: sessions cannot outlive this process anyway
            return secrets.token_urlsafe(48)
        if stored:
            return stored
        try:
            with self.db.session() as session:
                session.add(Meta(key="secret_key", value=secrets.token_urlsafe(48)))
        except IntegrityError:  # another process made it first
            pass
        return str(self.db.meta("secret_key"))

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()
