"""Open311 GeoReport v2 contract: every endpoint in JSON and XML, as the specification shows them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from gridmap.interop.open311 import add_api_key, hash_key
from gridmap.storage.interop import ApiKey
from gridmap.storage.models import Issue
from helpers import cell_point

BASE = "/open311/v2"
W3C = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$")
REQUEST_FIELDS = ["service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                  "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
                  "address", "address_id", "zipcode", "lat", "long", "media_url"]
FIRST_CELL = "460204001001001"
OTHER_CELL = "460204001002001"


@pytest.fixture
def key(gm) -> str:
    with gm.db.session() as session:
        return add_api_key(session, "test-app")


def get(client, path: str, **kwargs):
    with client.get(BASE + path, **kwargs) as response:
        response.get_data()
        return response


def post(client, path: str, **kwargs):
    with client.post(BASE + path, **kwargs) as response:
        response.get_data()
        return response


def xml_of(response) -> ET.Element:
    """The parsed XML body, after checking the declaration the spec requires and the absence of namespaces."""
    assert response.content_type == "text/xml; charset=utf-8"
    assert response.data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(response.data)
    assert all("}" not in element.tag for element in root.iter()), "no XML namespace"
    return root


def new_request(client, key: str, mini_geodata, cell: str = FIRST_CELL, **fields):
    lon, lat = cell_point(mini_geodata, cell)
    form = {"api_key": key, "service_code": "E0102", "lat": lat, "long": lon, "description": "路边暴露垃圾"} | fields
    response = post(client, "/requests.json", data=form)
    assert response.status_code == 201, response.data
    return response.json[0]["service_request_id"]


def errors_of(response, fmt: str) -> list[tuple[int, str]]:
    """(code, description) pairs of an error answer in either format."""
    if fmt == "json":
        assert response.content_type == "application/json; charset=utf-8"
        return [(e["code"], e["description"]) for e in response.json]
    root = xml_of(response)
    assert root.tag == "errors"
    return [(int(e.findtext("code")), e.findtext("description")) for e in root.findall("error")]


# --- discovery and services --------------------------------------------------------------------


def test_discovery_names_the_endpoint_in_both_formats(client):
    body = get(client, "/discovery.json").json
    assert set(body) == {"changeset", "contact", "key_service", "endpoints"}
    (endpoint,) = body["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "http://localhost/open311/v2"  # absolute
    assert endpoint["type"] == "production" and endpoint["formats"] == ["text/xml", "application/json"]
    assert W3C.match(body["changeset"])
    root = xml_of(get(client, "/discovery.xml"))
    assert root.tag == "discovery"
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == ["text/xml", "application/json"]
    assert root.findtext("endpoints/endpoint/url") == "http://localhost/open311/v2"


def test_services_are_the_leaf_categories(client, gm):
    services = get(client, "/services.json").json
    leaves = [c.code for c in gm.categories if c.is_leaf]
    assert [s["service_code"] for s in services] == leaves
    garbage = next(s for s in services if s["service_code"] == "E0102")
    assert set(garbage) == {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
    assert garbage["service_name"] == "暴露垃圾" and garbage["group"] == "市容环境"
    assert garbage["metadata"] is False and garbage["type"] == "realtime"
    cover = next(s for s in services if s["service_code"] == "C0101")
    assert cover["metadata"] is True  # components take the COMPONENT_ID attribute
    root = xml_of(get(client, "/services.xml"))
    assert root.tag == "services"
    assert [s.findtext("service_code") for s in root.findall("service")] == leaves
    xml_cover = next(s for s in root.findall("service") if s.findtext("service_code") == "C0101")
    assert xml_cover.findtext("metadata") == "true"  # booleans as the spec writes them


def test_service_definition_lists_the_attributes(client):
    body = get(client, "/services/C0101.json").json
    assert body["service_code"] == "C0101"
    (attribute,) = body["attributes"]
    assert set(attribute) == {"variable", "code", "datatype", "required", "datatype_description", "order",
                              "description", "values"}
    assert (attribute["code"], attribute["datatype"], attribute["required"]) == ("COMPONENT_ID", "string", False)
    root = xml_of(get(client, "/services/C0101.xml"))
    assert root.tag == "service_definition"
    assert root.findtext("attributes/attribute/code") == "COMPONENT_ID"
    assert get(client, "/services/E0102.json").json == {"service_code": "E0102", "attributes": []}


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("code", [
    "X9999",  # no such category
    "E01",  # a class, not a service
])
def test_unknown_service_definition_is_404_in_the_requested_format(client, fmt, code):
    response = get(client, f"/services/{code}.{fmt}")
    assert response.status_code == 404
    ((status, description),) = errors_of(response, fmt)
    assert status == 404 and code in description


# --- POST requests -------------------------------------------------------------------------------


def test_post_goes_through_the_intake_and_answers_id_token_and_notice(client, gm, key, mini_geodata):
    lon, lat = cell_point(mini_geodata, FIRST_CELL)
    response = post(client, "/requests.xml", data={
        "api_key": key, "service_code": "C0101", "lat": lat, "long": lon, "description": "井盖缺失",
        "attribute[COMPONENT_ID]": "4602040101000001", "first_name": "张", "last_name": "三",
        "phone": "13800000000", "email": "z@example.org", "media_url": "http://photos.example/1.jpg",
        "address_string": "海坡路 1 号"})
    assert response.status_code == 201
    root = xml_of(response)
    assert root.tag == "service_requests"
    (item,) = root.findall("request")
    assert [child.tag for child in item] == ["service_request_id", "token", "service_notice", "account_id"]
    assert "处理时限" in item.findtext("service_notice")
    with gm.db.sessions() as session:
        issue = session.get(Issue, int(item.findtext("service_request_id")))
        assert (issue.source, issue.cell_code, issue.category) == ("open311", FIRST_CELL, "C0101")
        assert issue.deadline is not None and issue.department  # deadline set and routed
        assert issue.reporter_name == "张 三" and issue.reporter_phone == "13800000000"
        assert issue.extra == {"attribute_component_id": "4602040101000001"}
        assert issue.photos == ["http://photos.example/1.jpg"] and issue.address == "海坡路 1 号"
        assert issue.transitions[0].actor == "open311:test-app"


def test_post_accepts_multipart_and_the_key_in_the_query(client, key, mini_geodata):
    lon, lat = cell_point(mini_geodata, FIRST_CELL)
    response = post(client, f"/requests.json?api_key={key}", content_type="multipart/form-data",
                    data={"service_code": "E0102", "lat": str(lat), "long": str(lon), "description": ""})
    assert response.status_code == 201
    (created,) = response.json
    assert set(created) == {"service_request_id", "token", "service_notice", "account_id"}
    # an empty description counts as absent: the service's name stands in
    assert get(client, f"/requests/{created['service_request_id']}.json").json[0]["description"] == "暴露垃圾"


def test_post_flags_a_likely_duplicate_in_the_notice(client, key, mini_geodata):
    first = new_request(client, key, mini_geodata)
    lon, lat = cell_point(mini_geodata, FIRST_CELL)
    response = post(client, "/requests.json", data={"api_key": key, "service_code": "E0102", "lat": lat, "long": lon})
    assert f"可能与诉求 {first} 重复" in response.json[0]["service_notice"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("fields, status, message", [
    ({"api_key": None}, 403, "api_key is required"),  # no key
    ({"api_key": ""}, 403, "api_key is required"),  # an empty key counts as absent
    ({"api_key": "wrong"}, 403, "api_key is not valid"),  # unknown key
    ({"service_code": "X1"}, 400, "service_code"),  # unknown service
    ({"service_code": None}, 400, "service_code"),  # no service
    ({"lat": None, "long": None}, 400, "lat and long"),  # no location at all
    ({"lat": None, "long": None, "address_string": "海坡路 1 号"}, 400,
     "no geocoder"),  # address only: cannot be located
    ({"long": None}, 400, "lat and long must be sent together"),  # half a point
    ({"lat": "north"}, 400, "not a number"),  # not a number
    ({"lat": "95"}, 400, "out of range"),  # beyond the pole
    ({"lat": "18.0", "long": "110.0"}, 400, "outside every grid cell"),  # a point outside every cell: 400, not 422
    ({"attribute[COLOUR]": "red"}, 400, "attribute[COLOUR]"),  # an attribute the service does not take
    ({"description": "长" * 4001}, 400, "4000"),  # too long
])
def test_post_errors_are_the_spec_error_list(client, gm, key, mini_geodata, fmt, fields, status, message):
    lon, lat = cell_point(mini_geodata, FIRST_CELL)
    form = {"api_key": key, "service_code": "E0102", "lat": str(lat), "long": str(lon)} | fields
    response = post(client, f"/requests.{fmt}", data={k: v for k, v in form.items() if v is not None})
    assert response.status_code == status
    ((code, description),) = errors_of(response, fmt)
    assert code == status and message in description
    with gm.db.sessions() as session:
        assert session.scalars(select(Issue)).all() == []  # nothing written


def test_component_id_must_be_16_digits(client, key, mini_geodata):
    lon, lat = cell_point(mini_geodata, FIRST_CELL)
    response = post(client, "/requests.json", data={"api_key": key, "service_code": "C0101", "lat": lat, "long": lon,
                                                      "attribute[COMPONENT_ID]": "12"})
    assert response.status_code == 400 and "16 digits" in response.json[0]["description"]


# --- GET requests ------------------------------------------------------------------------------


def test_a_request_is_an_array_of_one_with_every_field_and_no_personal_data(client, key, mini_geodata):
    request_id = new_request(client, key, mini_geodata, first_name="张", phone="13800000000", email="z@example.org")
    (body,) = get(client, f"/requests/{request_id}.json").json
    assert list(body) == REQUEST_FIELDS
    assert body["status"] == "open" and body["status_notes"] == "待立案"
    assert body["service_code"] == "E0102" and body["service_name"] == "暴露垃圾"
    for name in ("requested_datetime", "updated_datetime", "expected_datetime"):
        assert W3C.match(body[name]), name  # ISO 8601 with a time zone
    lon, lat = cell_point(mini_geodata, FIRST_CELL)
    assert (body["long"], body["lat"]) == pytest.approx((lon, lat))
    root = xml_of(get(client, f"/requests/{request_id}.xml"))
    (item,) = root.findall("request")
    assert root.tag == "service_requests" and [child.tag for child in item] == REQUEST_FIELDS
    assert item.find("long") is not None and item.find("lon") is None
    for response in (get(client, f"/requests/{request_id}.json"), get(client, f"/requests/{request_id}.xml"),
                     get(client, "/requests.json"), get(client, "/requests.xml")):
        for secret in ("张", "13800000000", "example.org", "email", "phone", "first_name"):
            assert secret not in response.data.decode()


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("request_id", [
    "999",  # no such request
    "abc",  # not an id at all
    "99999999999999999999",  # beyond any id the database can hold
])
def test_unknown_request_is_404(client, fmt, request_id):
    response = get(client, f"/requests/{request_id}.{fmt}")
    assert response.status_code == 404
    assert errors_of(response, fmt)[0][0] == 404


def _backdate(gm, request_id: str, days: float, status: str | None = None) -> None:
    with gm.db.session() as session:
        issue = session.get(Issue, int(request_id))
        issue.reported_at = datetime.now(UTC) - timedelta(days=days)
        if status:
            issue.status = status
            issue.closed_at = issue.reported_at + timedelta(hours=1)


def ids(response) -> list[str]:
    return [item["service_request_id"] for item in response.json]


def test_requests_search_follows_the_spec(client, gm, key, mini_geodata):
    recent = new_request(client, key, mini_geodata)
    closed = new_request(client, key, mini_geodata, cell=OTHER_CELL)
    _backdate(gm, closed, 10, status="closed")
    old = new_request(client, key, mini_geodata, service_code="E0505")
    _backdate(gm, old, 120)
    assert ids(get(client, "/requests.json")) == [recent, closed]  # default: the last 90 days, newest first
    assert ids(get(client, "/requests.json?status=open")) == [recent]
    assert ids(get(client, "/requests.json?status=closed")) == [closed]
    assert ids(get(client, "/requests.json?service_code=E0505")) == []  # outside the default window
    start = (datetime.now(UTC) - timedelta(days=130)).isoformat()
    assert ids(get(client, f"/requests.json?service_code=E0505&start_date={start}")) == [old]  # 90 days from start
    end = (datetime.now(UTC) - timedelta(days=5)).isoformat()
    assert ids(get(client, "/requests.json", query_string={"end_date": end})) == [closed]  # 90 days up to end
    # service_request_id overrides every other filter
    query = f"service_request_id={old},{recent}&status=closed&service_code=E0102"
    assert ids(get(client, f"/requests.json?{query}")) == [recent, old]
    # empty parameters count as absent
    empty = "status=&service_code=&start_date=&end_date=&service_request_id="
    assert ids(get(client, f"/requests.json?{empty}")) == [recent, closed]
    # page and page_size
    assert ids(get(client, "/requests.json?page_size=1")) == [recent]
    assert ids(get(client, "/requests.json?page_size=1&page=2")) == [closed]
    root = xml_of(get(client, "/requests.xml?status=closed"))
    assert [r.findtext("service_request_id") for r in root.findall("request")] == [closed]
    assert root.findtext("request/status") == "closed"


def test_requests_answer_at_most_1000(client, gm, key, mini_geodata):
    new_request(client, key, mini_geodata)
    with gm.db.session() as session:
        template = session.scalars(select(Issue)).one()
        row = {c.name: getattr(template, c.key) for c in Issue.__table__.columns if c.name != "id"}
        rows = [dict(row) for _ in range(1000)]
        session.execute(Issue.__table__.insert(), rows)
    assert len(get(client, "/requests.json").json) == 1000
    assert len(get(client, "/requests.json?page=2").json) == 1


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("query, message", [
    ("status=pending", "open or closed"),  # status is open or closed only
    ("service_code=X1", "service_code"),  # unknown service
    ("start_date=yesterday", "start_date"),  # not a date-time
    ("start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z", "90 days"),  # span over 90 days
    ("start_date=2026-06-01T00:00:00Z&end_date=2026-05-01T00:00:00Z", "after end_date"),  # reversed
    ("service_request_id=1,x", "not a request id"),  # not an id
    ("service_request_id=-1", "not a request id"),  # not an id either
    ("page=0", "page"),  # pages start at 1
    ("page_size=1001", "page_size"),  # over the cap
])
def test_requests_search_errors(client, fmt, query, message):
    response = get(client, f"/requests.{fmt}?{query}")
    assert response.status_code == 400
    ((code, description),) = errors_of(response, fmt)
    assert code == 400 and message in description


# --- tokens, unknown paths, keys -----------------------------------------------------------------


def test_token_names_the_request(client, key, mini_geodata):
    lon, lat = cell_point(mini_geodata, FIRST_CELL)
    (created,) = post(client, "/requests.json",
                      data={"api_key": key, "service_code": "E0102", "lat": lat, "long": lon}).json
    assert get(client, f"/tokens/{created['token']}.json").json == [
        {"service_request_id": created["service_request_id"], "token": created["token"]}]
    root = xml_of(get(client, f"/tokens/{created['token']}.xml"))
    assert root.findtext("request/service_request_id") == created["service_request_id"]


@pytest.mark.parametrize("path, fmt", [
    ("/tokens/0123456789abcdef.json", "json"),  # unknown token
    ("/tokens/0123456789abcdef.xml", "xml"),  # unknown token, XML
    ("/services.yaml", "xml"),  # unknown format: XML, the spec's required format
    ("/nothing-here.json", "json"),  # unknown resource
])
def test_not_found_answers(client, path, fmt):
    response = get(client, path)
    assert response.status_code == 404
    assert errors_of(response, fmt)[0][0] == 404


def test_keys_add_prints_the_key_once_and_stores_its_hash(gm, cli_env):
    from gridmap.cli import main

    result = CliRunner().invoke(main, ["keys", "add", "city-app"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    with gm.db.sessions() as session:
        row = session.scalars(select(ApiKey)).one()
    assert row.name == "city-app" and row.key_hash == hash_key(key) and key not in row.key_hash
    again = CliRunner().invoke(main, ["keys", "add", "city-app"])
    assert again.exit_code == 2 and "exists already" in again.output
