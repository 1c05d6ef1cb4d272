"""The filters of a map view, as they live in its URL: period, category, status, source, areas."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gridmap.issues.categories import CategoryTree
from gridmap.issues.counts import IssueFilter
from gridmap.issues.params import parse_choice, parse_choices, parse_statuses, status_names
from gridmap.issues.states import SOURCES
from gridmap.labels import METRICS
from gridmap.maps.scope import AreaScope
from gridmap.security.access import AccessScope

#: Query parameters of a map view, in the order URLs list them.
PARAMS: tuple[str, ...] = ("area", "metric", "category", "status", "source", "from", "to")


@dataclass(frozen=True)
class MapFilter(IssueFilter):
    """An IssueFilter with workflow statuses, sources and the areas the issues must lie in."""

    statuses: tuple[str, ...] = ()  # as the URL names them: statuses, open, closed
    sources: tuple[str, ...] = ()
    scope: AreaScope | None = None

    def conditions(self, on: Any = None) -> list[Any]:
        """SQL conditions on the issues table (``on``: the rollup's columns instead)."""
        from gridmap.storage.models import Issue

        on = Issue if on is None else on
        conditions = super().conditions(on)
        if self.statuses:
            conditions.append(on.status.in_(parse_statuses(",".join(self.statuses))))
        if self.sources:
            conditions.append(on.source.in_(self.sources))
        if self.scope is not None:
            conditions.append(self.scope.condition(on))
        return conditions


def parse_map_filter(args: Mapping[str, str], *, categories: CategoryTree, timezone_name: str,
                     scope: AreaScope | None, access: AccessScope) -> MapFilter:
    """The filter of a map URL's query (``from``, ``to``, ``category``, ``status``, ``source``).

    ``status`` takes statuses and the groups ``open`` / ``closed``, as the issues API, exports and OGC do.
    """
    base = IssueFilter.parse(date_from=args.get("from"), date_to=args.get("to"), category=args.get("category"),
                             categories=categories, timezone_name=timezone_name, access=access)
    return MapFilter(
        date_from=base.date_from,
        date_to=base.date_to,
        category=base.category,
        timezone=base.timezone,
        access=access,
        statuses=status_names(args.get("status")),
        sources=parse_choices(args.get("source"), SOURCES, "source"),
        scope=scope,
    )


def parse_metric(text: str | None, default: str = "total") -> str:
    """The choropleth metric of a map URL; InvalidInput naming the metrics for an unknown one."""
    return parse_choice(text, METRICS, "metric", default)


def filter_params(issue_filter: MapFilter) -> dict[str, str]:
    """The query parameters of a filter that differ from the defaults (for links and the URL)."""
    params: dict[str, str] = {}
    if issue_filter.category:
        params["category"] = issue_filter.category
    if issue_filter.statuses:
        params["status"] = ",".join(issue_filter.statuses)
    if issue_filter.sources:
        params["source"] = ",".join(issue_filter.sources)
    if issue_filter.date_from:
        params["from"] = issue_filter.date_from.isoformat()
    if issue_filter.date_to:
        params["to"] = issue_filter.date_to.isoformat()
    return params
