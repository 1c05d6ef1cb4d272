"""Request size limits on the production server (waitress): a clear 413 in the endpoint's format, never a reset."""

from __future__ import annotations

import http.client
import json
import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from conftest import make_token, make_user
from gridmap.storage.models import Issue
from helpers import cell_point
from prodserver import production_server

LIMIT = 64 * 1024
# Just over the limit, the app refuses what waitress took; far over it, waitress stops reading and the app answers.
MESSAGE = re.compile(rf"the request body (has \d+ bytes, more|is larger) than the limit of {LIMIT} bytes "
                     r"\(setting max_upload_bytes\); send a smaller file, or split it")


def send(base: str, path: str, body: bytes, headers: dict, *, chunked: bool) -> tuple[int, str, bytes]:
    """POST ``body`` (declared with Content-Length, or chunked in 16 KiB pieces); status, type and body of the
    answer."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        if chunked:
            pieces = (body[i:i + 16384] for i in range(0, len(body), 16384))
            connection.request("POST", path, body=pieces, headers=headers, encode_chunked=True)
        else:
            connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


def issue_count(gm) -> int:
    with gm.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Issue))


@pytest.fixture
def server(cli_env, gm, tmp_path):
    with production_server({**cli_env, "GRIDMAP_MAX_UPLOAD_BYTES": str(LIMIT)}, tmp_path / "serve.log",
                           threads=2) as base:
        yield base


def issue_body(mini_geodata, description: str) -> bytes:
    lon, lat = cell_point(mini_geodata, "460204001001001")
    return json.dumps({"category": "E0505", "description": description, "lon": lon, "lat": lat}).encode()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("size", [LIMIT + 1, 5_000_000], ids=["just-over", "80x-over"])
def test_an_oversized_issue_is_a_json_413_and_nothing_is_written(server, gm, mini_geodata, size, chunked):
    token = make_token(gm, "admin")
    body = issue_body(mini_geodata, "x" * size)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    status, content_type, answer = send(server, "/api/v1/issues", body, headers, chunked=chunked)
    assert (status, content_type) == (413, "application/json")
    error = json.loads(answer)["error"]
    assert error["code"] == "payload_too_large"
    assert MESSAGE.fullmatch(error["message"]), error
    # far over: refused by the server, answered by the app
    assert ("is larger" in error["message"]) == (size > 2 * LIMIT)
    assert issue_count(gm) == 0
    # The server is fine afterwards: a body within the limit is taken, on a new connection.
    status, _type, answer = send(server, "/api/v1/issues", issue_body(mini_geodata, "路灯不亮"), headers,
                                 chunked=chunked)
    assert status == 201, answer
    assert issue_count(gm) == 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("size", [LIMIT + 1, 5_000_000], ids=["just-over", "80x-over"])
def test_an_oversized_open311_request_is_the_spec_error_list(server, gm, mini_geodata, size, chunked):
    lon, lat = cell_point(mini_geodata, "460204001001001")
    form = f"api_key=k&service_code=E0102&lat={lat}&long={lon}&description=".encode() + b"x" * size
    headers = {"Content-Type": "application/x-www-form-urlencoded"}  # anonymous, as citizens' apps post
    status, content_type, answer = send(server, "/open311/v2/requests.json", form, headers, chunked=chunked)
    assert (status, content_type) == (413, "application/json; charset=utf-8")
    ((error),) = json.loads(answer)
    assert error["code"] == 413
    assert MESSAGE.fullmatch(error["description"]), error
    assert ("is larger" in error["description"]) == (size > 2 * LIMIT)
    assert issue_count(gm) == 0


def test_a_body_of_exactly_the_limit_is_taken(server, gm, mini_geodata):
    token = make_token(gm, "admin")
    body = issue_body(mini_geodata, "路灯不亮")
    body += b" " * (LIMIT - len(body))  # JSON allows trailing white space
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    for chunked in (False, True):
        status, _type, answer = send(server, "/api/v1/issues", body, headers, chunked=chunked)
        assert status == 201, answer
    assert issue_count(gm) == 2


@pytest.mark.parametrize("body, status, message", [
    # would exhaust the parser's recursion
    (b"[" * 100_000 + b"]" * 100_000, 400, "the request body is not usable JSON"),
    # deep inside a field
    (b'{"description": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "the request body is not usable JSON"),
    # over a MiB of JSON, though within max_upload_bytes: parsing it could take a hundred times its size
    (b"[" + b"{}," * 400_000 + b"{}]", 413, "more than the 1048576 bytes a JSON object of this API may have"),
])
def test_json_bodies_too_deep_or_too_big_are_refused_not_a_crash(client, gm, body, status, message):
    response = client.post("/api/v1/issues", data=body, content_type="application/json")
    assert response.status_code == status
    assert message in response.json["error"]["message"]
    assert issue_count(gm) == 0


def test_a_refused_body_is_answered_before_any_other_check_of_the_request(app, gm):
    """The body check is the first before_request hook: it answers before login, CSRF and rate limits."""
    from gridmap.ops.server import BODY_TOO_LARGE

    refused = {BODY_TOO_LARGE: True}
    seen: list[str] = []
    app.before_request(lambda: seen.append("late hook"))  # a hook another part of the app adds later
    anonymous = app.test_client()
    # Without it the login check would answer 401 (API) or redirect to the login page (form).
    response = anonymous.post("/api/v1/issues", data=b"", content_type="application/json", environ_overrides=refused)
    assert (response.status_code, response.json["error"]["code"]) == (413, "payload_too_large")
    # A signed-in user's form post with no CSRF token: the token lay in the refused body, so not 403.
    make_user(gm, "王调度", "dispatcher", password="dispatcher passphrase")
    browser = app.test_client()
    with browser.session_transaction() as session:
        session["user"] = "王调度"
    response = browser.post("/coverage/visits/new", data=b"", environ_overrides=refused)
    assert response.status_code == 413
    assert seen == []  # the late hook runs after the body check, never before it
    assert anonymous.post("/login", data=b"", environ_overrides=refused).status_code == 413
    assert seen == []
    assert anonymous.get("/login").status_code == 200 and seen == ["late hook"]
