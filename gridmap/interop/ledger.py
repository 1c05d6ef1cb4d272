"""The ledger (台账): issues with their full history as CSV or XLSX, and the import of such files.

Export
    One row per issue, every stored field plus readable extras (category and area names, the
    处置 time, 是否超期), Chinese column headers and value labels by default (``lang="en"``:
    English headers and the stored codes).  The transition history travels with it: in XLSX as
    a second sheet "流转记录" ("history"), one row per transition; in CSV as a JSON column
    "流转记录" holding the issue's transitions (one file, so a download is one file).  Times are
    local (the service's time zone) and kept to the second; XLSX cells are real Excel date-times.

Import
    CSV (UTF-8 or GBK/GB18030) or XLSX from a hotline system or from our own export.  A column
    mapping (their header → our field) names what each column holds; without one, the headers
    of our own export (Chinese or English) and the field names themselves are recognised, so an
    export re-imports with no mapping file.  Rows are validated and located by
    :class:`gridmap.issues.intake.Intake`; a row that carries a history (our export) is restored
    exactly — status, stage times, deadline, counters and every transition as exported.  The
    import is one transaction: any bad row and nothing is written, unless ``skip_bad_rows``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Float, Integer, select, text, update
from sqlalchemy.orm import Session, selectinload

from gridmap.issues import workflow
from gridmap.issues.categories import CategoryTree
from gridmap.errors import InvalidInput
from gridmap.issues.intake import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, STAGES, decode_text, parse_datetime
from gridmap.security.access import AccessScope, mask_name, mask_phone
from gridmap.issues.query import IssueQuery
from gridmap import labels
from gridmap.storage.models import Area, Issue, IssueTransition, UTCDateTime
from gridmap.issues.workflow import CLOCK_STOPPED_STATUSES, CLOSED_STATUSES, OPEN_STATUSES, STATUSES

if TYPE_CHECKING:
    from gridmap.core import Gridmap

FORMATS = ("csv", "xlsx")
HISTORY_SHEET = {"zh": "流转记录", "en": "history"}
MAIN_SHEET = {"zh": "台账", "en": "ledger"}

# --- value labels (Chinese; English uses the stored codes) -------------------------------------

STATUS_LABELS = workflow.STATUS_LABELS
SOURCE_LABELS = labels.SOURCE_LABELS
URGENCY_LABELS = {"urgent": "紧急", "high": "高", "normal": "一般", "low": "低"}
TIME_LIMIT_KIND_LABELS = {
    "continuous_hours": "紧急工作时", "working_hours": "工作时", "working_days": "工作日", "calendar_days": "自然日",
}
SLA_STATE_LABELS = {"ok": "正常", "warning": "预警", "overdue": "超期", "paused": "暂停"}
#: The workflow's actions plus the two the intake records (the report itself, a status as imported).
ACTION_LABELS = {"report": "上报", **workflow.ACTION_LABELS, "import": "导入"}
#: Which label table a column's values use.
LABELLED = {
    "status": STATUS_LABELS, "source": SOURCE_LABELS, "urgency": URGENCY_LABELS,
    "time_limit_kind": TIME_LIMIT_KIND_LABELS, "sla_state": SLA_STATE_LABELS, "suspended_from": STATUS_LABELS,
    "from_status": STATUS_LABELS, "to_status": STATUS_LABELS, "action": ACTION_LABELS,
}
YES_NO = {"zh": ("是", "否"), "en": ("yes", "no")}


@dataclass(frozen=True)
class Column:
    """One ledger column: the field it holds and its headers."""

    key: str
    zh: str
    en: str
    width: int = 14
    derived: bool = False  # written for readers, ignored on import

    def header(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


#: The issue columns in ledger order. Issue table columns missing here are appended by name.
ISSUE_COLUMNS: tuple[Column, ...] = (
    Column("id", "编号", "ID", 8),
    Column("external_id", "外部编号", "External ID", 16),
    Column("category", "类别编码", "Category code", 10),
    Column("category_name", "类别名称", "Category name", 16, derived=True),
    Column("description", "问题描述", "Description", 40),
    Column("source", "来源", "Source", 12),
    Column("address", "地址", "Address", 30),
    Column("lon", "经度", "Longitude", 12),
    Column("lat", "纬度", "Latitude", 12),
    Column("cell_code", "网格编码", "Cell code", 17, derived=True),
    Column("cell_name", "网格名称", "Cell", 16, derived=True),
    Column("community_code", "社区编码", "Community code", 14, derived=True),
    Column("community_name", "社区名称", "Community", 14, derived=True),
    Column("street_code", "街道编码", "Street code", 11, derived=True),
    Column("street_name", "街道名称", "Street", 12, derived=True),
    Column("district_code", "区县编码", "District code", 9, derived=True),
    Column("district_name", "区县名称", "District", 14, derived=True),
    Column("urgency", "紧急程度", "Urgency", 9),
    Column("status", "状态", "Status", 10),
    Column("department", "责任部门", "Department", 16),
    Column("assignee", "责任人", "Assignee", 10),
    Column("reported_at", "上报时间", "Reported at", 20),
    Column("registered_at", "立案时间", "Registered at", 20),
    Column("dispatched_at", "派遣时间", "Dispatched at", 20),
    Column("started_at", "处置时间", "Started at", 20, derived=True),
    Column("handled_at", "反馈时间", "Handled at", 20),
    Column("checked_at", "核查时间", "Checked at", 20),
    Column("closed_at", "结案时间", "Closed at", 20),
    Column("revisited_at", "回访时间", "Revisited at", 20),
    Column("deadline", "期限", "Deadline", 20),
    Column("overdue", "是否超期", "Overdue", 9, derived=True),
    Column("time_limit_kind", "时限类型", "Time-limit kind", 12),
    Column("time_limit_value", "时限", "Time limit", 8),
    Column("extension_count", "延期次数", "Extensions", 9),
    Column("rework_count", "返工次数", "Reworks", 9),
    Column("satisfaction", "满意度", "Satisfaction", 8),
    Column("reporter_name", "上报人", "Reporter", 10),
    Column("reporter_phone", "联系电话", "Reporter phone", 15),
    Column("photos", "照片", "Photos", 30),
    Column("duplicate_of", "重复案件编号", "Duplicate of", 10),
    Column("possible_duplicate_of", "疑似重复编号", "Possible duplicate of", 10),
    Column("suspended_at", "挂账时间", "Suspended at", 20),
    Column("suspended_from", "挂账前状态", "Suspended from", 10),
    Column("paused_seconds", "暂停时长(秒)", "Paused seconds", 10),
    Column("sla_state", "时限状态", "SLA state", 9),
    Column("extra", "其他信息", "Extra", 20),
)
#: The CSV column that holds each issue's transitions as JSON.
HISTORY_COLUMN = Column("history", "流转记录", "History", 60)
#: Columns of the history sheet of an XLSX ledger (plus any further IssueTransition columns).
HISTORY_COLUMNS: tuple[Column, ...] = (
    Column("issue_id", "案件编号", "Issue ID", 9),
    Column("seq", "序号", "Seq", 6),
    Column("action", "动作", "Action", 10),
    Column("from_status", "原状态", "From", 10),
    Column("to_status", "新状态", "To", 10),
    Column("actor", "操作人", "Actor", 14),
    Column("at", "时间", "At", 20),
    Column("comment", "意见", "Comment", 40),
    Column("details", "详情", "Details", 30),
)
#: Not stored with the ledger: database bookkeeping.
_NOT_EXPORTED = {"created_at"}
_INTAKE_FIELDS = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
_STAGE_FIELDS = tuple(stage for stage, _, _ in STAGES)


def issue_columns() -> list[Column]:
    """The ledger's issue columns: the listed ones, then any other Issue column by its name."""
    listed = {column.key for column in ISSUE_COLUMNS}
    more = [Column(c.key, c.key, c.key) for c in Issue.__table__.columns
            if c.key not in listed and c.key not in _NOT_EXPORTED]
    columns = [c for c in ISSUE_COLUMNS if c.derived or c.key in Issue.__table__.columns]
    return columns[:-1] + more + columns[-1:]  # extra stays last


