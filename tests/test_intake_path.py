"""One intake path: every source of new issues follows the same rules, because every one goes through
:class:`gridmap.issues.intake.Intake` (``submit``, ``submit_in`` or the batch form ``import_records`` /
``check_batch``).

The table below names each source and how it is called; each rule is checked against every source:

- a location outside the caller's areas is refused (OutOfScope, 403) and nothing is written;
- a likely duplicate (same category, within 50 m and 24 h) is flagged on the new issue;
- an unknown category is refused with the same error type (UnknownCategory, 400);
- a point outside every cell is refused with the same error type (OutsideCells; Open311 answers 400, as its
  specification knows no 422).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import make_token
from gridmap.coverage.households import HouseholdRegistry
from gridmap.errors import GridmapError, InvalidField, OutOfScope, OutsideCells, UnknownCategory
from gridmap.interop.ledger_import import import_ledger
from gridmap.issues.intake import RowError
from gridmap.security.access import UNLIMITED, AccessScope
from gridmap.storage.models import Issue
from helpers import cell_point

HOME = "460204001001006"  # the reporter's own cell
ELSEWHERE = "460204001002001"  # a cell of the other community
WORKER = AccessScope(areas=(HOME,))
NOWHERE = (108.0, 18.0)  # the sea south of the district


@dataclass
class Outcome:
    """What a source did: the error type it refused with (None: taken), or the HTTP status of a web source."""

    error: type[GridmapError] | None = None
    status: int | None = None
    messages: list[str] = field(default_factory=list)

    def refused_as(self, error: type[GridmapError]) -> bool:
        if self.status is not None:  # a web source: the status the error type maps to
            return self.status == error.status
        return self.error is not None and issubclass(self.error, error)


def _from_rows(errors) -> Outcome:
    """A batch report's first row error as an outcome (nothing is written when there is one)."""
    if not errors:
        return Outcome()
    first = errors[0]
    return Outcome(error=getattr(first, "error", None), messages=[first.message])


def _raised(call) -> Outcome:
    try:
        result = call()
    except GridmapError as exc:
        return Outcome(error=type(exc), messages=[exc.message])
    return _from_rows(getattr(result, "errors", []))


# --- the sources -----------------------------------------------------------------------------------------


def via_issues_api(ctx, record):
    token = make_token(ctx.gm, "worker", (HOME,)) if ctx.access is WORKER else make_token(ctx.gm, "dispatcher")
    client = ctx.app.test_client()
    body = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in record.items()}
    with client.post("/api/v1/issues", json=body, headers={"Authorization": f"Bearer {token}"}) as response:
        answer = response.get_json()
    if response.status_code == 201:
        return Outcome()
    return Outcome(status=response.status_code, messages=[answer["error"]["message"]])


def via_open311(ctx, record):
    from gridmap.interop.open311 import add_api_key

    with ctx.gm.db.session() as session:
        key = add_api_key(session, "小程序")
    form = {"api_key": key, "service_code": record["category"], "lat": record["lat"], "long": record["lon"],
            "description": record["description"]}
    with ctx.app.test_client().post("/open311/v2/requests.json", data=form) as response:
        answer = response.get_json()
    if response.status_code == 201:
        return Outcome()
    return Outcome(status=response.status_code, messages=[answer[0]["description"]])


def via_import(ctx, record):
    return _raised(lambda: ctx.gm.intake.import_records(ctx.gm.db, [record], access=ctx.access))


def via_ledger_import(ctx, record):
    path = ctx.tmp_path / "hotline.csv"
    values = {**record, "reported_at": record["reported_at"].isoformat()}
    path.write_text(",".join(values) + "\n" + ",".join(str(v) for v in values.values()) + "\n", encoding="utf-8")
    return _raised(lambda: import_ledger(ctx.gm, path, access=ctx.access))


def _household(ctx) -> int:
    registry = HouseholdRegistry.for_core(ctx.gm)
    return registry.create_household({"address": "春园路1号", "kind": "ordinary", "cell": HOME,
                                      "registered_on": "2020-01-01"})["id"]


def via_visit(ctx, record):
    visit = {"household": _household(ctx), "visitor": "张伟", "visited_at": record["reported_at"],
             "issues": [{k: record[k] for k in ("category", "description", "lon", "lat")}]}
    registry = HouseholdRegistry.for_core(ctx.gm)
    return _raised(lambda: registry.record_visit(visit, access=ctx.access))


def via_visit_import(ctx, record):
    visit = {"household": str(_household(ctx)), "visitor": "张伟", "visited_at": record["reported_at"].isoformat(),
             "issue_category": record["category"], "issue_description": record["description"],
             "issue_lon": record["lon"], "issue_lat": record["lat"]}
    registry = HouseholdRegistry.for_core(ctx.gm)
    return _raised(lambda: registry.import_visits([visit], access=ctx.access))


SOURCES = {
    "POST /api/v1/issues": via_issues_api,
    "Open311 POST requests": via_open311,
    "gridmap issues import": via_import,
    "ledger import": via_ledger_import,
    "visit raising an issue": via_visit,
    "visit import raising an issue": via_visit_import,
}


@dataclass
class Context:
    gm: object
    app: object
    tmp_path: Path
    access: AccessScope = UNLIMITED


#: The sources a caller with an area scope reports through (an Open311 API key has no area scope:
#: it may report anywhere).
SCOPED_SOURCES = {name: via for name, via in SOURCES.items() if via is not via_open311}


@pytest.fixture(params=list(SOURCES), ids=list(SOURCES))
def source(request):
    return SOURCES[request.param]


