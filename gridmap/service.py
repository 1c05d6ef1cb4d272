"""The core façade: settings, database, layer set, categories and calendar, built once.

Both the CLI and the Flask app work through a :class:`Gridmap`; it knows no web framework.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

from gridmap.areas import AreaIndex
from gridmap.categories import CategoryTree, load_categories
from gridmap.intake import Intake
from gridmap.settings import database_url, load_settings
from gridmap.sla import WorkingCalendar
from gridmap.storage.db import Database


class Gridmap:
    """One configured gridmap: what every command and request works with."""

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        self.settings = load_settings(overrides)
        self.db = Database(database_url(self.settings))

    @property
    def geodata(self) -> Path:
        return Path(self.settings["geodata"])

    @property
    def timezone(self) -> str:
        return str(self.settings["timezone"])

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
        return Intake(self.areas, self.categories, self.calendar, self.timezone)

    def init_database(self) -> int:
        """Create or migrate the schema and (re)load the active layer set; return the area count."""
        self.db.migrate()
        return self.db.load_layer_set(self.areas.layers)

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()