def history_columns() -> list[Column]:
    """The history sheet's columns: the listed ones, then any other IssueTransition column."""
    listed = {column.key for column in HISTORY_COLUMNS}
    table = IssueTransition.__table__.columns
    more = [Column(c.key, c.key, c.key) for c in table if c.key not in listed and c.key not in ("id",)]
    return [c for c in HISTORY_COLUMNS if c.key in ("issue_id", "seq") or c.key in table] + more


def _transition_fields() -> list[str]:
    return [c.key for c in IssueTransition.__table__.columns if c.key not in ("id", "issue_id")]


def parse_lang(value: str | None) -> str:
    """``zh`` (default) or ``en`` from a language name such as zh-CN, zh_CN or en."""
    text_ = (value or "zh").strip().lower().replace("_", "-")
    if text_ in ("zh", "zh-cn", "zh-hans"):
        return "zh"
    if text_ in ("en", "en-us", "en-gb"):
        return "en"
    raise InvalidInput(f"unknown ledger language {value!r}; use zh (Chinese headers) or en (English headers)")


# --- filters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerFilter:
    """Which issues a ledger holds: the filters of ``GET /api/v1/issues`` (period, category, area of
    any level, statuses, sources), with statuses and sources also accepted by their Chinese labels."""

    query: IssueQuery
    personal: bool = True  # False: reporter names and phones are masked (#8)

    @classmethod
    def parse(cls, *, area: str | None = None, date_from: str | None = None, date_to: str | None = None,
              status: str | None = None, category: str | None = None, source: str | None = None,
              categories: CategoryTree, timezone_name: str, access: AccessScope,
              personal: bool = True) -> LedgerFilter:
        """Build a filter from text (query string or CLI), refusing what cannot be right.

        ``access``: the rows the asking principal may see; ``personal``: whether it sees reporters' contacts.
        """
        args = {
            "area": area, "from": date_from, "to": date_to, "category": category,
            "status": _codes(status, STATUS_LABELS), "source": _codes(source, SOURCE_LABELS),
        }
        return cls(IssueQuery.parse({k: v for k, v in args.items() if v}, categories=categories,
                                    timezone_name=timezone_name, access=access), personal)

    @property
    def area(self) -> str | None:
        return self.query.area

    def conditions(self) -> list[Any]:
        """SQL conditions on the issues table."""
        return self.query.conditions()

    def check_area(self, session: Session) -> None:
        """Refuse an area code the loaded layer set does not have."""
        if self.area and session.get(Area, self.area) is None:
            raise InvalidInput(f"no area has the code {self.area}; check it against the layer set "
                               "(gridmap locate shows the codes of a point)")


def _codes(text_: str | None, labels: Mapping[str, str]) -> str | None:
    """Comma-separated values with Chinese labels replaced by their codes."""
    if text_ is None:
        return None
    return ",".join(label_code(part, labels) for part in text_.split(",") if part.strip())


def label_code(value: str, labels: Mapping[str, str]) -> str:
    """The code a value names: itself if it is a code (any case), else the code of a label."""
    text_ = str(value).strip()
    if text_ in labels:
        return text_
    if text_.lower() in labels:
        return text_.lower()
    for code, label in labels.items():
        if label == text_:
            return code
    return text_


# --- export ------------------------------------------------------------------------------------


def _floor_second(moment: datetime | None, tz: tzinfo) -> datetime | None:
    """Local wall time to the whole second (naive), the ledger's time format."""
    return None if moment is None else moment.astimezone(tz).replace(microsecond=0, tzinfo=None)