@pytest.fixture(params=list(SCOPED_SOURCES), ids=list(SCOPED_SOURCES))
def scoped_source(request):
    return SCOPED_SOURCES[request.param]


def a_record(point, *, category: str = "E0102", minutes_ago: int = 30) -> dict:
    return {"category": category, "description": "暴露垃圾", "lon": point[0], "lat": point[1],
            "reported_at": datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes_ago)}


def issue_count(gm) -> int:
    with gm.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Issue))


# --- the rules ---------------------------------------------------------------------------------------------


def test_a_location_outside_the_callers_areas_is_refused_and_nothing_is_written(gm, app, tmp_path, scoped_source):
    ctx = Context(gm, app, tmp_path, access=WORKER)
    outcome = scoped_source(ctx, a_record(cell_point(gm.geodata, ELSEWHERE)))
    assert outcome.refused_as(OutOfScope), outcome
    assert any("outside your" in message for message in outcome.messages)
    assert issue_count(gm) == 0


def test_inside_the_callers_areas_the_same_report_is_taken(gm, app, tmp_path, scoped_source):
    outcome = scoped_source(Context(gm, app, tmp_path, access=WORKER), a_record(cell_point(gm.geodata, HOME)))
    assert outcome == Outcome()
    assert issue_count(gm) == 1


def test_a_likely_duplicate_is_flagged(gm, app, tmp_path, source):
    point = cell_point(gm.geodata, HOME)
    original = gm.intake.create(gm.db, a_record(point, minutes_ago=60))
    assert source(Context(gm, app, tmp_path), a_record(point)) == Outcome()
    with gm.db.sessions() as session:
        newest = session.scalar(select(Issue).order_by(Issue.id.desc()).limit(1))
    assert newest.id != original.id and newest.possible_duplicate_of == original.id


def test_an_unknown_category_is_refused_with_the_same_error_type(gm, app, tmp_path, source):
    outcome = source(Context(gm, app, tmp_path), a_record(cell_point(gm.geodata, HOME), category="E9999"))
    assert outcome.refused_as(UnknownCategory), outcome
    assert issue_count(gm) == 0


def test_a_point_outside_every_cell_is_refused_with_the_same_error_type(gm, app, tmp_path, source):
    outcome = source(Context(gm, app, tmp_path), a_record(NOWHERE))
    if source is via_open311:
        assert outcome.status == 400  # GeoReport v2 knows no 422
    else:
        assert outcome.refused_as(OutsideCells), outcome
    assert any("outside every grid cell" in message for message in outcome.messages)
    assert issue_count(gm) == 0


# --- the pieces the rules rest on ------------------------------------------------------------------------------


def test_a_row_error_keeps_its_type_and_fields(gm):
    _, errors = gm.intake.prepare([a_record(cell_point(gm.geodata, HOME), category="E9999"),
                                   {**a_record(cell_point(gm.geodata, HOME)), "description": ""},
                                   a_record(NOWHERE)])
    assert [(e.row, e.error, e.fields) for e in errors] == [
        (1, UnknownCategory, ("category",)),
        (2, InvalidField, ("description",)),
        (3, OutsideCells, ("lon", "lat")),
    ]
    exc = errors[0].exception()
    assert isinstance(exc, UnknownCategory) and exc.fields == ("category",) and exc.status == 400


def test_a_batch_with_one_row_outside_the_scope_writes_nothing_even_skipping_bad_rows(gm):
    rows = [a_record(cell_point(gm.geodata, HOME)), a_record(cell_point(gm.geodata, ELSEWHERE))]
    with pytest.raises(OutOfScope) as refused:
        gm.intake.import_records(gm.db, rows, access=WORKER, skip_bad_rows=True)
    assert f"row 2: cell {ELSEWHERE}" in refused.value.message and "nothing was written" in refused.value.message
    assert refused.value.details == {"outside": [{"where": "row 2", "cell": ELSEWHERE}]}
    assert issue_count(gm) == 0


def test_the_scope_is_checked_before_anything_is_written(gm, monkeypatch):
    """The issues API used to store the issue and roll back; now the intake refuses before the first INSERT."""
    def no_write(*args, **kwargs):
        raise AssertionError("written before the scope was checked")

    monkeypatch.setattr(type(gm.intake), "write", no_write)
    with pytest.raises(OutOfScope):
        gm.intake.submit(gm.db, a_record(cell_point(gm.geodata, ELSEWHERE)), access=WORKER)


def test_ledger_problems_name_the_column_from_the_error_not_its_words(gm, tmp_path):
    path = tmp_path / "hotline.csv"
    path.write_text("经度,纬度,问题类型,问题描述,上报时间\n"
                    f"{NOWHERE[0]},{NOWHERE[1]},E0102,x,2025-06-01 08:00\n", encoding="utf-8")
    mapping = {"经度": "lon", "纬度": "lat", "问题类型": "category", "问题描述": "description",
               "上报时间": "reported_at"}
    report = import_ledger(gm, path, mapping=mapping)
    assert [(e.row, e.columns, e.error) for e in report.errors] == [(2, ("经度", "纬度"), OutsideCells)]


def test_row_errors_of_the_coverage_imports_are_typed_too(gm):
    registry = HouseholdRegistry.for_core(gm)
    _, errors = registry.prepare_households([{"address": "x", "kind": "ordinary", "lon": NOWHERE[0],
                                              "lat": NOWHERE[1]}])
    assert errors == [RowError(1, errors[0].message, OutsideCells, ())]
    assert json.dumps(errors[0].message)  # still a plain message for the report
