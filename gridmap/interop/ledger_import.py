"""Ledger import: a ledger or hotline file (CSV in UTF-8 or GBK/GB18030, or XLSX) into issues.

A column mapping (their header → our field) names what each column holds; without one, the
headers of our own export (Chinese or English) and the field names themselves are recognised,
so an export re-imports with no mapping file.  Rows go through the intake's per-row steps and
its write step (:class:`gridmap.issues.intake.Intake`, scope check included: a row outside the
caller's areas refuses the whole import); a row that carries a history (our export) is restored
exactly — status, stage times, deadline, counters and every transition as exported.  The import
is one transaction: any bad row and nothing is written, unless ``skip_bad_rows``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Float, Integer, select, text, update

from gridmap.errors import GridmapError, InvalidInput
from gridmap.interop.ledger_files import RawTable, header_key, plan_columns, read_table
from gridmap.interop.ledger_format import (
    ACTION_LABELS,
    FORMULA_START,
    HISTORY_COLUMN,
    HISTORY_SHEET,
    INTAKE_FIELDS,
    LABELLED,
    RESTORED_FIELDS,
    STAGE_FIELDS,
    STATUS_LABELS,
    LedgerParts,
    history_columns,
    label_code,
    transition_fields,
)
from gridmap.issues.intake import parse_datetime
from gridmap.issues.states import STATUSES
from gridmap.security.access import UNLIMITED, AccessScope
from gridmap.storage.models import Issue, IssueTransition, UTCDateTime

# --- rows ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerRowError:
    """A row that cannot be imported: its number, the file's column(s) concerned, what is wrong, its error type."""

    row: int
    columns: tuple[str, ...]
    message: str
    error: type[GridmapError] = InvalidInput

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
        if unescape and len(value) > 1 and value[0] == "'" and value[1:].startswith(FORMULA_START):
            return value[1:]
    return value


def _blank(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    )


def _parse_typed(field_name: str, value: Any, tz: tzinfo) -> Any:
    """The stored value of a restored field from its ledger text (labels and codes both accepted)."""
    if _blank(value):
        return None
    column = Issue.__table__.columns[field_name]
    if field_name in LABELLED:
        code = label_code(str(value), LABELLED[field_name])
        known = STATUSES if LABELLED[field_name] is STATUS_LABELS else tuple(LABELLED[field_name])
        if code not in known:
            raise _RowProblem(
                field_name, f"unknown {field_name.replace('_', ' ')} {value!r}; use one of {', '.join(known)}"
            )
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
            raise _RowProblem(
                field_name, f"{field_name} is not valid JSON ({exc.msg} at character {exc.pos})"
            ) from None
    return str(value).strip()


def _parse_transition(entry: Mapping[str, Any], tz: tzinfo) -> dict[str, Any]:
    """One transition from a history entry (labels or codes; times local unless they carry an offset)."""
    fields = transition_fields()
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
            builtin.setdefault(header_key(header), column.key)
    index = {builtin[header_key(h)]: i for i, h in enumerate(table.header) if header_key(h) in builtin}
    if "issue_id" not in index:
        raise InvalidInput(f"{source}: the history sheet has no 案件编号 (issue_id) column")
    found: dict[str, list[tuple[int, int, dict]]] = {}
    for number, cells in table.rows:
        entry = {key: cells[i] if i < len(cells) else None for key, i in index.items()}
        issue = _cell_text(entry.get("issue_id"), False)
        seq = entry.get("seq")
        numeric = isinstance(seq, (int, float)) or (isinstance(seq, str) and seq.strip().isdigit())
        order = int(seq) if numeric else number
        found.setdefault(str(issue).strip(), []).append((order, number, entry))
    return {issue: [(number, entry) for _, number, entry in sorted(rows, key=lambda r: (r[0], r[1]))]
            for issue, rows in found.items()}


def import_ledger(
    gm: LedgerParts,
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    crs: str | None = None,
    encoding: str | None = None,
    dry_run: bool = False,
    skip_bad_rows: bool = False,
    keep_ids: bool = False,
    actor: str | None = None,
    access: AccessScope = UNLIMITED,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> LedgerImportReport:
    """Import a ledger or hotline file in one transaction; see the module docstring for the rules.

    ``on_start(n)`` is called before ``n`` rows are written and ``on_progress(k)`` as they are. A row
    outside ``access`` refuses the whole import (OutOfScope), as every batch intake does.
    """
    job = _LedgerImport(gm, Path(path), mapping=mapping, encoding=encoding, keep_ids=keep_ids, access=access)
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

    def __init__(self, gm: LedgerParts, path: Path, *, mapping: Mapping[str, str] | None, encoding: str | None,
                 keep_ids: bool, access: AccessScope = UNLIMITED) -> None:
        self.gm = gm
        self.access = access
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

    def problem(self, number: int, field_names: Iterable[str | None], message: str,
                error: type[GridmapError] = InvalidInput) -> None:
        columns = tuple(dict.fromkeys(self.plan.headers.get(f, f) for f in field_names if f))
        self.problems.setdefault(number, []).append(LedgerRowError(number, columns, message, error))

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
        prepared, errors = self.gm.intake.check_batch([row.record for row in self.rows], crs=crs, row_numbers=numbers,
                                                      access=self.access, default_source="import")
        for error in errors:
            self.problem(error.row, error.fields, error.message, error.error)
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
        record = {name: value for name, value in values.items() if name in INTAKE_FIELDS}
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
                self.problem(
                    number, ["status"], f"unknown status {restored['status']!r}; use one of {', '.join(STATUSES)}"
                )
            for stage in STAGE_FIELDS:
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
        names = [*self.restored_fields, *((*STAGE_FIELDS, "status", *(n for n in _EXACT_TEXTS if n in row.restored))
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