def is_overdue(issue: Issue, as_of: datetime) -> bool:
    """Closed after its deadline, or open with the clock running and past its deadline at ``as_of``."""
    if issue.deadline is None:
        return False
    if issue.status in CLOSED_STATUSES:
        return issue.closed_at is not None and issue.closed_at > issue.deadline
    return issue.status in OPEN_STATUSES - CLOCK_STOPPED_STATUSES and issue.deadline < as_of


#: Personal columns and how they are masked for roles without personal:read (#8).
MASKED_COLUMNS = {"reporter_name": mask_name, "reporter_phone": mask_phone}


class _Exporter:
    """Turns issues into ledger rows of typed values (datetimes local and naive, labels applied)."""

    def __init__(self, gm: Gridmap, session: Session, lang: str, as_of: datetime | None, *, personal: bool = True) -> None:
        self.gm = gm
        self.personal = personal
        self.lang = parse_lang(lang)
        self.tz = ZoneInfo(gm.timezone)
        self.as_of = as_of or datetime.now(timezone.utc)
        self.area_names = dict(session.execute(select(Area.code, Area.name)).all())
        self.columns = issue_columns()
        self.history_columns = history_columns()
        self.datetime_keys = {c.key for c in Issue.__table__.columns if isinstance(c.type, UTCDateTime)} | {"started_at"}

    def label(self, key: str, value: Any) -> Any:
        if value is None or self.lang == "en" or key not in LABELLED:
            return value
        return LABELLED[key].get(value, value)

    def category_name(self, code: str) -> str | None:
        if code not in self.gm.categories:
            return None
        category = self.gm.categories.get(code)
        return category.name_zh if self.lang == "zh" else (category.name_en or category.name_zh)

    def issue_row(self, issue: Issue) -> list[Any]:
        """The values of one issue, in column order."""
        started = [t.at for t in issue.transitions if t.action == "start"]
        yes, no = YES_NO[self.lang]
        derived = {
            "category_name": self.category_name(issue.category),
            "cell_name": self.area_names.get(issue.cell_code),
            "community_name": self.area_names.get(issue.community_code),
            "street_name": self.area_names.get(issue.street_code),
            "district_name": self.area_names.get(issue.district_code),
            "started_at": started[-1] if started else None,
            "overdue": yes if is_overdue(issue, self.as_of) else no,
        }
        values = []
        for column in self.columns:
            value = derived[column.key] if column.key in derived else getattr(issue, column.key)
            if not self.personal and column.key in MASKED_COLUMNS:
                value = MASKED_COLUMNS[column.key](value)
            if column.key in self.datetime_keys:
                value = _floor_second(value, self.tz)
            elif column.key == "photos":
                value = ";".join(value or []) or None
            elif column.key == "extra":
                value = json.dumps(value, ensure_ascii=False, sort_keys=True) if value else None
            elif isinstance(value, (dict, list)):
                value = json.dumps(value, ensure_ascii=False, sort_keys=True)
            values.append(self.label(column.key, value))
        return values

    def history_rows(self, issue: Issue) -> list[list[Any]]:
        """One row per transition of an issue, for the history sheet."""
        rows = []
        for seq, transition in enumerate(issue.transitions, start=1):
            row = []
            for column in self.history_columns:
                if column.key == "seq":
                    value: Any = seq
                elif column.key == "at":
                    value = _floor_second(transition.at, self.tz)
                else:
                    value = getattr(transition, column.key)
                    if isinstance(value, (dict, list)):
                        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
                row.append(self.label(column.key, value))
            rows.append(row)
        return rows

    def history_json(self, issue: Issue) -> str:
        """An issue's transitions as a JSON array (codes, ISO 8601 local times), for the CSV column."""
        entries = []
        for transition in issue.transitions:
            entry = {}
            for key in _transition_fields():
                value = getattr(transition, key)
                if key == "at":
                    value = transition.at.astimezone(self.tz).replace(microsecond=0).isoformat()
                entry[key] = value
            entries.append(entry)
        return json.dumps(entries, ensure_ascii=False)


def _issues(session: Session, ledger_filter: LedgerFilter, batch: int = 500) -> Iterator[Issue]:
    """The filtered issues with their transitions, by id, loaded a batch at a time."""
    last = 0
    while True:
        chunk = session.scalars(
            select(Issue).where(*ledger_filter.conditions(), Issue.id > last)
            .options(selectinload(Issue.transitions)).order_by(Issue.id).limit(batch)
        ).all()
        if not chunk:
            return
        yield from chunk
        last = chunk[-1].id
        session.expunge_all()


#: Characters that make a spreadsheet read a CSV cell as a formula (CSV injection); a leading
#: apostrophe is added on export and removed on import.  The apostrophe itself is escaped too,
#: so the rule round-trips every text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    return str(value)


def iter_ledger_csv(gm: Gridmap, ledger_filter: LedgerFilter, *, lang: str = "zh",
                    as_of: datetime | None = None) -> Iterator[str]:
    """The ledger as CSV text chunks (UTF-8 BOM first, for Excel); filters are checked before the first chunk."""
    lang = parse_lang(lang)
    with gm.db.sessions() as session:
        ledger_filter.check_area(session)

    def chunks() -> Iterator[str]:
        with gm.db.sessions() as session:
            exporter = _Exporter(gm, session, lang, as_of, personal=ledger_filter.personal)
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\r\n")
            writer.writerow([c.header(lang) for c in exporter.columns] + [HISTORY_COLUMN.header(lang)])
            yield "\ufeff" + buffer.getvalue()
            for number, issue in enumerate(_issues(session, ledger_filter), start=1):
                buffer.seek(0)
                buffer.truncate()
                writer.writerow([_csv_text(v) for v in exporter.issue_row(issue)] + [exporter.history_json(issue)])
                yield buffer.getvalue()

    return chunks()


