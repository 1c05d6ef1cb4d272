"""Issue statuses of the closed loop (数字城管 workflow) and how they group for counting.

reported → registered (立案) | rejected (不予立案) → dispatched (派遣) → in_progress (处置) →
handled (反馈) → checked (核查) → closed (结案) → revisited (回访); ``suspended`` (挂账) stops
the clock.  The transitions themselves, with their rules, are issue #3.
"""

from __future__ import annotations

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
