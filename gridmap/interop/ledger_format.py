"""The ledger (台账) format: its columns, headers and value labels, and which issues a ledger holds.

One row per issue, every stored field plus readable extras (category and area names, the 处置
time, 是否超期), Chinese column headers and value labels by default (``lang="en"``: English
headers and the stored codes).  The transition history travels with it: in XLSX as a second
sheet "流转记录" ("history"), one row per transition; in CSV as a JSON column "流转记录" holding
the issue's transitions.  Writing is :mod:`gridmap.interop.ledger_export`, reading back
:mod:`gridmap.interop.ledger_import`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session

from gridmap import labels
from gridmap.errors import InvalidInput
from gridmap.issues import states
from gridmap.issues.categories import CategoryTree
from gridmap.issues.intake import OPTIONAL_COLUMNS, STAGES, Intake
from gridmap.issues.query import IssueQuery
from gridmap.issues.record_files import REQUIRED_COLUMNS
from gridmap.security.access import AccessScope
from gridmap.storage.db import Database
from gridmap.storage.models import Area, Issue, IssueTransition


class LedgerParts(Protocol):
    """What export and import need of a configured gridmap (the core façade has it)."""

    @property
    def db(self) -> Database: ...
    @property
    def categories(self) -> CategoryTree: ...
    @property
    def intake(self) -> Intake: ...
    @property
    def timezone(self) -> str: ...


FORMATS = ("csv", "xlsx")
HISTORY_SHEET = {"zh": "流转记录", "en": "history"}
MAIN_SHEET = {"zh": "台账", "en": "ledger"}

# --- value labels (Chinese; English uses the stored codes) -------------------------------------

STATUS_LABELS = states.STATUS_LABELS
SOURCE_LABELS = labels.SOURCE_LABELS
URGENCY_LABELS = {"urgent": "紧急", "high": "高", "normal": "一般", "low": "低"}
TIME_LIMIT_KIND_LABELS = {
    "continuous_hours": "紧急工作时", "working_hours": "工作时", "working_days": "工作日", "calendar_days": "自然日",
}
SLA_STATE_LABELS = {"ok": "正常", "warning": "预警", "overdue": "超期", "paused": "暂停"}
#: The workflow's actions plus the two the intake records (the report itself, a status as imported).
ACTION_LABELS = {"report": "上报", **states.ACTION_LABELS, "import": "导入"}
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
NOT_EXPORTED = {"created_at", "sla_next_at"}
INTAKE_FIELDS = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
STAGE_FIELDS = tuple(stage for stage, _, _ in STAGES)


def issue_columns() -> list[Column]:
    """The ledger's issue columns: the listed ones, then any other Issue column by its name."""
    listed = {column.key for column in ISSUE_COLUMNS}
    more = [Column(c.key, c.key, c.key) for c in Issue.__table__.columns
            if c.key not in listed and c.key not in NOT_EXPORTED]
    columns = [c for c in ISSUE_COLUMNS if c.derived or c.key in Issue.__table__.columns]
    return columns[:-1] + more + columns[-1:]  # extra stays last


def history_columns() -> list[Column]:
    """The history sheet's columns: the listed ones, then any other IssueTransition column."""
    listed = {column.key for column in HISTORY_COLUMNS}
    table = IssueTransition.__table__.columns
    more = [Column(c.key, c.key, c.key) for c in table if c.key not in listed and c.key not in ("id",)]
    return [c for c in HISTORY_COLUMNS if c.key in ("issue_id", "seq") or c.key in table] + more


def transition_fields() -> list[str]:
    """The IssueTransition columns a ledger carries (all but the ids)."""
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
    personal: bool = True  # False: reporter names and phones are masked

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


# --- import fields ----------------------------------------------------------------------------

#: Fields a mapping may name besides the intake's columns: restored as given (see module doc).
RESTORED_FIELDS = tuple(
    c.key for c in Issue.__table__.columns if c.key not in INTAKE_FIELDS and c.key not in NOT_EXPORTED
    and c.key not in ("cell_code", "community_code", "street_code", "district_code")
)
#: Columns of our export that are recomputed on import (names, re-located codes, derived values).
DERIVED_FIELDS = tuple(c.key for c in ISSUE_COLUMNS if c.derived)
IMPORT_FIELDS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, *RESTORED_FIELDS, HISTORY_COLUMN.key)
#: Mapping target that drops a column.
IGNORE = ("", "-", "ignore")
#: Characters that make a spreadsheet read a CSV cell as a formula (CSV injection); a leading
#: apostrophe is added on export and removed on import.  The apostrophe itself is escaped too,
#: so the rule round-trips every text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