def write_ledger_xlsx(gm: Gridmap, ledger_filter: LedgerFilter, out: BinaryIO | str | Path, *,
                      lang: str = "zh", as_of: datetime | None = None) -> int:
    """Write the ledger as an XLSX workbook (sheet 台账 and sheet 流转记录); return the issue count."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    lang = parse_lang(lang)
    with gm.db.sessions() as session:
        ledger_filter.check_area(session)
        exporter = _Exporter(gm, session, lang, as_of, personal=ledger_filter.personal)
        workbook = Workbook(write_only=True)
        main = workbook.create_sheet(MAIN_SHEET[lang])
        history = workbook.create_sheet(HISTORY_SHEET[lang])
        bold = Font(bold=True)

        def prepare(sheet, columns: Sequence[Column]) -> None:
            sheet.freeze_panes = "A2"
            for index, column in enumerate(columns, start=1):
                sheet.column_dimensions[get_column_letter(index)].width = column.width
            header = []
            for column in columns:
                cell = WriteOnlyCell(sheet, value=column.header(lang))
                cell.font = bold
                header.append(cell)
            sheet.append(header)

        def cells(sheet, values: Sequence[Any]) -> list[Any]:
            row = []
            for value in values:
                if isinstance(value, str):
                    # XML cannot hold control characters (pasted from other systems): drop them.
                    value = ILLEGAL_CHARACTERS_RE.sub("", value)
                cell = WriteOnlyCell(sheet, value=value)
                if isinstance(value, datetime):
                    cell.number_format = "yyyy-mm-dd hh:mm:ss"
                elif isinstance(value, str) and value.startswith("="):
                    cell.data_type = "s"  # text that looks like a formula stays text
                row.append(cell)
            return row

        prepare(main, exporter.columns)
        prepare(history, exporter.history_columns)
        count = transitions = 0
        for issue in _issues(session, ledger_filter):
            main.append(cells(main, exporter.issue_row(issue)))
            for row in exporter.history_rows(issue):
                history.append(cells(history, row))
                transitions += 1
            count += 1
        main.auto_filter.ref = f"A1:{get_column_letter(len(exporter.columns))}{count + 1}"
        history.auto_filter.ref = f"A1:{get_column_letter(len(exporter.history_columns))}{transitions + 1}"
    workbook.save(out)
    return count


def export_ledger(gm: Gridmap, path: str | Path, ledger_filter: LedgerFilter, *, fmt: str | None = None,
                  lang: str = "zh", as_of: datetime | None = None) -> int:
    """Write the ledger to ``path`` (CSV or XLSX, by ``fmt`` or the suffix); return the issue count."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "csv").lower()
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown ledger format {fmt!r}; use csv or xlsx")
    if not path.parent.is_dir():
        raise InvalidInput(f"cannot write {path}: the folder {path.parent} does not exist")
    partial = path.with_name(path.name + ".part")
    try:
        if fmt == "xlsx":
            count = write_ledger_xlsx(gm, ledger_filter, partial, lang=lang, as_of=as_of)
        else:
            chunks = 0
            with open(partial, "w", encoding="utf-8", newline="") as handle:
                for chunk in iter_ledger_csv(gm, ledger_filter, lang=lang, as_of=as_of):
                    handle.write(chunk)
                    chunks += 1
            count = chunks - 1  # the first chunk is the header
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return count


def ledger_filename(fmt: str, ledger_filter: LedgerFilter, today: date | None = None) -> str:
    """A download name such as ``gridmap-ledger-460204001-20250602.xlsx``."""
    today = today or date.today()
    scope = ledger_filter.area or "all"
    return f"gridmap-ledger-{scope}-{today:%Y%m%d}.{fmt}"


# --- import: mapping ---------------------------------------------------------------------------

#: Fields a mapping may name besides the intake's columns: restored as given (see module doc).
RESTORED_FIELDS = tuple(
    c.key for c in Issue.__table__.columns if c.key not in _INTAKE_FIELDS and c.key not in _NOT_EXPORTED
    and c.key not in ("cell_code", "community_code", "street_code", "district_code")
)
#: Columns of our export that are recomputed on import (names, re-located codes, derived values).
DERIVED_FIELDS = tuple(c.key for c in ISSUE_COLUMNS if c.derived)
IMPORT_FIELDS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, *RESTORED_FIELDS, HISTORY_COLUMN.key)
#: Mapping target that drops a column.
IGNORE = ("", "-", "ignore")


def builtin_mapping() -> dict[str, str]:
    """Header → field for our own export (Chinese and English headers) and the plain field names."""
    mapping: dict[str, str] = {}
    for column in [*issue_columns(), HISTORY_COLUMN]:
        for header in (column.zh, column.en, column.key):
            mapping.setdefault(_header_key(header), column.key)
    for name in IMPORT_FIELDS:
        mapping.setdefault(_header_key(name), name)
    return mapping


def _header_key(header: Any) -> str:
    return re.sub(r"\s+", " ", str(header if header is not None else "")).strip().casefold()


