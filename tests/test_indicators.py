"""Planner indicators: every formula checked on a worked example (docs/indicators.md), the API and the XLSX."""

from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import load_workbook

from analytics_data import add, at, cell_codes, closed_case, issue_row
from gridmap.analytics.indicators import INDICATORS, Period, format_rate, indicators
from gridmap.errors import InvalidInput
from gridmap.security.access import UNLIMITED
from gridmap.storage.models import Issue

JUNE = Period(date(2025, 6, 1), date(2025, 6, 30))


def compute(gm, period=JUNE, **options):
    with gm.db.sessions() as session:
        return indicators(session, period, access=UNLIMITED, **options)


def test_a_centre_reporting_1811_collected_and_1729_closed_has_a_closure_rate_of_95_5_percent(gm):
    cases = [closed_case(gm, reported="2025-06-02 09:00", deadline="2025-06-09 18:00",
                         closed="2025-06-05 10:00" if n < 1729 else None) for n in range(1811)]
    add(gm, cases)
    total = compute(gm)["total"]
    assert (total["received"], total["due"], total["closed"]) == (1811, 1811, 1729)
    assert total["closure_rate"] == pytest.approx(1729 / 1811)
    assert format_rate(total["closure_rate"]) == "95.5%"


def worked_example(gm) -> dict[str, int]:
    """The cases of docs/indicators.md, June 2025; returns their ids by letter."""
    cases = {
        # A: closed on time, satisfied (5).
        "A": closed_case(gm, deadline="2025-06-10 18:00", closed="2025-06-08 10:00", satisfaction=5),
        # B: reworked once, closed late, dissatisfied (3).
        "B": closed_case(gm, deadline="2025-06-10 18:00", closed="2025-06-12 10:00", rework_count=1, satisfaction=3),
        # C: extended once, still in progress.
        "C": closed_case(gm, deadline="2025-06-20 18:00", closed=None, extension_count=1),
        # D: registered, not dispatched, due in July.
        "D": issue_row(gm, status="registered", registered_at="2025-06-03 09:00", deadline="2025-07-05 18:00"),
        # E: not registered (不予立案).
        "E": issue_row(gm, status="rejected"),
        # G: reported in May, due and closed on time in June, satisfied (4).
        "G": closed_case(gm, reported="2025-05-20 09:00", deadline="2025-06-02 18:00", closed="2025-06-01 10:00",
                         satisfaction=4),
        # H: reported in June, due 25 June, closed only in July.
        "H": closed_case(gm, reported="2025-06-15 09:00", deadline="2025-06-25 18:00", closed="2025-07-02 10:00"),
        # I: reported in May, due in May, closed late in June.
        "I": closed_case(gm, reported="2025-05-15 09:00", deadline="2025-05-25 18:00", closed="2025-06-05 10:00"),
    }
    add(gm, list(cases.values()))
    ids = {letter: issue.id for letter, issue in cases.items()}
    # F: a duplicate of A merged (closed) into it: received and registered, never 应结案 nor 结案.
    add(gm, [issue_row(gm, status="closed", reported="2025-06-04 09:00", registered_at="2025-06-04 09:30",
                       closed_at="2025-06-05 10:00", deadline="2025-06-12 18:00", duplicate_of=ids["A"])])
    return ids


@pytest.mark.parametrize("due_rule, expected", [
    # Deadline in June: A B C G H are due; A B G closed by 30 June (H closed in July); A G on time.
    ("deadline", dict(received=7, registered=6, dispatched=4, due=5, closed=3, closed_on_time=2, reworked=1,
                      extended=1, revisited=3, satisfied=2, registration_rate=0.857143, dispatch_rate=0.666667,
                      closure_rate=0.6, on_time_rate=0.4, rework_rate=0.2, extension_rate=0.2,
                      median_hours_to_close=217.0, satisfaction_rate=0.666667)),
    # Closed in June (A B G I) plus open at the end with a June deadline (C H): 6 due, 4 closed.
    ("closed", dict(received=7, registered=6, dispatched=4, due=6, closed=4, closed_on_time=2, reworked=1,
                    extended=1, revisited=3, satisfied=2, registration_rate=0.857143, dispatch_rate=0.666667,
                    closure_rate=0.666667, on_time_rate=0.333333, rework_rate=0.166667, extension_rate=0.166667,
                    median_hours_to_close=253.0, satisfaction_rate=0.666667)),
])
def test_the_worked_example_of_the_docs(gm, due_rule, expected):
    worked_example(gm)
    assert compute(gm, due_rule=due_rule)["total"] == expected


def test_merged_duplicates_count_as_received_but_never_as_due_or_closed(gm):
    original = closed_case(gm, deadline="2025-06-10 18:00", closed="2025-06-08 10:00")
    add(gm, [original])
    add(gm, [issue_row(gm, status="closed", registered_at="2025-06-03 09:30", closed_at="2025-06-04 10:00",
                       deadline="2025-06-10 18:00", duplicate_of=original.id)])
    total = compute(gm)["total"]
    assert (total["received"], total["due"], total["closed"], total["closure_rate"]) == (2, 1, 1, 1.0)


