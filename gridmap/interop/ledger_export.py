"""Ledger export: issues with their full history as CSV or XLSX (the format: :mod:`gridmap.interop.ledger_format`).

Times are local (the service's time zone) and kept to the second; XLSX cells are real Excel
date-times.  A CSV cell that a spreadsheet would read as a formula gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gridmap.errors import InvalidInput
from gridmap.interop.ledger_format import (
    FORMATS,
    FORMULA_START,
    HISTORY_COLUMN,
    HISTORY_SHEET,
    LABELLED,
    MAIN_SHEET,
    YES_NO,
    Column,
    LedgerFilter,
    LedgerParts,
    history_columns,
    issue_columns,
    parse_lang,
    transition_fields,
)
from gridmap.issues.states import CLOCK_STOPPED_STATUSES, CLOSED_STATUSES, OPEN_STATUSES
from gridmap.security.access import mask_name, mask_phone
from gridmap.storage.models import Area, Issue, UTCDateTime

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


#: Personal columns and how they are masked for roles without personal:read.
MASKED_COLUMNS = {"reporter_name": mask_name, "reporter_phone": mask_phone}


class _Exporter:
    """Turns issues into ledger rows of typed values (datetimes local and naive, labels applied)."""

    def __init__(
        self, gm: LedgerParts, session: Session, lang: str, as_of: datetime | None, *, personal: bool = True
    ) -> None:
        self.gm = gm
        self.personal = personal
        self.lang = parse_lang(lang)
        self.tz = ZoneInfo(gm.timezone)
        self.as_of = as_of or datetime.now(UTC)
        self.area_names = dict(session.execute(select(Area.code, Area.name)).all())
        self.columns = issue_columns()
        self.history_columns = history_columns()
        self.datetime_keys = {
            c.key for c in Issue.__table__.columns if isinstance(c.type, UTCDateTime)
        } | {"started_at"}

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
            for key in transition_fields():
                value = getattr(transition, key)
                if key == "at":
                    value = transition.at.astimezone(self.tz).replace(microsecond=0).isoformat()
                entry[key] = value
            entries.append(entry)
        return json.dumps(entries, ensure_ascii=False)


#: Issues read per batch by the ledger exports (with the transitions of that batch only).
LEDGER_BATCH = 500


def _issues(session: Session, ledger_filter: LedgerFilter, batch: int = LEDGER_BATCH) -> Iterator[Issue]:
    """The filtered issues with their transitions, by id, loaded a batch at a time (keyset: after the last id).

    Each batch is dropped from the session before the next is read, so memory stays flat in the
    number of issues.
    """
    if batch < 1:
        raise InvalidInput(f"the export batch size must be at least 1, got {batch}")
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




def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_START) else value
    return str(value)


def iter_ledger_csv(gm: LedgerParts, ledger_filter: LedgerFilter, *, lang: str = "zh",
                    as_of: datetime | None = None, batch_size: int = LEDGER_BATCH) -> Iterator[str]:
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
            for issue in _issues(session, ledger_filter, batch_size):
                buffer.seek(0)
                buffer.truncate()
                writer.writerow([_csv_text(v) for v in exporter.issue_row(issue)] + [exporter.history_json(issue)])
                yield buffer.getvalue()

    return chunks()


def write_ledger_xlsx(gm: LedgerParts, ledger_filter: LedgerFilter, out: BinaryIO | str | Path, *,
                      lang: str = "zh", as_of: datetime | None = None, batch_size: int = LEDGER_BATCH) -> int:
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
        for issue in _issues(session, ledger_filter, batch_size):
            main.append(cells(main, exporter.issue_row(issue)))
            for row in exporter.history_rows(issue):
                history.append(cells(history, row))
                transitions += 1
            count += 1
        main.auto_filter.ref = f"A1:{get_column_letter(len(exporter.columns))}{count + 1}"
        history.auto_filter.ref = f"A1:{get_column_letter(len(exporter.history_columns))}{transitions + 1}"
    workbook.save(out)
    return count


def export_ledger(gm: LedgerParts, path: str | Path, ledger_filter: LedgerFilter, *, fmt: str | None = None,
                  lang: str = "zh", as_of: datetime | None = None, batch_size: int = LEDGER_BATCH) -> int:
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
            count = write_ledger_xlsx(gm, ledger_filter, partial, lang=lang, as_of=as_of, batch_size=batch_size)
        else:
            chunks = 0
            with open(partial, "w", encoding="utf-8", newline="") as handle:
                for chunk in iter_ledger_csv(gm, ledger_filter, lang=lang, as_of=as_of, batch_size=batch_size):
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


