"""Property-based run of schemathesis over both OpenAPI documents: no input may cause a server error.

It runs in-process against the Flask app (WSGI), over every operation of /api/v1/openapi.json
and of the OGC API's document /ogc/api, with a bounded number of generated cases per operation
(positive and negative) so the whole run stays well under three minutes.  Every 5xx (or
unhandled exception) is collected with its operation and input, and the test fails listing all of
them.  No operation is excluded and no error is tolerated; inputs that once crashed are kept in
FORMER_SERVER_ERRORS and must stay 4xx.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from conftest import admin_client
from helpers import cell_point

CASES_PER_OPERATION = 40

BIG = 10**20  # an id no database integer column can hold
_DAY_ONE = "from=0001-01-01&to=0001-01-01"
#: Inputs that once caused server errors (found by this run): each must now be a 4xx.
FORMER_SERVER_ERRORS: list[tuple[str, str, dict | None]] = [
    ("GET", f"/api/v1/issues/{BIG}", None),  # id beyond the INTEGER column
    ("GET", f"/api/v1/issues/{BIG}/suggestions", None),
    ("POST", f"/api/v1/issues/{BIG}/transitions", {"action": "register"}),
    ("POST", "/api/v1/issues/assign", {"ids": [BIG], "department": "环卫所"}),
    ("GET", f"/api/v1/coverage/households/{BIG}", None),
    ("POST", f"/api/v1/coverage/households/{BIG}/leave", None),
    ("GET", f"/api/v1/coverage/patrols/{BIG}", None),
    ("GET", f"/api/v1/coverage/visits/{BIG}", None),
    ("GET", "/api/v1/coverage/worklists?as_of=0001-01-08", None),  # date arithmetic before year 1
    *(("GET", f"/api/v1/stats/{level}?{_DAY_ONE}", None) for level in ("cells", "communities", "streets", "districts")),
]


@pytest.fixture
def seeded_app(app, gm, mini_geodata):
    """The app with a few issues so that list, detail and export operations have data."""
    lon, lat = cell_point(mini_geodata, "460204001001001")
    records = [{"category": "E0102", "description": "测试", "lon": lon, "lat": lat,
                "reported_at": datetime.now(UTC)} for _ in range(3)]
    assert not gm.intake.import_records(gm.db, records).errors
    return app


def server_errors(schema) -> list[str]:
    """Run every operation of ``schema``; describe each answer with a 5xx status."""
    found: list[str] = []
    seen: set[tuple[str, str]] = set()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the document has no operations"
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=CASES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case):  # called at once below, inside this iteration
            where = f"{operation.method.upper()} {operation.path} with path={case.path_parameters} query={case.query}"
            try:  # the test app propagates exceptions: an unhandled one is a 500 in production
                response = case.call()
            except Exception as exc:  # noqa: BLE001 - every crash is reported, with its input
                kind, what = type(exc).__name__, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            else:
                if response.status_code < 500:
                    return
                kind = what = f"HTTP {response.status_code}"
            if (operation.path, kind) not in seen:  # the first input per operation and kind of error
                seen.add((operation.path, kind))
                found.append(f"{where} body={_body(case)}: {what}")

        run()
    return found


def _body(case) -> str:
    body = getattr(case, "body", None)
    return "none" if type(body).__name__ == "NotSet" else repr(body)


@pytest.mark.parametrize("document", [
    "/api/v1/openapi.json",  # the JSON API (issues, workflow, coverage, maps, ledger, exports…)
    "/ogc/api",  # the OGC API – Features document (its service-desc)
])
def test_no_input_causes_a_server_error(seeded_app, document):
    schema = schemathesis.openapi.from_wsgi(document, seeded_app)
    errors = server_errors(schema)
    assert not errors, "server errors:\n" + "\n".join(errors)


@pytest.mark.parametrize("method, path, body", FORMER_SERVER_ERRORS, ids=lambda v: str(v)[:60])
def test_inputs_that_once_crashed_are_now_refused_with_a_4xx(seeded_app, method, path, body):
    with admin_client(seeded_app).open(path, method=method, json=body) as response:
        assert 400 <= response.status_code < 500, response.get_data(as_text=True)


@pytest.mark.parametrize("path", [
    f"/ogc/collections/issues/items?offset={BIG}",  # beyond any row: once an OverflowError
    f"/api/v1/issues?offset={BIG}",
    f"/open311/v2/requests.json?page={BIG}",
])
def test_offsets_and_pages_beyond_any_row_are_a_400(seeded_app, path):
    with admin_client(seeded_app).get(path) as response:
        assert response.status_code == 400, response.get_data(as_text=True)