def test_rows_per_area_list_every_area_of_the_level_with_zeros(gm):
    codes = cell_codes(gm)
    add(gm,
        [closed_case(gm, cell=codes[0]), closed_case(gm, cell=codes[0], closed=None), closed_case(gm, cell=codes[-1])])
    result = compute(gm, group_by="area", level="cells")
    rows = {row["key"]: row for row in result["rows"]}
    assert len(rows) == len(codes)
    assert (rows[codes[0]]["due"], rows[codes[0]]["closure_rate"]) == (2, 0.5)
    assert rows[codes[-1]]["closure_rate"] == 1.0
    assert rows[codes[1]]["received"] == 0 and rows[codes[1]]["closure_rate"] is None  # nothing due: no rate
    communities = compute(gm, level="communities")["rows"]
    assert sum(row["received"] for row in communities) == 3
    assert communities[0]["name"] == "春园社区"


def test_rows_per_department_and_worker(gm):
    add(gm, [closed_case(gm, department="环卫所", assignee="李师傅"),
             closed_case(gm, department="环卫所", assignee="王师傅", closed=None),
             closed_case(gm, department="城管中队", assignee="李师傅"),
             issue_row(gm, status="reported")])
    departments = {row["name"]: row for row in compute(gm, group_by="department")["rows"]}
    assert departments["环卫所"]["closure_rate"] == 0.5 and departments["城管中队"]["closure_rate"] == 1.0
    assert departments["（未派遣）"]["received"] == 1
    workers = {row["key"]: row for row in compute(gm, group_by="worker")["rows"]}
    assert (workers["李师傅"]["closed"], workers["王师傅"]["closed"]) == (2, 0)


def test_a_category_filter_takes_an_item_or_a_class_code(gm):
    add(gm, [closed_case(gm, category="E0102"), closed_case(gm, category="E0505"), closed_case(gm, category="E0506")])
    assert compute(gm, category="E05")["total"]["received"] == 2
    assert compute(gm, category="E0102")["total"]["received"] == 1


def test_indicators_follow_the_real_workflow(gm):
    # One case driven through the workflow module: the columns the indicators read are the ones it writes.
    from gridmap.issues.workflow import apply_action

    add(gm, [issue_row(gm, reported="2025-06-02 09:00")])
    with gm.db.session() as session:
        issue = session.query(Issue).one()
        steps = [("register", {}), ("dispatch", {"department": "环卫所"}), ("start", {}), ("feedback", {}),
                 ("rework", {"comment": "未清理干净"}), ("feedback", {}), ("check", {}), ("close", {}),
                 ("revisit", {"satisfaction": 4})]
        for hour, (action, params) in enumerate(steps):
            apply_action(session, issue, action, actor="测试", at=at(f"2025-06-02 {10 + hour:02d}:00"),
                         rules=gm.workflow_rules, **params)
    total = compute(gm)["total"]
    assert (total["registered"], total["dispatched"], total["reworked"], total["closed"],
            total["satisfied"]) == (1, 1, 1, 1, 1)


@pytest.mark.parametrize("query, fragment", [
    ("group_by=street", "group_by"),  # not one of area, department, worker
    ("level=city", "level"),  # not a level
    ("due=whenever", "due"),  # not a due rule
    ("from=2025-06-31", "from"),  # not a date
    ("from=2025-07-01&to=2025-06-01", "swap"),  # reversed period
    ("category=X99", "X99"),  # unknown category
    ("from=0021-07-03", "1900-01-01"),  # before any plausible record
])
def test_bad_indicator_queries_get_a_400_that_says_what_to_fix(client, query, fragment):
    with client.get(f"/api/v1/indicators?{query}") as response:
        assert response.status_code == 400
        assert fragment in response.get_json()["error"]["message"]


def test_the_api_and_the_xlsx_export(gm, client):
    worked_example(gm)
    with client.get("/api/v1/indicators?from=2025-06-01&to=2025-06-30&group_by=area&level=streets") as response:
        assert response.status_code == 200
        body = response.get_json()
    assert body["period"] == {"from": "2025-06-01", "to": "2025-06-30"} and body["due"] == "deadline"
    assert body["total"]["closure_rate"] == 0.6
    assert [row["key"] for row in body["rows"]] == ["460204001", "460204101"]
    with client.get("/api/v1/indicators.xlsx?from=2025-06-01&to=2025-06-30&level=streets") as response:
        assert response.status_code == 200
        assert response.mimetype.endswith("spreadsheetml.sheet")
        sheet = load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[1][:2] == ("编码", "名称") and rows[1][2:] == tuple(label for label, _ in INDICATORS.values())
    total = rows[-1]
    assert total[1] == "合计" and total[2 + list(INDICATORS).index("closure_rate")] == 0.6


def test_a_period_cannot_run_backwards():
    with pytest.raises(InvalidInput, match="swap"):
        Period(date(2025, 7, 1), date(2025, 6, 1))
    assert Period(date(2025, 6, 1), date(2025, 6, 30)).previous() == Period(date(2025, 5, 2), date(2025, 5, 31))
