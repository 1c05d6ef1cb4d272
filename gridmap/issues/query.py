"""Finding issues (filters, paging) and describing them as JSON-ready dicts, for the API and pages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, not_, select
from sqlalchemy.orm import Session, selectinload

from gridmap.errors import InvalidInput
from gridmap.issues import keyset
from gridmap.issues.categories import CategoryTree
from gridmap.issues.counts import IssueFilter, metric_condition
from gridmap.issues.keyset import SORT_KEYS
from gridmap.issues.params import (
    AREA_COLUMNS,
    bbox_conditions,
    parse_bbox,
    parse_boolean,
    parse_choice,
    parse_choices,
    parse_paging,
    parse_statuses,
)
from gridmap.issues.states import ACTION_LABELS, OPEN_STATUSES, SOURCES, STATUS_LABELS
from gridmap.issues.workflow import WorkflowRules, allowed_actions, sla_state_of
from gridmap.security.access import AccessScope, mask_name, mask_phone
from gridmap.storage.models import Issue, IssueEscalation, IssueTransition

SORTS = SORT_KEYS
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


@dataclass(frozen=True)
class IssueQuery:
    """Which issues to list and which page of them."""

    period: IssueFilter = field(default_factory=IssueFilter)
    area: str | None = None
    statuses: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    overdue: bool | None = None
    department: str | None = None
    assignee: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    sort: str = "-reported_at"
    #: The sort key of the last row of the previous page (from a ``cursor``): the page starts after it.
    after: tuple[Any, ...] | None = None

    @classmethod
    def parse(cls, args: Mapping[str, str], *, categories: CategoryTree, timezone_name: str,
              access: AccessScope) -> IssueQuery:
        """A query from query-string values (``area``, ``status``, ``category``, ``source``, ``bbox``,
        ``from``, ``to``, ``overdue``, ``department``, ``assignee``, ``limit``, ``offset`` or ``cursor``, ``sort``)."""
        period = IssueFilter.parse(date_from=args.get("from"), date_to=args.get("to"), category=args.get("category"),
                                   categories=categories, timezone_name=timezone_name, access=access)
        area = (args.get("area") or "").strip() or None
        if area is not None and not (area.isdigit() and len(area) in AREA_COLUMNS):
            raise InvalidInput(
                f"area {area!r} is not an area code: "
                "give 6 (district), 9 (street), 12 (community) or 15 (cell) digits"
            )
        sources = parse_choices(args.get("source"), SOURCES, "source")
        sort = parse_choice(args.get("sort"), SORTS, "sort", "-reported_at")
        limit, offset = parse_paging(args.get("limit"), args.get("offset"), default_limit=DEFAULT_LIMIT,
                                     max_limit=MAX_LIMIT)
        cursor = (args.get("cursor") or "").strip()
        if cursor and offset:
            raise InvalidInput("give cursor or offset, not both: the cursor already says where the page starts")
        after = tuple(keyset.decode(cursor, sort)) if cursor else None
        return cls(
            period=period,
            area=area,
            statuses=parse_statuses(args.get("status")),
            sources=sources,
            bbox=parse_bbox(args.get("bbox")),
            overdue=parse_boolean(args.get("overdue"), "overdue"),
            department=(args.get("department") or "").strip() or None,
            assignee=(args.get("assignee") or "").strip() or None,
            limit=limit,
            offset=offset,
            sort=sort,
            after=after,
        )

    def conditions(self, as_of: datetime | None = None) -> list[Any]:
        """SQL conditions on the issues table."""
        conditions = self.period.conditions()
        if self.area:
            conditions.append(AREA_COLUMNS[len(self.area)] == self.area)
        if self.statuses:
            conditions.append(Issue.status.in_(self.statuses))
        if self.sources:
            conditions.append(Issue.source.in_(self.sources))
        conditions += bbox_conditions(self.bbox)
        if self.overdue is not None:
            overdue = metric_condition("overdue", as_of)
            conditions.append(overdue if self.overdue else not_(and_(Issue.deadline.is_not(None), overdue)))
        if self.department:
            conditions.append(Issue.department == self.department)
        if self.assignee:
            conditions.append(Issue.assignee == self.assignee)
        return conditions

    def run(self, session: Session, as_of: datetime | None = None) -> tuple[int, list[Issue]]:
        """(total matching, the issues of the requested page)."""
        total, issues, _ = self.page(session, as_of)
        return total, issues

    def page(self, session: Session, as_of: datetime | None = None) -> tuple[int, list[Issue], str | None]:
        """(total matching, the issues of the requested page, the cursor of the next page or None on the last)."""
        conditions = self.conditions(as_of)
        total = session.scalar(select(func.count()).select_from(Issue).where(*conditions))
        rows = self.rows(session, as_of, self.limit + 1)
        issues, more = rows[:self.limit], len(rows) > self.limit
        return int(total or 0), issues, keyset.encode(self.sort, issues[-1]) if more else None

    def rows(self, session: Session, as_of: datetime | None = None, limit: int | None = None) -> list[Issue]:
        """Up to ``limit`` (default the page size) matching issues from the page's start, in the sort order."""
        conditions = self.conditions(as_of)
        if self.after is not None:
            conditions.append(keyset.after(self.sort, self.after))
        return list(session.scalars(
            select(Issue).where(*conditions).order_by(*keyset.order_by(self.sort))
            .limit(self.limit if limit is None else limit).offset(self.offset)
            .options(selectinload(Issue.escalations))
        ).all())


