"""The ledger (台账): export CSV/XLSX with filters, import from hotline systems, and the round trip."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from conftest import BACKEND
from gridmap.cli import main
from gridmap.interop.ledger_export import export_ledger, iter_ledger_csv
from gridmap.interop.ledger_format import LedgerFilter
from gridmap.interop.ledger_import import import_ledger
from gridmap.issues.workflow import WorkflowRules, apply_action
from gridmap.security.access import UNLIMITED
from gridmap.storage.models import Issue, IssueTransition
from helpers import cell_point, write_csv

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2025, 6, 10, 9, 0, tzinfo=TZ)  # a Tuesday, a working day
CELLS = ("460204001001001", "460204001002010", "460204101001003", "460204101002001")


def at(hours: float) -> datetime:
    """A whole-second moment ``hours`` after T0 (the ledger keeps times to the second)."""
    return T0 + timedelta(hours=hours)


def local(hours: float) -> str:
    return at(hours).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture
def points(mini_geodata):
    return {code: cell_point(mini_geodata, code) for code in CELLS}


def record(points, cell, **fields):
    lon, lat = points[cell]
    return {"lon": lon, "lat": lat, "category": "E0505", "description": "路边机动车乱停放",
            "reported_at": local(0), **fields}


def build_varied_issues(gm, points) -> dict[str, int]:
    """Issues in every status, with stage times, side paths, reporters, photos and extra columns.

    Returns issue ids by the name of their story.
    """
    records = {
        "new": record(points, CELLS[0], source="hotline", reporter_name="王女士", reporter_phone="+86 138 0013 8000",
                      photos="https://img.example/1.jpg;https://img.example/2.jpg", external_id="12345-0001",
                      address="春园路 8 号", 工单来源="市热线"),
        "rejected": record(points, CELLS[1], category="C0118", description="=HYPERLINK(\"x\") 路灯不亮"),
        "full_loop": record(points, CELLS[1], category="E0102", description="暴露垃圾, 多次反映",
                            reporter_name="李先生", reporter_phone="13900139000"),
        "suspended_and_back": record(points, CELLS[2], category="E0301", description="夜间施工噪声"),
        "suspended": record(points, CELLS[2], category="C0118", description="路灯杆倾斜"),
        "duplicate": record(points, CELLS[1], category="E0102", description="同一处暴露垃圾"),
        "imported_closed": record(points, CELLS[3], category="C0118", status="revisited", satisfaction="5",
                                  registered_at=local(0.5), dispatched_at=local(1), handled_at=local(5),
                                  checked_at=local(6), closed_at=local(6.5), revisited_at=local(30)),
        "overdue": record(points, CELLS[3], category="E0401", description="路面塌陷", reported_at=local(-400)),
        "returned": record(points, CELLS[0], category="C0118", description="路灯不亮，非本单位职责"),
    }
    report = gm.intake.import_records(gm.db, list(records.values()), actor="fixture")
    assert not report.errors, report.errors
    ids = dict(zip(records, report.issue_ids))
    rules = WorkflowRules(gm.calendar, gm.categories)
    steps = {
        "rejected": [("reject", 1, {"comment": "不属于受理范围"})],
        "full_loop": [
            ("register", 1, {}), ("dispatch", 1.5, {"department": "环卫所", "assignee": "张师傅"}),
            ("start", 2, {}), ("extend", 2.5, {"comment": "需调车", "approver": "值班长"}),
            ("return", 3, {"comment": "非本单位职责"}), ("dispatch", 3.5, {"department": "环卫所"}),
            ("start", 4, {}), ("feedback", 5, {"comment": "已清运"}),
            ("rework", 5.5, {"comment": "仍有残留"}), ("feedback", 6, {}), ("check", 7, {}),
            ("close", 7.5, {}), ("revisit", 24, {"satisfaction": 2}), ("reopen", 25, {"comment": "市民不满意"}),
            ("dispatch", 26, {"assignee": "刘师傅"}), ("start", 27, {}), ("feedback", 28, {}),
            ("check", 29, {}), ("close", 30, {}), ("revisit", 48, {"satisfaction": 5}),
        ],
        "suspended_and_back": [("register", 1, {}), ("dispatch", 2, {}), ("suspend", 3, {"comment": "等待审批"}),
                               ("resume", 50, {}), ("start", 51, {})],
        "suspended": [("register", 1, {}), ("suspend", 2, {"comment": "涉及规划调整"})],
        "duplicate": [("register", 1, {}), ("merge", 2, {"original": ids["full_loop"]})],
        "overdue": [("register", -399, {}), ("dispatch", -398, {})],
        "returned": [("register", 1, {}), ("dispatch", 2, {"assignee": "路灯所老陈"}),
                     ("return", 3, {"comment": "不归我们管"})],
    }
    with gm.db.session() as session:
        for name, actions in steps.items():
            issue = session.get(Issue, ids[name])
            for action, hours, params in actions:
                apply_action(session, issue, action, actor="调度员甲", at=at(hours), rules=rules, **params)
    return ids


def snapshot(gm) -> list[dict]:
    """Every issue field (but created_at) and every transition field (but the row ids), by issue id."""
    with gm.db.sessions() as session:
        issues = session.scalars(select(Issue).order_by(Issue.id)).all()
        result = []
        for issue in issues:
            values = {c.key: getattr(issue, c.key) for c in Issue.__table__.columns if c.key != "created_at"}
            values["transitions"] = [
                {c.key: getattr(t, c.key) for c in IssueTransition.__table__.columns if c.key not in ("id", "issue_id")}
                for t in issue.transitions
            ]
            result.append(values)
    return result


@pytest.fixture
def second_gm(request, settings, tmp_path):
    """Another core with its own empty (migrated, layer set loaded) database on the same backend."""
    from gridmap.core import Gridmap

    if BACKEND == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'second' / 'gridmap.sqlite3'}", None
    else:
        server = request.getfixturevalue("pg_server")
        name = "t_" + uuid.uuid4().hex[:12]
        url, drop = server.create_database(name), (server, name)
    core = Gridmap({**settings, "database_url": url})
    core.init_database()
    yield core
    core.close()
    if drop:
        drop[0].drop_database(drop[1])


def everything(gm) -> LedgerFilter:
    return LedgerFilter.parse(categories=gm.categories, timezone_name=gm.timezone, access=UNLIMITED)


def count_issues(gm) -> int:
    with gm.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Issue))


# --- the round trip --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_round_trip_into_an_empty_database_gives_identical_issues_and_histories(
    gm, second_gm, points, tmp_path, fmt, lang
):
    build_varied_issues(gm, points)
    original = snapshot(gm)
    statuses = {issue["status"] for issue in original}
    assert statuses >= {"reported", "rejected", "revisited", "in_progress", "suspended", "closed", "dispatched"}
    assert any(t["action"] == "rework" for issue in original for t in issue["transitions"])

    path = tmp_path / f"ledger.{fmt}"
    assert export_ledger(gm, path, everything(gm), lang=lang) == len(original)
    report = import_ledger(second_gm, path, keep_ids=True)

    assert report.errors == [] and report.warnings == []
    assert report.imported == len(original)
    copy = snapshot(second_gm)
    for before, after in zip(original, copy, strict=True):
        for key in before:  # field by field, so a failure names the field
            assert after[key] == before[key], (before["id"], key)
    # The kept ids do not collide with the next new issue (PostgreSQL's id sequence moved on).
    new = second_gm.intake.import_records(second_gm.db, [record(points, CELLS[0])])
    assert new.issue_ids == [original[-1]["id"] + 1]


def test_round_trip_through_the_cli_without_keeping_ids_remaps_duplicates(
    gm, second_gm, points, tmp_path, cli_env, monkeypatch
):
    ids = build_varied_issues(gm, points)
    path = tmp_path / "ledger.xlsx"
    result = CliRunner().invoke(main, ["ledger", "export", str(path), "--status", "closed,revisited"])
    assert result.exit_code == 0, result.output
    assert "wrote 3 issue(s)" in result.output  # full_loop, duplicate (merged = closed), imported_closed

    monkeypatch.setenv("GRIDMAP_DATABASE_URL", str(second_gm.db.url))
    result = CliRunner().invoke(main, ["ledger", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "imported 3 of 3 row(s)" in result.output
    with second_gm.db.sessions() as session:
        by_description = {i.description: i for i in session.scalars(select(Issue))}
    duplicate = by_description["同一处暴露垃圾"]
    assert duplicate.duplicate_of == by_description["暴露垃圾, 多次反映"].id
    assert ids["duplicate"] != duplicate.id  # new ids, references follow them


# --- export ----------------------------------------------------------------------------------------


def read_csv_export(gm, **filters) -> list[dict]:
    ledger_filter = LedgerFilter.parse(categories=gm.categories, timezone_name=gm.timezone, access=UNLIMITED, **filters)
    text = "".join(iter_ledger_csv(gm, ledger_filter))
    assert text.startswith("\ufeff")  # Excel opens UTF-8 with a BOM correctly
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_csv_has_chinese_headers_labels_and_local_times(gm, points):
    ids = build_varied_issues(gm, points)
    rows = {int(r["编号"]): r for r in read_csv_export(gm)}
    new, loop = rows[ids["new"]], rows[ids["full_loop"]]
    assert new["状态"] == "待立案" and new["来源"] == "12345热线" and new["类别名称"] == "机动车乱停放"
    assert new["上报时间"] == "2025-06-10 09:00:00"  # local time, to the second
    assert new["网格编码"] == CELLS[0] and new["社区名称"] == "春园社区" and new["街道名称"] == "河西街道"
    assert new["联系电话"] == "'+86 138 0013 8000"  # CSV-injection guard: a leading + is escaped
    assert new["照片"] == "https://img.example/1.jpg;https://img.example/2.jpg"
    assert json.loads(new["其他信息"]) == {"工单来源": "市热线"}
    assert loop["状态"] == "已回访" and loop["返工次数"] == "1" and loop["延期次数"] == "0" and loop["满意度"] == "5"
    assert loop["处置时间"] == local(27)  # the last start
    history = json.loads(loop["流转记录"])
    assert [h["action"] for h in history][:4] == ["report", "register", "dispatch", "start"]
    assert history[1]["at"] == "2025-06-10T10:00:00+08:00"
    assert rows[ids["rejected"]]["问题描述"].startswith("'=HYPERLINK")


@pytest.mark.parametrize(("name", "overdue"), [
    ("overdue", "是"),  # dispatched, deadline long past
    ("suspended", "否"),  # the clock is stopped
    ("imported_closed", "否"),  # closed within its deadline
    ("rejected", "否"),  # not a case
])
def test_overdue_column(gm, points, name, overdue):
    ids = build_varied_issues(gm, points)
    rows = {int(r["编号"]): r for r in read_csv_export(gm)}
    assert rows[ids[name]]["是否超期"] == overdue


def test_english_headers_and_codes_on_request(gm, points):
    ids = build_varied_issues(gm, points)
    ledger_filter = everything(gm)
    rows = list(csv.DictReader(io.StringIO("".join(iter_ledger_csv(gm, ledger_filter, lang="en"))[1:])))
    row = next(r for r in rows if int(r["ID"]) == ids["new"])
    assert (
        row["Status"] == "reported"
        and row["Source"] == "hotline"
        and row["Category name"] == "Illegal motor-vehicle parking"
    )
    assert row["Overdue"] == "yes"  # reported, not registered, and its 2 working hours are long gone


@pytest.mark.parametrize(("filters", "expected"), [
    ({"area": "460204101"}, {"suspended_and_back", "suspended", "imported_closed", "overdue"}),  # a street
    ({"area": "460204001002"}, {"rejected", "full_loop", "duplicate"}),  # a community
    ({"area": CELLS[0]}, {"new", "returned"}),  # a cell
    ({"area": "460204"}, "all"),  # the district
    ({"status": "suspended,已立案"}, {"suspended", "returned"}),  # codes and labels mix
    ({"status": "open"}, {"new", "suspended_and_back", "suspended", "overdue", "returned"}),
    ({"category": "C01"}, {"rejected", "suspended", "imported_closed", "returned"}),  # a class
    ({"source": "12345热线"}, {"new"}),  # a source by its label
    ({"category": "E0102"}, {"full_loop", "duplicate"}),  # an item
    ({"date_from": "2025-06-10", "date_to": "2025-06-10"}, "all but overdue"),  # local days, both ends included
    ({"date_to": "2025-06-09"}, {"overdue"}),  # reported 400 hours earlier
])
def test_filters(gm, points, filters, expected):
    ids = build_varied_issues(gm, points)
    names = {v: k for k, v in ids.items()}
    found = {names[int(r["编号"])] for r in read_csv_export(gm, **filters)}
    if expected == "all":
        expected = set(ids)
    elif expected == "all but overdue":
        expected = set(ids) - {"overdue"}
    assert found == expected


@pytest.mark.parametrize(("filters", "message"), [
    ({"area": "4602"}, "is not an area code"),  # too short
    ({"area": "460204999"}, "no area has the code 460204999"),  # well formed, unknown
    ({"status": "done"}, "unknown status 'done'"),
    ({"category": "E99"}, "unknown category code"),
    ({"date_from": "2025-13-01"}, "must be a date"),
])
def test_bad_filters_are_refused(gm, filters, message):
    with pytest.raises(Exception) as caught:
        ledger_filter = LedgerFilter.parse(categories=gm.categories, timezone_name=gm.timezone, access=UNLIMITED,
                                           **filters)
        "".join(iter_ledger_csv(gm, ledger_filter))
    assert message in str(caught.value)


def test_xlsx_is_formatted_for_people(gm, points, tmp_path):
    ids = build_varied_issues(gm, points)
    path = tmp_path / "ledger.xlsx"
    export_ledger(gm, path, everything(gm))
    workbook = load_workbook(path)
    assert workbook.sheetnames == ["台账", "流转记录"]
    sheet = workbook["台账"]
    assert sheet.freeze_panes == "A2"
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.column_dimensions["E"].width == 40  # 问题描述
    header = [c.value for c in sheet[1]]
    row = next(r for r in sheet.iter_rows(min_row=2) if r[0].value == ids["full_loop"])
    reported = row[header.index("上报时间")]
    assert reported.value == datetime(2025, 6, 10, 9, 0)  # a real date-time, local wall time
    assert reported.is_date and reported.number_format == "yyyy-mm-dd hh:mm:ss"
    description = next(r for r in sheet.iter_rows(min_row=2) if r[0].value == ids["rejected"])[header.index("问题描述")]
    assert description.data_type == "s" and description.value.startswith("=HYPERLINK")  # text, not a formula
    history = workbook["流转记录"]
    assert [c.value for c in history[1]][:8] == ["案件编号", "序号", "动作", "原状态", "新状态", "操作人",
                                                 "时间", "意见"]
    steps = [r for r in history.iter_rows(min_row=2, values_only=True) if r[0] == ids["full_loop"]]
    assert [s[2] for s in steps[:3]] == ["上报", "立案", "派遣"]
    assert steps[4][2:5] == ("延期", "处置中", "处置中") and json.loads(steps[4][8])["approver"] == "值班长"
    workbook.close()


def test_api_downloads(client, gm, points):
    build_varied_issues(gm, points)
    with client.get("/api/v1/ledger.csv?area=460204001&status=open") as response:
        assert response.status_code == 200
        assert response.mimetype == "text/csv"
        assert response.headers["Content-Disposition"].startswith("attachment; filename=gridmap-ledger-460204001-")
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True)[1:])))
    assert [r["问题描述"] for r in rows] == ["路边机动车乱停放", "路灯不亮，非本单位职责"]
    with client.get("/api/v1/ledger.xlsx?lang=en&category=E01") as response:
        assert response.status_code == 200
        assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        assert ".xlsx" in response.headers["Content-Disposition"]
        workbook = load_workbook(io.BytesIO(response.data), read_only=True)
        assert workbook.sheetnames == ["ledger", "history"]
        assert len(list(workbook["ledger"].iter_rows(min_row=2))) == 2
        workbook.close()


@pytest.mark.parametrize(("query", "message"), [
    ("area=12", "is not an area code"),
    ("status=finished", "unknown status"),
    ("lang=fr", "unknown ledger language"),
    ("from=yesterday", "must be a date"),
])
def test_api_refuses_bad_filters_with_400(client, gm, query, message):
    for fmt in ("csv", "xlsx"):
        with client.get(f"/api/v1/ledger.{fmt}?{query}") as response:
            assert response.status_code == 400
            assert message in response.get_json()["error"]["message"]


# --- import from hotline systems -------------------------------------------------------------------

HOTLINE_MAPPING = {"诉求编号": "external_id", "诉求内容": "description", "问题类型": "category", "经度": "lon",
                   "纬度": "lat", "受理时间": "reported_at", "来电人": "reporter_name", "来电号码": "reporter_phone"}


def hotline_row(points, cell=CELLS[0], **fields):
    lon, lat = points[cell]
    return {"诉求编号": "RX20250610001", "诉求内容": "小区门口垃圾无人清运", "问题类型": "暴露垃圾", "经度": lon,
            "纬度": lat,
            "受理时间": "2025/06/10 08:15", "来电人": "赵先生", "来电号码": "13700137000",
            "办理单位": "天涯区环卫所", **fields}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("mapping_format", ["json", "csv"])
def test_hotline_csv_in_gbk_with_a_mapping(gm, cli_env, points, tmp_path, mapping_format):
    path = write_csv(tmp_path / "hotline.csv",
                     [hotline_row(points), hotline_row(points, CELLS[1], 诉求编号="RX2", 问题类型="E0505")],
                     encoding="gbk")
    if mapping_format == "json":
        mapping = tmp_path / "mapping.json"
        mapping.write_text(json.dumps(HOTLINE_MAPPING, ensure_ascii=False), encoding="utf-8")
    else:
        mapping = write_csv(tmp_path / "mapping.csv", [{"column": k, "field": v} for k, v in HOTLINE_MAPPING.items()],
                            encoding="gbk")
    result = run("ledger", "import", path, "--mapping", mapping)
    assert result.exit_code == 0, result.output
    assert "imported 2 of 2 row(s)" in result.output
    with gm.db.sessions() as session:
        first, second = session.scalars(select(Issue).order_by(Issue.id)).all()
        history = [t.action for t in first.transitions]
    assert (first.external_id, first.category, first.reporter_phone) == ("RX20250610001", "E0102", "13700137000")
    assert first.reported_at == datetime(2025, 6, 10, 8, 15, tzinfo=TZ)
    assert first.extra == {"办理单位": "天涯区环卫所"}  # unmapped columns are kept
    assert first.status == "reported" and history == ["report"]
    assert second.category == "E0505" and second.cell_code == CELLS[1]


def test_hotline_xlsx_with_numbers_where_text_is_meant(gm, points, tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    row = hotline_row(points, 来电号码=13700137000, 诉求编号=20250610001)  # Excel made numbers of them
    row["受理时间"] = datetime(2025, 6, 10, 8, 15)
    sheet.append(list(row))
    sheet.append(list(row.values()))
    path = tmp_path / "hotline.xlsx"
    workbook.save(path)
    report = import_ledger(gm, path, mapping=HOTLINE_MAPPING)
    assert report.errors == [] and report.imported == 1
    with gm.db.sessions() as session:
        issue = session.scalars(select(Issue)).one()
    assert (issue.reporter_phone, issue.external_id) == ("13700137000", "20250610001")
    assert issue.reported_at == datetime(2025, 6, 10, 8, 15, tzinfo=TZ)


def test_dry_run_checks_and_writes_nothing(gm, cli_env, points, tmp_path):
    path = write_csv(tmp_path / "hotline.csv", [hotline_row(points)])
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps(HOTLINE_MAPPING), encoding="utf-8")
    result = run("ledger", "import", path, "--mapping", mapping, "--dry-run")
    assert result.exit_code == 0 and "would import 1 of 1 row(s)" in result.output
    assert count_issues(gm) == 0


def test_skip_bad_rows_writes_the_good_rows_and_lists_every_bad_one(gm, cli_env, points, tmp_path):
    path = write_csv(tmp_path / "hotline.csv", [
        hotline_row(points),  # line 2: fine
        hotline_row(points, 经度=108.0, 纬度=18.0),  # line 3: in the sea
        hotline_row(points, 问题类型="飞碟"),  # line 4: no such category
        hotline_row(points, CELLS[2]),  # line 5: fine
    ])
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps(HOTLINE_MAPPING), encoding="utf-8")
    result = run("ledger", "import", path, "--mapping", mapping, "--skip-bad-rows")
    assert result.exit_code == 0, result.output
    assert "row 3, column 经度 / 纬度: (108, 18) lies outside every grid cell" in result.output
    assert "row 4, column 问题类型: no category has the code or name '飞碟'" in result.output
    assert "imported 2 of 4 row(s), skipped 2 bad row(s)" in result.output
    assert count_issues(gm) == 2


def _ledger_csv(gm, points, tmp_path, **changes):
    """Our own export of one issue as CSV, with some cells changed (by header)."""
    build_varied_issues(gm, points)
    rows = read_csv_export(gm, area=CELLS[0])
    rows[0].update(changes)
    with gm.db.session() as session:  # an empty database to import into
        for issue in session.scalars(select(Issue).order_by(Issue.id.desc())):
            session.delete(issue)
    return write_csv(tmp_path / "ledger.csv", rows)


def _twice(gm, points, tmp_path):
    path = _ledger_csv(gm, points, tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines + lines[1:]), encoding="utf-8")
    return path


def _broken_xlsx(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 this is not really a workbook")
    return path


def _gbk_hotline(points, tmp_path):
    return write_csv(tmp_path / "gbk.csv", [hotline_row(points, 问题类型="乱扔垃圾啊")], encoding="gbk")


def _mapping(tmp_path, mapping):
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(mapping, ensure_ascii=False), encoding="utf-8")
    return path


BAD_IMPORTS = [
    # (id, how the file is made, extra CLI args, the message expected)
    ("unknown category", lambda gm, p, t: _ledger_csv(gm, p, t, 类别编码="E9999"), [],
     "row 2, column 类别编码: no category has the code or name 'E9999'"),
    ("outside every cell", lambda gm, p, t: _ledger_csv(gm, p, t, 经度="108.0", 纬度="18.0"), [],
     "row 2, column 经度 / 纬度: (108, 18) lies outside every grid cell"),
    ("bad date", lambda gm, p, t: _ledger_csv(gm, p, t, 上报时间="昨天上午"), [],
     "row 2, column 上报时间: reported_at '昨天上午' is not a date-time"),
    ("bad stage date", lambda gm, p, t: _ledger_csv(gm, p, t, 期限="2025-02-30 10:00"), [],
     "row 2, column 期限: deadline '2025-02-30 10:00' is not a date-time"),
    ("bad satisfaction", lambda gm, p, t: _ledger_csv(gm, p, t, 满意度="7"), [],
     "row 2, column 满意度: satisfaction must be 1–5, got 7"),
    ("unknown status", lambda gm, p, t: _ledger_csv(gm, p, t, 状态="办结"), [],
     "row 2, column 状态: unknown status '办结'"),
    ("history that does not chain", lambda gm, p, t: _ledger_csv(
        gm, p, t, 流转记录=json.dumps([{"action": "report", "from_status": None, "to_status": "reported", "actor": "x",
                                        "at": "2025-06-10T09:00:00+08:00"},
                                       {"action": "dispatch", "from_status": "registered", "to_status": "dispatched",
                                        "actor": "x", "at": "2025-06-10T10:00:00+08:00"}])), [],
     "row 2, column 流转记录: history: transition 2 starts from registered but the one before ended in reported"),
    ("history in broken JSON", lambda gm, p, t: _ledger_csv(gm, p, t, 流转记录="[{"), [],
     "row 2, column 流转记录: history: not valid JSON"),
    ("bad mapping column", lambda gm, p, t: _gbk_hotline(p, t),
     lambda t: ["--mapping", _mapping(t, {**HOTLINE_MAPPING, "诉求内荣": "description"})],
     "the mapping names column '诉求内荣', which gbk.csv does not have; its columns are: 诉求编号, 诉求内容"),
    ("mapping to an unknown field", lambda gm, p, t: _gbk_hotline(p, t),
     lambda t: ["--mapping", _mapping(t, {**HOTLINE_MAPPING, "办理单位": "dept"})],
     "the mapping sends column '办理单位' to 'dept', which is not a field"),
    ("no mapping for a hotline file", lambda gm, p, t: _gbk_hotline(p, t), [],
     "gbk.csv: no column gives category, description, reported_at"),  # 经度 and 纬度 are our headers too
    ("GBK file with an unknown category name", lambda gm, p, t: _gbk_hotline(p, t),
     lambda t: ["--mapping", _mapping(t, HOTLINE_MAPPING)],
     "row 2, column 问题类型: no category has the code or name '乱扔垃圾啊'"),
    ("GBK file read as UTF-8", lambda gm, p, t: _gbk_hotline(p, t),
     lambda t: ["--mapping", _mapping(t, HOTLINE_MAPPING), "--encoding", "utf-8"],
     "gbk.csv: cannot be read as utf-8"),
    ("the same id twice", lambda gm, p, t: _twice(gm, p, t), [],
     "row 4, column 编号: id 1 is also on row 2"),
    ("broken XLSX", lambda gm, p, t: _broken_xlsx(t), [],
     "broken.xlsx: not a readable XLSX workbook"),
    ("broken mapping file", lambda gm, p, t: _gbk_hotline(p, t),
     lambda t: ["--mapping", (t / "m.json", (t / "m.json").write_text("{oops"))[0]],
     "mapping file"),
]


@pytest.mark.parametrize(("make", "args", "message"), [case[1:] for case in BAD_IMPORTS],
                         ids=[case[0] for case in BAD_IMPORTS])
def test_bad_imports_say_what_is_wrong_and_write_nothing(gm, cli_env, points, tmp_path, make, args, message):
    path = make(gm, points, tmp_path)
    assert count_issues(gm) == 0
    result = run("ledger", "import", path, *(args(tmp_path) if callable(args) else args))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert count_issues(gm) == 0
    with gm.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(IssueTransition)) == 0


def test_keeping_ids_that_are_taken_is_refused(gm, points, tmp_path):
    build_varied_issues(gm, points)
    path = tmp_path / "ledger.csv"
    export_ledger(gm, path, everything(gm))
    before = count_issues(gm)
    report = import_ledger(gm, path, keep_ids=True)
    assert report.imported == 0 and len(report.errors) == before
    assert "issue 1 already exists in the database" in str(report.errors[0])
    assert count_issues(gm) == before
    assert import_ledger(gm, path).imported == before  # new ids are fine
    assert count_issues(gm) == 2 * before


def test_a_ledger_with_a_status_but_no_history_gets_one_from_its_stage_times(gm, points, tmp_path):
    lon, lat = points[CELLS[0]]
    path = write_csv(tmp_path / "old.csv",
                     [{"编号": "7", "类别编码": "E0505", "问题描述": "旧台账", "经度": lon, "纬度": lat,
                                              "状态": "已派遣", "上报时间": local(0), "立案时间": local(1),
                                              "派遣时间": local(2), "紧急程度": "紧急", "返工次数": "1"}])
    report = import_ledger(gm, path)
    assert report.errors == [] and report.imported == 1
    with gm.db.sessions() as session:
        issue = session.scalars(select(Issue)).one()
        actions = [t.action for t in issue.transitions]
    assert (issue.status, issue.urgency, issue.rework_count) == ("dispatched", "urgent", 1)
    assert actions == ["report", "register", "dispatch"]


def test_every_header_names_one_field():
    from gridmap.interop.ledger_format import HISTORY_COLUMN, issue_columns

    names: dict[str, str] = {}
    for column in [*issue_columns(), HISTORY_COLUMN]:
        for name in {column.zh.casefold(), column.en.casefold(), column.key}:
            assert names.setdefault(name, column.key) == column.key, name


def test_control_characters_do_not_break_an_xlsx_export(gm, points, tmp_path):
    gm.intake.import_records(gm.db, [record(points, CELLS[0], description="路灯\x0b不亮\x07")])
    path = tmp_path / "ledger.xlsx"
    export_ledger(gm, path, everything(gm))
    workbook = load_workbook(path, read_only=True)
    assert [r[4] for r in workbook["台账"].iter_rows(min_row=2, values_only=True)] == ["路灯不亮"]
    workbook.close()


def test_the_openapi_document_describes_the_downloads(client):
    with client.get("/api/v1/openapi.json") as response:
        document = response.get_json()
    for path in ("/ledger.csv", "/ledger.xlsx"):
        operation = document["paths"][path]["get"]
        assert {p["name"] for p in operation["parameters"]} == {
            "area", "from", "to", "status", "category", "source", "lang"}
        assert operation["responses"]["400"] == {"$ref": "#/components/responses/BadRequest"}
    assert "BadRequest" in document["components"]["responses"]


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "pdf"], "invalid value for '--format'"),  # click refuses it
    (["--lang", "fr"], "unknown ledger language 'fr'"),
    (["--area", "460204999"], "no area has the code 460204999"),
])
def test_export_cli_refuses_bad_options(gm, cli_env, tmp_path, args, message):
    result = run("ledger", "export", tmp_path / "out.csv", *args)
    assert result.exit_code == 2 and message in result.output.lower()
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.csv.part").exists()


def test_export_into_a_missing_folder_is_refused(gm, cli_env, tmp_path):
    result = run("ledger", "export", tmp_path / "nowhere" / "out.xlsx")
    assert result.exit_code == 2 and "does not exist" in result.output


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"诉求编号": ', "broken JSON at line 1"),  # cut off
        ('{"诉求编号": ' + "9" * 5000 + "}", "not usable JSON"),  # a number Python will not read
        ("[" * 100_000 + "]" * 100_000, "not usable JSON"),  # nested deeper than the parser goes
    ],
)
def test_an_unreadable_mapping_file_is_refused_with_its_name(tmp_path, text, message):
    from gridmap.errors import InvalidInput
    from gridmap.interop.ledger_files import load_mapping

    path = tmp_path / "mapping.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput) as refused:
        load_mapping(path)
    assert refused.value.message.startswith(f"mapping file {path}: ") and message in refused.value.message