def load_mapping(path: str | Path) -> dict[str, str]:
    """A column mapping from a JSON object or a two-column CSV (``column,field``; UTF-8 or GBK)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"mapping file {path} not found")
    raw = path.read_bytes()
    if path.suffix.lower() == ".json":
        try:
            mapping = json.loads(decode_text(raw, path, None))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"mapping file {path}: broken JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        if not isinstance(mapping, dict) or not all(isinstance(k, str) for k in mapping):
            raise InvalidInput(f"mapping file {path} must be a JSON object such as "
                               '{"诉求编号": "external_id", "诉求内容": "description"}')
        return {k: ("" if v is None else str(v)) for k, v in mapping.items()}
    if path.suffix.lower() in (".csv", ".txt"):
        rows = [r for r in csv.reader(io.StringIO(decode_text(raw, path, None), newline="")) if any(c.strip() for c in r)]
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["column", "field"]:
            rows = rows[1:]
        mapping = {}
        for number, row in enumerate(rows, start=1):
            if len(row) < 2:
                raise InvalidInput(f"mapping file {path}, row {number}: give two cells, the column and the field")
            mapping[row[0].strip()] = row[1].strip()
        return mapping
    raise InvalidInput(f"mapping file {path}: give a .json or .csv file")


@dataclass(frozen=True)
class ColumnPlan:
    """How the columns of a file map to fields: field by column index, and the header of each field."""

    fields: dict[int, str]
    headers: dict[str, str]  # field -> the file's header for it
    unmapped: dict[int, str]  # index -> header, kept in the issue's ``extra``


def plan_columns(header: Sequence[Any], mapping: Mapping[str, str] | None, *, source: str) -> ColumnPlan:
    """Resolve a file's header against a mapping (then the built-in one); refuse what cannot work."""
    names = [str(h).strip() if h is not None else "" for h in header]
    by_key = {}
    for index, name in enumerate(names):
        if name:
            by_key.setdefault(_header_key(name), index)
    chosen: dict[int, str] = {}
    for their, ours in (mapping or {}).items():
        index = by_key.get(_header_key(their))
        if index is None:
            raise InvalidInput(
                f"the mapping names column {their!r}, which {source} does not have; its columns are: "
                + ", ".join(n for n in names if n),
                details={"column": their},
            )
        target = ours.strip()
        if target.lower() in IGNORE:
            chosen[index] = ""
            continue
        if target not in IMPORT_FIELDS and target not in DERIVED_FIELDS:
            raise InvalidInput(
                f"the mapping sends column {their!r} to {target!r}, which is not a field; use one of "
                + ", ".join(IMPORT_FIELDS) + " (or \"\" to ignore the column)",
                details={"column": their, "field": target},
            )
        chosen[index] = target
    builtin = builtin_mapping()
    for index, name in enumerate(names):
        if index not in chosen and name and _header_key(name) in builtin:
            chosen[index] = builtin[_header_key(name)]
    fields: dict[int, str] = {}
    headers: dict[str, str] = {}
    for index, target in sorted(chosen.items()):
        if not target:
            continue
        if target in headers:
            raise InvalidInput(f"{source}: columns {headers[target]!r} and {names[index]!r} both give {target}; "
                               "map one of them to \"\" to ignore it")
        fields[index] = target
        headers[target] = names[index]
    missing = [f for f in REQUIRED_COLUMNS if f not in headers]
    if missing:
        raise InvalidInput(
            f"{source}: no column gives {', '.join(missing)}; map the file's columns to them with --mapping, "
            'e.g. {"诉求内容": "description", "经度": "lon"}; the file\'s columns are: '
            + ", ".join(n for n in names if n),
            details={"missing": missing},
        )
    unmapped = {i: n for i, n in enumerate(names) if n and i not in chosen}
    return ColumnPlan(fields, headers, unmapped)


# --- import: reading files ---------------------------------------------------------------------


@dataclass
class RawTable:
    """A file's main table (header and numbered rows) and, for XLSX, its history sheet."""

    header: list[Any]
    rows: list[tuple[int, list[Any]]]
    history: RawTable | None = None
    is_csv: bool = False


def read_table(path: str | Path, *, encoding: str | None = None) -> RawTable:
    """The rows of a CSV (UTF-8, else GB18030/GBK) or XLSX ledger file, with their row numbers."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        reader = csv.reader(io.StringIO(decode_text(path.read_bytes(), path, encoding), newline=""))
        header: list[Any] | None = None
        rows: list[tuple[int, list[Any]]] = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = cells
                continue
            if len(cells) > len(header):
                raise InvalidInput(f"{path}: line {reader.line_num} has {len(cells)} fields, the header {len(header)}")
            rows.append((reader.line_num, cells))
        if header is None:
            raise InvalidInput(f"{path}: the file is empty; the first row must name the columns")
        return RawTable(header, rows, is_csv=True)
    if suffix == ".xlsx":
        return _read_xlsx(path)
    raise InvalidInput(f"{path}: unknown file type {suffix!r}; give a .csv or .xlsx file")


def _read_xlsx(path: Path) -> RawTable:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken workbooks
        raise InvalidInput(f"{path}: not a readable XLSX workbook ({exc.__class__.__name__}); "
                           "save it again from Excel/WPS as .xlsx") from None
    try:
        sheets = {sheet.title: sheet for sheet in workbook.worksheets}
        tables = []
        for sheet in [workbook.worksheets[0]] + [sheets[n] for n in HISTORY_SHEET.values() if n in sheets][:1]:
            values = sheet.iter_rows(values_only=True)
            header = list(next(values, None) or [])
            rows = [(number, list(row)) for number, row in enumerate(values, start=2)
                    if any(v is not None and str(v).strip() for v in row)]
            tables.append(RawTable(header, rows))
    finally:
        workbook.close()
    if not any(h is not None and str(h).strip() for h in tables[0].header):
        raise InvalidInput(f"{path}: the first sheet is empty; its first row must name the columns")
    main = tables[0]
    main.history = tables[1] if len(tables) > 1 else None
    return main


# --- import: rows ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerRowError:
    """A row that cannot be imported: its number, the file's column(s) concerned, what is wrong."""

    row: int
    columns: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        where = f", column {' / '.join(self.columns)}" if self.columns else ""
        return f"row {self.row}{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "columns": list(self.columns), "message": self.message}


@dataclass
class LedgerImportReport:
    """What an import did (or, in a dry run, would do)."""

    rows: int
    imported: int = 0
    errors: list[LedgerRowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False
    issue_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "imported": self.imported, "dry_run": self.dry_run,
                "errors": [e.as_dict() for e in self.errors], "warnings": self.warnings}


