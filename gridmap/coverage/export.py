"""The coverage workbook: coverage per district, street, community and cell as XLSX (a sheet per level)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from gridmap.coverage.metrics import DEFAULT_MIN_PATROL_MINUTES, DEFAULT_STALE_DAYS, area_coverage, check_period
from gridmap.security.access import AccessScope

EXPORT_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "cells": (
        ("code", "网格编码"), ("name", "名称"), ("households", "户数"), ("visited", "已走访户数"),
        ("visit_coverage", "入户走访率"), ("overdue_households", "逾期未走访户数"), ("patrol_days", "巡查天数"),
        ("days", "天数"), ("patrol_coverage", "巡查覆盖率"), ("last_patrol", "最近巡查日期"),
        ("days_since_patrol", "距最近巡查天数"), ("stale", "超期未巡查"),
    ),
    "areas": (
        ("code", "编码"), ("name", "名称"), ("cells", "网格数"), ("households", "户数"), ("visited", "已走访户数"),
        ("visit_coverage", "入户走访率"), ("overdue_households", "逾期未走访户数"), ("patrol_days", "已巡查网格·天"),
        ("days", "网格·天"), ("patrol_coverage", "巡查覆盖率"), ("stale_cells", "超期未巡查网格数"),
        ("last_patrol", "最近巡查日期"),
    ),
}
SHEET_NAMES = {"districts": "区", "streets": "街道", "communities": "社区", "cells": "网格"}


def write_coverage_xlsx(
    session: Session,
    out: BinaryIO | str | Path,
    date_from: date,
    date_to: date,
    *,
    access: AccessScope,
    as_of: date | None = None,
    min_patrol_minutes: float = DEFAULT_MIN_PATROL_MINUTES,
    stale_days: int = DEFAULT_STALE_DAYS,
) -> None:
    """Write coverage per district, street, community and cell in ``access`` as an XLSX workbook (a sheet per level)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    as_of = check_period(date_from, date_to, as_of)
    workbook = Workbook(write_only=True)
    bold = Font(bold=True)
    for level in ("districts", "streets", "communities", "cells"):
        rows = area_coverage(session, level, date_from, date_to, access=access, as_of=as_of,
                             min_patrol_minutes=min_patrol_minutes, stale_days=stale_days)
        columns = EXPORT_COLUMNS["cells" if level == "cells" else "areas"]
        sheet = workbook.create_sheet(SHEET_NAMES[level])
        sheet.freeze_panes = "A2"
        for index, (key, _) in enumerate(columns, start=1):
            sheet.column_dimensions[get_column_letter(index)].width = 18 if key in ("code", "name") else 13
        header = []
        for _, label in columns:
            cell = WriteOnlyCell(sheet, value=label)
            cell.font = bold
            header.append(cell)
        sheet.append(header)
        for row in rows:
            cells = []
            for key, _ in columns:
                value = row.get(key)
                if key == "stale":
                    value = "是" if value else "否"
                cell = WriteOnlyCell(sheet, value=value)
                if key.endswith("coverage") and value is not None:
                    cell.number_format = "0.0%"
                elif isinstance(value, str) and value.startswith("="):
                    cell.data_type = "s"  # text that looks like a formula stays text
                cells.append(cell)
            sheet.append(cells)
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
    notes = workbook.create_sheet("说明")
    for line in (
        ("统计期", f"{date_from.isoformat()} 至 {date_to.isoformat()}"),
        ("统计日", as_of.isoformat()),
        ("入户走访率", "统计期内走访过的户数 / 户数（户按统计期末所在网格计）"),
        ("逾期未走访户数",
         "统计日在册、下次走访应在统计日之前完成而未完成的户数（普通户每6个月、重点户每月，以户类别配置为准）"),
        ("巡查覆盖率",
         f"巡查天数 / 天数；某网格某天轨迹累计停留不少于 {min_patrol_minutes:g} 分钟计为巡查；社区及以上按网格·天汇总"),
        ("超期未巡查", f"截至统计日连续 {stale_days} 天未巡查的网格"),
    ):
        notes.append(list(line))
    workbook.save(out)