# --------------------------------------------------------------------------------------------
# Issues as JSON


def _time(moment: datetime | None, tz: tzinfo) -> str | None:
    return None if moment is None else moment.astimezone(tz).isoformat()


def issue_as_dict(
    issue: Issue,
    *,
    rules: WorkflowRules,
    timezone_name: str = "Asia/Shanghai",
    now: datetime | None = None,
    detail: bool = False,
    personal: bool = True,
) -> dict[str, Any]:
    """The issue as the API shows it; ``detail`` adds the reporter (masked unless ``personal``),
    history, escalations."""
    tz = ZoneInfo(timezone_name)
    now = now or datetime.now(UTC)
    try:
        sla_state = sla_state_of(issue, now, rules)
    except InvalidInput:  # a deadline the calendar cannot count yet: the last tick's answer
        sla_state = issue.sla_state
    category = rules.categories.get(issue.category) if issue.category in rules.categories else None
    body: dict[str, Any] = {
        "id": issue.id,
        "category": issue.category,
        "category_name": category.name_zh if category else None,
        "description": issue.description,
        "source": issue.source,
        "status": issue.status,
        "status_label": STATUS_LABELS.get(issue.status, issue.status),
        "urgency": issue.urgency,
        "lon": issue.lon,
        "lat": issue.lat,
        "address": issue.address,
        "cell": issue.cell_code,
        "community": issue.community_code,
        "street": issue.street_code,
        "district": issue.district_code,
        "department": issue.department,
        "assignee": issue.assignee,
        "deadline": _time(issue.deadline, tz),
        "sla_state": sla_state,
        "reported_at": _time(issue.reported_at, tz),
        "registered_at": _time(issue.registered_at, tz),
        "dispatched_at": _time(issue.dispatched_at, tz),
        "handled_at": _time(issue.handled_at, tz),
        "checked_at": _time(issue.checked_at, tz),
        "closed_at": _time(issue.closed_at, tz),
        "revisited_at": _time(issue.revisited_at, tz),
        "rework_count": issue.rework_count or 0,
        "extension_count": issue.extension_count or 0,
        "satisfaction": issue.satisfaction,
        "photos": list(issue.photos or []),
        "duplicate_of": issue.duplicate_of,
        "possible_duplicate_of": issue.possible_duplicate_of,
        "external_id": issue.external_id,
        "escalation_level": escalation_level(issue),
        "allowed_actions": allowed_actions(issue),
    }
    if detail:
        body.update(
            reporter=({"name": issue.reporter_name, "phone": issue.reporter_phone} if personal else
                      {"name": mask_name(issue.reporter_name), "phone": mask_phone(issue.reporter_phone)}),
            suspended_at=_time(issue.suspended_at, tz),
            paused_seconds=issue.paused_seconds or 0.0,
            transitions=transitions_as_dicts(issue.transitions, timezone_name),
            escalations=escalations_as_dicts(issue.escalations, timezone_name),
        )
    return body


def escalation_level(issue: Issue) -> int:
    """The highest escalation level reached against the issue's current deadline (0: none)."""
    if issue.deadline is None or issue.status not in OPEN_STATUSES:
        return 0
    return max((e.level for e in issue.escalations if e.deadline == issue.deadline), default=0)


def transitions_as_dicts(
    transitions: list[IssueTransition], timezone_name: str = "Asia/Shanghai"
) -> list[dict[str, Any]]:
    """Transition records as JSON-ready dicts, in the order given (oldest first)."""
    tz = ZoneInfo(timezone_name)
    return [
        {
            "id": t.id,
            "action": t.action,
            "action_label": ACTION_LABELS.get(t.action, t.action),
            "from": t.from_status,
            "to": t.to_status,
            "actor": t.actor,
            "at": _time(t.at, tz),
            "comment": t.comment,
            "details": t.details or {},
        }
        for t in transitions
    ]


def escalations_as_dicts(
    escalations: list[IssueEscalation], timezone_name: str = "Asia/Shanghai"
) -> list[dict[str, Any]]:
    """Escalation records as JSON-ready dicts, oldest first."""
    tz = ZoneInfo(timezone_name)
    return [
        {
            "level": e.level,
            "area_level": e.area_level,
            "area_code": e.area_code,
            "deadline": _time(e.deadline, tz),
            "due_at": _time(e.due_at, tz),
            "created_at": _time(e.created_at, tz),
        }
        for e in escalations
    ]
