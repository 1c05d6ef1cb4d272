"""GET /api/v1/openapi.json: a valid OpenAPI 3 document covering every /api/v1 endpoint."""

from __future__ import annotations

import re
import sys

import pytest
from flask import Blueprint
from openapi_spec_validator import validate

from gridmap.web.openapi import openapi_document


@pytest.fixture
def document(client):
    with client.get("/api/v1/openapi.json") as response:
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        return response.get_json()


def test_the_document_is_valid_openapi_3(document):
    validate(document)  # raises OpenAPIValidationError with the path of the first problem
    assert document["openapi"].startswith("3.0")
    assert document["servers"] == [{"url": "/api/v1"}]


def test_every_endpoint_of_a_documented_module_is_documented(app, document):
    # A blueprint module that defines OPENAPI_PATHS documents all of its /api/v1 endpoints.
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    opted_in = {name for name, bp in app.blueprints.items() if hasattr(sys.modules[bp.import_name], "OPENAPI_PATHS")}
    assert {"api", "issues_api", "openapi"} <= opted_in
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint.rpartition(".")[0] not in opted_in:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len("/api/v1"):])
        if "{level}" in path:  # the /stats/<any(...)> converter: one documented path per level
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is not in the OpenAPI document"


def test_the_issue_and_stats_paths_are_there(document):
    for path in ("/issues", "/issues/{issue_id}", "/issues/{issue_id}/transitions", "/issues/{issue_id}/suggestions",
                 "/issues/assign", "/stats/cells", "/stats/communities", "/stats/streets", "/stats/districts",
                 "/openapi.json"):
        assert path in document["paths"], path
    assert set(document["paths"]["/issues"]) == {"get", "post"}


def test_a_module_documents_itself_by_defining_openapi_paths(app, monkeypatch):
    # a new blueprint module under /api/v1 with OPENAPI_PATHS is merged without touching openapi.py
    import types

    module = types.ModuleType("gridmap_test_extra_api")
    module.OPENAPI_PATHS = {"/extra": {"get": {"summary": "Extra", "responses": {"200": {"description": "OK"}}}}}
    monkeypatch.setitem(sys.modules, module.__name__, module)
    extra = Blueprint("extra", module.__name__)
    extra.add_url_rule("/extra", "extra", lambda: "")
    app.register_blueprint(extra, url_prefix="/api/v1")
    document = openapi_document(app)
    assert "/extra" in document["paths"]
    validate(document)


def test_a_path_defined_twice_is_an_error(app, monkeypatch):
    import types

    module = types.ModuleType("gridmap_test_clash_api")
    module.OPENAPI_PATHS = {"/issues": {}}
    monkeypatch.setitem(sys.modules, module.__name__, module)
    clash = Blueprint("clash", module.__name__)
    clash.add_url_rule("/clash", "clash", lambda: "")
    app.register_blueprint(clash, url_prefix="/api/v1")
    with pytest.raises(ValueError, match="OpenAPI path /issues is defined twice"):
        openapi_document(app)