class _RowProblem(ValueError):
    def __init__(self, field_name: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


def _cell_text(value: Any, unescape: bool) -> Any:
    """A cell as the intake wants it: integral floats from Excel as integers, CSV escapes removed."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        value = value.strip()
        if unescape and len(value) > 1 and value[0] == "'" and value[1:].startswith(_FORMULA_START):
            return value[1:]
    return value


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, float) and math.isnan(value))


def _parse_typed(field_name: str, value: Any, tz: tzinfo) -> Any:
    """The stored value of a restored field from its ledger text (labels and codes both accepted)."""
    if _blank(value):
        return None
    column = Issue.__table__.columns[field_name]
    if field_name in LABELLED:
        code = label_code(str(value), LABELLED[field_name])
        known = STATUSES if LABELLED[field_name] is STATUS_LABELS else tuple(LABELLED[field_name])
        if code not in known:
            raise _RowProblem(field_name, f"unknown {field_name.replace('_', ' ')} {value!r}; use one of {', '.join(known)}")
        return code
    if isinstance(column.type, UTCDateTime):
        try:
            return parse_datetime(value, tz)
        except ValueError as exc:
            raise _RowProblem(field_name, f"{field_name} {exc}") from None
    if isinstance(column.type, Integer):
        try:
            number = float(str(value).strip())
        except ValueError:
            number = math.nan
        if not number.is_integer() or number < 0:
            raise _RowProblem(field_name, f"{field_name} must be a whole number ≥ 0, got {value!r}")
        return int(number)
    if isinstance(column.type, Float):
        try:
            number = float(str(value).strip())
        except ValueError:
            raise _RowProblem(field_name, f"{field_name} {value!r} is not a number") from None
        return number
    if isinstance(column.type, JSON):
        try:
            return json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError as exc:
            raise _RowProblem(field_name, f"{field_name} is not valid JSON ({exc.msg} at character {exc.pos})") from None
    return str(value).strip()


def _parse_transition(entry: Mapping[str, Any], tz: tzinfo) -> dict[str, Any]:
    """One transition from a history entry (labels or codes; times local unless they carry an offset)."""
    fields = _transition_fields()
    transition: dict[str, Any] = {}
    for key in fields:
        value = entry.get(key)
        if key == "at":
            try:
                transition[key] = parse_datetime(value if not _blank(value) else "", tz)
            except ValueError as exc:
                raise ValueError(f"time {exc}") from None
        elif key in ("from_status", "to_status"):
            code = None if _blank(value) else label_code(str(value), STATUS_LABELS)
            if code is not None and code not in STATUSES:
                raise ValueError(f"unknown status {value!r}")
            if code is None and key == "to_status":
                raise ValueError("the new status is empty")
            transition[key] = code
        elif key == "action":
            if _blank(value):
                raise ValueError("the action is empty")
            transition[key] = label_code(str(value), ACTION_LABELS)
        elif key == "actor":
            transition[key] = str(value).strip() if not _blank(value) else ""
            if not transition[key]:
                raise ValueError("the actor is empty")
        elif key == "comment":
            transition[key] = None if _blank(value) else str(value)
        else:
            column = IssueTransition.__table__.columns[key]
            if _blank(value):
                transition[key] = None
            elif isinstance(column.type, JSON) and isinstance(value, str):
                try:
                    transition[key] = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{key} is not valid JSON ({exc.msg})") from None
            else:
                transition[key] = value
    return transition


def _check_history(history: list[dict[str, Any]], status: str | None) -> None:
    """Refuse a history whose steps do not chain (each from the status the one before reached)."""
    if not history:
        raise ValueError("the history is empty")
    for number, (before, after) in enumerate(zip(history, history[1:]), start=2):
        if after["from_status"] != before["to_status"]:
            raise ValueError(f"transition {number} starts from {after['from_status']} but the one before "
                             f"ended in {before['to_status']}")
    if status is not None and history[-1]["to_status"] != status:
        raise ValueError(f"the last transition ends in {history[-1]['to_status']} but the status is {status}")


def _history_by_issue(table: RawTable | None, source: str) -> dict[str, list[tuple[int, dict]]]:
    """History-sheet entries (row number, values) by the issue id they belong to (as text), in order."""
    if table is None:
        return {}
    builtin = {}
    for column in history_columns():
        for header in (column.zh, column.en, column.key):
            builtin.setdefault(_header_key(header), column.key)
    index = {builtin[_header_key(h)]: i for i, h in enumerate(table.header) if _header_key(h) in builtin}
    if "issue_id" not in index:
        raise InvalidInput(f"{source}: the history sheet has no 案件编号 (issue_id) column")
    found: dict[str, list[tuple[int, int, dict]]] = {}
    for number, cells in table.rows:
        entry = {key: cells[i] if i < len(cells) else None for key, i in index.items()}
        issue = _cell_text(entry.get("issue_id"), False)
        seq = entry.get("seq")
        order = int(seq) if isinstance(seq, (int, float)) or (isinstance(seq, str) and seq.strip().isdigit()) else number
        found.setdefault(str(issue).strip(), []).append((order, number, entry))
    return {issue: [(number, entry) for _, number, entry in sorted(rows, key=lambda r: (r[0], r[1]))]
            for issue, rows in found.items()}


_FIELD_WORDS = {f: re.compile(rf"(?<![\w]){re.escape(f)}(?![\w])") for f in IMPORT_FIELDS}


def _fields_named(message: str) -> list[str]:
    """The fields an intake error message is about (its wording names them)."""
    if "outside every grid cell" in message or "out of range" in message or "coordinates" in message:
        return ["lon", "lat"]
    if "categor" in message:
        return ["category"]
    return [f for f, pattern in _FIELD_WORDS.items() if pattern.search(message)][:2]


def import_ledger(
    gm: Gridmap,
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    crs: str | None = None,
    encoding: str | None = None,
    dry_run: bool = False,
    skip_bad_rows: bool = False,
    keep_ids: bool = False,
    actor: str | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> LedgerImportReport:
    """Import a ledger or hotline file in one transaction; see the module docstring for the rules.

    ``on_start(n)`` is called before ``n`` rows are written and ``on_progress(k)`` as they are.
    """
    job = _LedgerImport(gm, Path(path), mapping=mapping, encoding=encoding, keep_ids=keep_ids)
    rows = job.check(crs=crs)
    report = job.report(dry_run=dry_run)
    if (report.errors and not skip_bad_rows) or dry_run or not rows:
        report.imported = len(rows) if dry_run else 0
        return report  # all or nothing: nothing is written
    if on_start:
        on_start(len(rows))
    report.issue_ids = job.write(rows, actor=actor or f"import:{job.path.name}", on_progress=on_progress)
    report.imported = len(report.issue_ids)
    report.warnings = job.warnings
    return report


#: Intake fields whose emptiness an exact restore keeps (the intake would fill in a default).
_EXACT_TEXTS = ("department", "assignee")
#: Restored fields that hold issue ids: set once every row has its new id.
_REFERENCES = ("duplicate_of", "possible_duplicate_of")


@dataclass
class _Row:
    """One data row on its way in."""

    number: int
    record: dict[str, Any]  # what the intake validates and locates
    restored: dict[str, Any]  # fields the ledger restores as given
    history: list[dict[str, Any]] | None  # the explicit history of an exact restore, else None
    exported_cell: str | None  # the cell code the file says, to notice a changed layer set
    prepared: dict[str, Any] | None = None  # the issue row to insert, once the intake took it


class _LedgerImport:
    """One import: the file read and mapped, its rows checked, then written in one transaction."""

    def __init__(self, gm: Gridmap, path: Path, *, mapping: Mapping[str, str] | None, encoding: str | None,
                 keep_ids: bool) -> None:
        self.gm = gm
        self.path = path
        self.keep_ids = keep_ids
        self.tz = ZoneInfo(gm.timezone)
        self.table = read_table(path, encoding=encoding)
        self.plan = plan_columns(self.table.header, mapping, source=path.name)
        self.history_sheet = _history_by_issue(self.table.history, path.name)
        if self.table.history is not None and "id" not in self.plan.headers:
            raise InvalidInput(f"{path.name}: the history sheet needs the issues' 编号 (id) column to attach "
                               "each transition to its issue")
        if keep_ids and "id" not in self.plan.headers:
            raise InvalidInput(f"{path.name}: keeping ids needs an 编号 (id) column")
        self.restored_fields = [f for f in RESTORED_FIELDS if f in self.plan.headers]
        self.problems: dict[int, list[LedgerRowError]] = {}
        self.warnings: list[str] = []
        self.rows: list[_Row] = []
        self.row_of_id: dict[int, int] = {}  # the first row of each id in the file

    def problem(self, number: int, field_names: Iterable[str | None], message: str) -> None:
        columns = tuple(dict.fromkeys(self.plan.headers.get(f, f) for f in field_names if f))
        self.problems.setdefault(number, []).append(LedgerRowError(number, columns, message))

    def report(self, *, dry_run: bool) -> LedgerImportReport:
        errors = sorted((e for found in self.problems.values() for e in found), key=lambda e: e.row)
        return LedgerImportReport(rows=len(self.table.rows), errors=errors, warnings=self.warnings, dry_run=dry_run)

    # --- checking ---------------------------------------------------------------------------

    def check(self, *, crs: str | None) -> list[_Row]:
        """Parse, validate and locate every row; return the good ones (problems are recorded)."""
        self.rows = [self.parse_row(number, cells) for number, cells in self.table.rows]
        ids = self.row_of_id
        orphans = sorted(set(self.history_sheet) - {str(i) for i in ids})
        if orphans:
            self.warnings.append(f"{HISTORY_SHEET['zh']}: rows of issue(s) {', '.join(orphans)}, which the first "
                                 "sheet does not have, were ignored")
        if self.keep_ids and ids:
            with self.gm.db.sessions() as session:
                taken = set(session.scalars(select(Issue.id).where(Issue.id.in_(list(ids)))))
            for issue_id in sorted(taken):
                self.problem(ids[issue_id], ["id"], f"issue {issue_id} already exists in the database; "
                             "import without --keep-ids to give the rows new ids")
        numbers = [row.number for row in self.rows]
        prepared, errors = self.gm.intake.prepare([row.record for row in self.rows], crs=crs, row_numbers=numbers)
        for error in errors:
            self.problem(error.row, _fields_named(error.message), error.message)
        refused = {error.row for error in errors}
        for row, issue in zip((r for r in self.rows if r.number not in refused), prepared, strict=True):
            row.prepared = issue
        good = [row for row in self.rows if row.number not in self.problems]
        for row in good:
            self.complete(row)
        return good

    def parse_row(self, number: int, cells: Sequence[Any]) -> _Row:
        """The intake record and the restored fields of one row; problems are recorded."""
        def cell(index: int) -> Any:
            return _cell_text(cells[index] if index < len(cells) else None, self.table.is_csv)

        values = {name: cell(index) for index, name in self.plan.fields.items()}
        record = {name: value for name, value in values.items() if name in _INTAKE_FIELDS}
        record.update({header: cell(i) for i, header in self.plan.unmapped.items() if not _blank(cell(i))})
        for name in ("status", "source"):
            if not _blank(record.get(name)):
                record[name] = label_code(str(record[name]), LABELLED[name])
        restored: dict[str, Any] = {}
        for name in self.restored_fields:
            try:
                restored[name] = _parse_typed(name, values.get(name), self.tz)
            except _RowProblem as exc:
                self.problem(number, [exc.field], exc.message)
        if restored.get("extra") is not None and not isinstance(restored["extra"], dict):
            self.problem(number, ["extra"], "extra must be a JSON object")
        if restored.get("id") is None and self.keep_ids:
            self.problem(number, ["id"], "the id is empty (needed to keep ids)")
        elif restored.get("id") is not None:
            first = self.row_of_id.setdefault(restored["id"], number)
            if first != number:
                self.problem(number, ["id"], f"id {restored['id']} is also on row {first}")
        history = self.parse_history(number, values, restored.get("id"), record.get("status"))
        if history is not None:
            # An exact restore: status and stage times are taken as exported, not rebuilt by the
            # intake (a reworked or reopened case need not have its stage times in order).
            restored["status"] = record.pop("status", None)
            if restored["status"] not in STATUSES:
                self.problem(number, ["status"], f"unknown status {restored['status']!r}; use one of {', '.join(STATUSES)}")
            for stage in _STAGE_FIELDS:
                try:
                    restored[stage] = _parse_typed(stage, record.pop(stage, None), self.tz)
                except _RowProblem as exc:
                    self.problem(number, [exc.field], exc.message)
            for name in _EXACT_TEXTS:  # empty stays empty (a returned case has no department)
                if name in self.plan.headers:
                    restored[name] = None if _blank(record.get(name)) else str(record[name]).strip()
        return _Row(number, record, restored, history, values.get("cell_code"))

    def parse_history(self, number: int, values: Mapping[str, Any], issue_id: int | None,
                      status: str | None) -> list[dict[str, Any]] | None:
        """The row's explicit history (checked), None without one; a problem is recorded."""
        try:
            history = _row_history(values, self.history_sheet, issue_id, self.tz, self.table)
            if history is not None:
                _check_history(history, status if status in STATUSES else None)
            return history
        except ValueError as exc:
            self.problem(number, ["history"] if self.table.history is None else [], f"history: {exc}")
            return None

    def complete(self, row: _Row) -> None:
        """Put the restored fields into the intake's issue row (every row keeps the same keys)."""
        issue = row.prepared
        exact = row.history is not None
        names = [*self.restored_fields, *((*_STAGE_FIELDS, "status", *(n for n in _EXACT_TEXTS if n in row.restored))
                                          if exact else ())]
        for name in names:
            if name in ("id", *_REFERENCES):
                continue
            value = row.restored.get(name)
            if name == "extra":
                issue["extra"] = {**(value or {}), **issue.get("extra", {})}
            elif value is not None or exact:
                issue[name] = value
            elif name not in issue:
                issue[name] = _column_default(name)
        for name in _REFERENCES:
            if exact and name in issue:
                issue[name] = None  # set from the file once every row has its id
        if self.keep_ids:
            issue["id"] = row.restored["id"]
        if row.exported_cell and row.exported_cell != issue["cell_code"]:
            self.warnings.append(f"row {row.number}: located in cell {issue['cell_code']}, the file says "
                                 f"{row.exported_cell} (has the layer set changed?)")

    # --- writing ----------------------------------------------------------------------------

    def write(self, rows: list[_Row], *, actor: str, on_progress: Callable[[int], None] | None) -> list[int]:
        """Insert the rows and their histories, then the references between them, in one transaction."""
        histories = [row.history for row in rows]
        with self.gm.db.session() as session:
            ids = self.gm.intake.write(session, [row.prepared for row in rows], actor=actor, on_progress=on_progress,
                                       histories=histories if any(h is not None for h in histories) else None)
            new_id = {row.restored.get("id"): issue_id for row, issue_id in zip(rows, ids)}
            for row, issue_id in zip(rows, ids):
                changes = {}
                for name in _REFERENCES:
                    old = row.restored.get(name)
                    target = None if old is None else new_id.get(old)
                    if target is None and old is not None and self.keep_ids and session.get(Issue, old) is not None:
                        target = old
                    if old is not None and target is None:
                        self.warnings.append(f"row {row.number}: {self.plan.headers.get(name, name)} refers to issue "
                                             f"{old}, which is not in the file; left empty")
                    if target is not None or (row.history is not None and name in self.plan.headers):
                        changes[name] = target
                if changes:
                    session.execute(update(Issue).where(Issue.id == issue_id).values(**changes))
            if self.keep_ids and session.bind.dialect.name == "postgresql":
                # Explicit ids do not advance the id sequence; the next new issue must not collide.
                session.execute(text("SELECT setval(pg_get_serial_sequence('issues', 'id'), "
                                     "(SELECT coalesce(max(id), 1) FROM issues))"))
        return ids


def _column_default(name: str) -> Any:
    default = Issue.__table__.columns[name].default
    if default is None or not default.is_scalar:
        return {} if name == "extra" else None
    return default.arg


def _row_history(values: Mapping[str, Any], by_issue: Mapping[str, list[tuple[int, dict]]],
                 issue_id: int | None, tz: tzinfo, table: RawTable) -> list[dict[str, Any]] | None:
    """The row's explicit history: from the CSV JSON column or the XLSX history sheet, else None."""
    if table.history is not None:
        if issue_id is None:
            return None
        entries = by_issue.get(str(issue_id))
        if not entries:
            return None
        history = []
        for number, entry in entries:
            try:
                history.append(_parse_transition(entry, tz))
            except ValueError as exc:
                raise ValueError(f"{HISTORY_SHEET['zh']} row {number}: {exc}") from None
        return history
    raw = values.get(HISTORY_COLUMN.key)
    if _blank(raw):
        return None
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError("must be a JSON array of transitions")
    history = []
    for number, entry in enumerate(entries, start=1):
        try:
            history.append(_parse_transition(entry, tz))
        except ValueError as exc:
            raise ValueError(f"transition {number}: {exc}") from None
    return history
