"""The workflow's vocabulary: statuses, sources, actions and the transitions between statuses.

Data only; :mod:`gridmap.issues.workflow` applies it (the README has the table of actions).
"""

from __future__ import annotations

from gridmap.labels import STATUS_LABELS as LABELLED_STATUSES

STATUSES: tuple[str, ...] = (
    "reported",
    "registered",
    "rejected",
    "dispatched",
    "in_progress",
    "handled",
    "checked",
    "closed",
    "revisited",
    "suspended",
)
#: Finished: the case is closed (and possibly revisited).
CLOSED_STATUSES: frozenset[str] = frozenset({"closed", "revisited"})
#: Not counted as open or closed: the report was not registered as a case.
DISCARDED_STATUSES: frozenset[str] = frozenset({"rejected"})
#: Still to be worked on.
OPEN_STATUSES: frozenset[str] = frozenset(STATUSES) - CLOSED_STATUSES - DISCARDED_STATUSES
#: Open but with the deadline clock stopped, so never overdue.
CLOCK_STOPPED_STATUSES: frozenset[str] = frozenset({"suspended"})

SOURCES: tuple[str, ...] = ("patrol", "hotline", "web", "visit", "open311", "import")

#: Chinese names of the statuses, for pages and exports: the one table, marked for translation in gridmap.labels.
STATUS_LABELS: dict[str, str] = LABELLED_STATUSES

#: The action vocabulary, in the order allowed actions are listed.
ACTIONS: tuple[str, ...] = (
    "register",
    "reject",
    "dispatch",
    "start",
    "feedback",
    "check",
    "rework",
    "close",
    "revisit",
    "return",
    "extend",
    "suspend",
    "resume",
    "reopen",
    "merge",
)
#: Chinese names of the actions, for pages and exports.
ACTION_LABELS: dict[str, str] = {
    "register": "立案",
    "reject": "不予立案",
    "dispatch": "派遣",
    "start": "签收处置",
    "feedback": "处置反馈",
    "check": "核查通过",
    "rework": "返工",
    "close": "结案",
    "revisit": "回访",
    "return": "退回",
    "extend": "延期",
    "suspend": "挂账",
    "resume": "恢复",
    "reopen": "重启",
    "merge": "合并",
}

#: The most extensions a case may be granted.
MAX_EXTENSIONS = 2
#: Statuses a duplicate may be merged from: before the department reports it handled.
MERGEABLE_STATUSES: frozenset[str] = frozenset({"reported", "registered", "dispatched", "in_progress"})
#: Actions that need a reason (the transition's comment).
REASON_REQUIRED: frozenset[str] = frozenset({"reject", "rework", "return", "extend", "suspend", "reopen"})
#: The keyword parameters each action accepts (all others are refused).
ACTION_PARAMS: dict[str, tuple[str, ...]] = {
    "dispatch": ("department", "assignee"),
    "revisit": ("satisfaction",),
    "extend": ("approver",),
    "merge": ("original",),
}

_RESUME = "<status before suspension>"
#: action → {from status: to status}.
TRANSITIONS: dict[str, dict[str, str]] = {
    "register": {"reported": "registered"},
    "reject": {"reported": "rejected"},
    "dispatch": {"registered": "dispatched"},
    "start": {"dispatched": "in_progress"},
    "feedback": {"in_progress": "handled"},
    "check": {"handled": "checked"},
    "rework": {"handled": "in_progress"},
    "close": {"checked": "closed"},
    "revisit": {"closed": "revisited"},
    "return": {"dispatched": "registered", "in_progress": "registered"},
    "extend": {"dispatched": "dispatched", "in_progress": "in_progress"},
    "suspend": {status: "suspended" for status in STATUSES if status in OPEN_STATUSES - CLOCK_STOPPED_STATUSES},
    "resume": {"suspended": _RESUME},
    "reopen": {"closed": "registered", "revisited": "registered"},
    "merge": {status: "closed" for status in STATUSES if status in MERGEABLE_STATUSES},
}

# Stage timestamps in workflow order with the status each one reaches (backward moves clear later ones).
_STAGE_OF_STATUS: tuple[tuple[str, str], ...] = (
    ("registered_at", "registered"),
    ("dispatched_at", "dispatched"),
    ("handled_at", "handled"),
    ("checked_at", "checked"),
    ("closed_at", "closed"),
    ("revisited_at", "revisited"),
)
