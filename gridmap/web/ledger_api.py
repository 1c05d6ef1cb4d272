"""Ledger (台账) downloads under /api/v1: ``ledger.csv`` (streamed) and ``ledger.xlsx``."""

from __future__ import annotations

import io

from flask import Blueprint, Response, request, send_file

from gridmap.interop.ledger_export import iter_ledger_csv, ledger_filename, write_ledger_xlsx
from gridmap.interop.ledger_format import LedgerFilter, parse_lang
from gridmap.web.api import core
from gridmap.web.auth import principal, requires, scope

blueprint = Blueprint("ledger_api", __name__)

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def ledger_filter_from_request() -> LedgerFilter:
    """The ledger filters of the query string: area, from, to, status, category, source."""
    gm = core()
    return LedgerFilter.parse(
        area=request.args.get("area"),
        date_from=request.args.get("from"),
        date_to=request.args.get("to"),
        status=request.args.get("status"),
        category=request.args.get("category"),
        source=request.args.get("source"),
        categories=gm.categories,
        timezone_name=gm.timezone,
        access=scope(),
        personal=principal().sees_personal_data,
    )


@blueprint.get("/ledger.csv")
@requires("ledger:export")
def ledger_csv():
    """The ledger as CSV (UTF-8 with BOM), streamed as an attachment."""
    ledger_filter = ledger_filter_from_request()
    lang = parse_lang(request.args.get("lang"))
    chunks = iter_ledger_csv(core(), ledger_filter, lang=lang)  # checks the filters before streaming
    response = Response(chunks, mimetype="text/csv")
    response.headers["Content-Disposition"] = f"attachment; filename={ledger_filename('csv', ledger_filter)}"
    return response


@blueprint.get("/ledger.xlsx")
@requires("ledger:export")
def ledger_xlsx():
    """The ledger as an XLSX workbook (sheets 台账 and 流转记录), as an attachment."""
    ledger_filter = ledger_filter_from_request()
    lang = parse_lang(request.args.get("lang"))
    buffer = io.BytesIO()
    write_ledger_xlsx(core(), ledger_filter, buffer, lang=lang)
    buffer.seek(0)
    return send_file(buffer, mimetype=XLSX_MIMETYPE, as_attachment=True,
                     download_name=ledger_filename("xlsx", ledger_filter))


_FILTER_PARAMETERS = [
    {"name": "area", "in": "query",
     "schema": {"type": "string", "pattern": "^([0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$"},
     "description": "Area code of any level: district (6 digits), street (9), community (12) or cell (15)."},
    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"},
     "description": "First local day of the reporting period (included)."},
    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"},
     "description": "Last local day of the reporting period (included)."},
    {"name": "status", "in": "query", "schema": {"type": "string"},
     "description": "Status code(s) or Chinese label(s), comma-separated, or the groups open / closed."},
    {"name": "category", "in": "query", "schema": {"type": "string"},
     "description": "Category item (E0505) or class (E05) code."},
    {"name": "source", "in": "query", "schema": {"type": "string"},
     "description": "Source(s), comma-separated: patrol, hotline, web, visit, open311, import."},
    {"name": "lang", "in": "query", "schema": {"type": "string", "enum": ["zh", "en"], "default": "zh"},
     "description": "zh: Chinese headers and value labels; en: English headers and the stored codes."},
]
_ERROR = {"$ref": "#/components/responses/BadRequest"}  # defined by gridmap.web.openapi

#: OpenAPI path items of this blueprint, merged into /api/v1/openapi.json.
OPENAPI_PATHS = {
    "/ledger.csv": {
        "get": {
            "tags": ["ledger"],
            "summary": "The ledger (台账) as CSV: one row per issue, its history as a JSON column 流转记录",
            "operationId": "ledgerCsv",
            "parameters": _FILTER_PARAMETERS,
            "responses": {
                "200": {"description": "CSV, UTF-8 with a byte-order mark, as an attachment",
                        "content": {"text/csv": {"schema": {"type": "string"}}}},
                "400": _ERROR,
            },
        }
    },
    "/ledger.xlsx": {
        "get": {
            "tags": ["ledger"],
            "summary": "The ledger (台账) as XLSX: sheet 台账 (one row per issue) and sheet 流转记录 (one row per "
                       "transition)",
            "operationId": "ledgerXlsx",
            "parameters": _FILTER_PARAMETERS,
            "responses": {
                "200": {"description": "An XLSX workbook as an attachment",
                        "content": {XLSX_MIMETYPE: {"schema": {"type": "string", "format": "binary"}}}},
                "400": _ERROR,
            },
        }
    },
}
