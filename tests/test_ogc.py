"""OGC API – Features Part 1 (Core) contract under /ogc, written from the standard's requirements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from openapi_spec_validator import validate

from gridmap.storage.models import Issue
from helpers import cell_point

GEOJSON = "application/geo+json"
FIRST_CELL = "460204001001001"
OTHER_CELL = "460204101001001"


def get(client, path: str, **kwargs):
    with client.get(path, **kwargs) as response:
        response.get_data()
        return response


@pytest.fixture
def issues(gm, mini_geodata) -> list[int]:
    """Three issues: open garbage in the first cell, closed parking in another, an old one."""
    now = datetime.now(UTC)
    records = []
    for cell, category, days, status in ((FIRST_CELL, "E0102", 1, None), (OTHER_CELL, "E0505", 2, "closed"),
                                         (FIRST_CELL, "E0102", 400, None)):
        lon, lat = cell_point(mini_geodata, cell)
        record = {"category": category, "description": "测试", "lon": lon, "lat": lat,
                  "reported_at": now - timedelta(days=days), "reporter_name": "李四", "reporter_phone": "13900000000",
                  "assignee": "王五"}
        if status:
            record.update(status=status, closed_at=now - timedelta(days=days - 1))
        records.append(record)
    report = gm.intake.import_records(gm.db, records)
    assert not report.errors
    return report.issue_ids


def test_landing_page_links_and_formats(client):
    for accept in ("*/*", "application/json"):
        response = get(client, "/ogc/", headers={"Accept": accept})
        assert response.status_code == 200 and response.content_type == "application/json"
        links = {link["rel"]: link for link in response.json["links"]}
        assert {"self", "service-desc", "conformance", "data"} <= set(links)
        assert all(link["href"].startswith("http://localhost/ogc") for link in links.values())  # absolute
        assert links["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    html = get(client, "/ogc/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert html.content_type.startswith("text/html") and "数据集" in html.data.decode()  # zh-CN by default
    assert get(client, "/ogc/?f=html").content_type.startswith("text/html")


def test_conformance_declares_core_and_geojson(client):
    conforms = get(client, "/ogc/conformance").json["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conforms
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conforms


def test_service_desc_is_a_valid_openapi_document_declaring_the_issue_filters(client):
    response = get(client, "/ogc/api")
    assert response.content_type == "application/vnd.oai.openapi+json;version=3.0"
    document = response.json
    validate(document)
    assert document["servers"] == [{"url": "http://localhost/ogc"}]
    parameters = {p["name"] for p in document["paths"]["/collections/issues/items"]["get"]["parameters"]}
    assert {"bbox", "datetime", "limit", "offset", "status", "category"} <= parameters
    assert "/collections/cells/items/{featureId}" in document["paths"]


def test_collections_with_extents(client, issues):
    body = get(client, "/ogc/collections").json
    by_id = {c["id"]: c for c in body["collections"]}
    assert list(by_id) == ["districts", "streets", "communities", "cells", "issues"]
    for collection in by_id.values():
        (bbox,) = collection["extent"]["spatial"]["bbox"]
        assert len(bbox) == 4 and bbox[0] < bbox[2] and bbox[1] < bbox[3]
        assert {link["rel"] for link in collection["links"]} >= {"self", "items"}
    (interval,) = by_id["issues"]["extent"]["temporal"]["interval"]
    assert interval[0] < interval[1] and interval[1].endswith("Z")
    assert get(client, "/ogc/collections/cells").json["id"] == "cells"


def test_cells_carry_issue_counts_and_coverage(client, issues):
    response = get(client, f"/ogc/collections/cells/items/{FIRST_CELL}")
    assert response.status_code == 200 and response.content_type == GEOJSON
    properties = response.json["properties"]
    assert properties["code"] == FIRST_CELL
    assert (properties["issues_total"], properties["issues_open"]) == (2, 2)
    assert {"households", "visit_coverage", "patrol_coverage", "stale"} <= set(properties)
    assert {link["rel"] for link in response.json["links"]} == {"self", "collection"}


def test_items_page_with_next_links_and_counts(client, gm):
    page = get(client, "/ogc/collections/cells/items?limit=5")
    assert page.content_type == GEOJSON
    body = page.json
    total = len(gm.areas.layers.cells)
    assert (body["numberMatched"], body["numberReturned"], len(body["features"])) == (total, 5, 5)
    next_link = next(link for link in body["links"] if link["rel"] == "next")
    assert (
        next_link["href"].startswith("http://localhost/ogc/collections/cells/items?")
        and "offset=5" in next_link["href"]
    )
    second = get(client, next_link["href"].removeprefix("http://localhost")).json
    assert second["features"][0]["id"] != body["features"][0]["id"]
    last = get(client, f"/ogc/collections/cells/items?limit=5&offset={total - 2}").json
    assert last["numberReturned"] == 2 and "next" not in {link["rel"] for link in last["links"]}
    assert get(client, "/ogc/collections/cells/items").json["numberReturned"] == 10  # the default limit


def test_bbox_selects_intersecting_features(client, mini_geodata):
    lon, lat = cell_point(mini_geodata, FIRST_CELL)
    body = get(client, f"/ogc/collections/cells/items?bbox={lon - 1e-5},{lat - 1e-5},{lon + 1e-5},{lat + 1e-5}").json
    assert [f["id"] for f in body["features"]] == [FIRST_CELL]
    streets = get(client, f"/ogc/collections/streets/items?bbox={lon},{lat},{lon + 1e-5},{lat + 1e-5}").json
    assert [f["id"] for f in streets["features"]] == ["460204001"]


def test_issue_items_filter_and_hide_personal_data(client, issues, mini_geodata):
    recent, closed, old = (str(i) for i in issues)
    body = get(client, "/ogc/collections/issues/items?limit=100").json
    assert body["numberMatched"] == 3 and {f["geometry"]["type"] for f in body["features"]} == {"Point"}
    text = str(body)
    assert "李四" not in text and "13900000000" not in text and "王五" not in text
    def found(query: str) -> list[str]:
        return sorted(str(f["id"]) for f in get(client, f"/ogc/collections/issues/items?{query}").json["features"])
    assert found("status=open") == sorted([recent, old])
    assert found("status=closed") == [closed]
    assert found("category=E05") == [closed]
    since = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert found(f"datetime={since}/..") == sorted([recent, closed])
    assert found(f"datetime=../{since}") == [old]
    lon, lat = cell_point(mini_geodata, OTHER_CELL)
    assert found(f"bbox={lon - 1e-4},{lat - 1e-4},{lon + 1e-4},{lat + 1e-4}") == [closed]
    feature = get(client, f"/ogc/collections/issues/items/{recent}")
    assert feature.content_type == GEOJSON and feature.json["id"] == int(recent)


@pytest.mark.parametrize("path", [
    "/ogc/collections/rivers",  # no such collection
    "/ogc/collections/rivers/items",  # no such collection's items
    "/ogc/collections/cells/items/999",  # no such cell
    "/ogc/collections/issues/items/999",  # no such issue
    "/ogc/collections/issues/items/abc",  # not an issue id
    "/ogc/collections/issues/items/99999999999",  # beyond any id the database can hold
    "/ogc/nothing",  # no such resource
])
def test_not_found(client, path):
    response = get(client, path)
    assert response.status_code == 404
    assert response.json["code"] == "not_found" and response.json["description"]


@pytest.mark.parametrize("query, message", [
    ("limit=0", "limit"),  # below the minimum
    ("limit=10001", "limit"),  # above the maximum
    ("offset=-1", "offset"),  # negative
    ("bbox=1,2,3", "bbox"),  # three numbers
    ("bbox=3,0,1,1", "bbox"),  # minx > maxx
    ("datetime=yesterday", "datetime"),  # not RFC 3339
    ("datetime=2026-06-01T00:00:00", "time zone"),  # no time zone
    ("datetime=../..", "both ends open"),  # no end at all
    ("colour=red", "unknown parameter"),  # an unknown parameter is refused, as the standard asks
    ("status=pending", "unknown status"),  # an unknown status
    ("category=X9", "X9"),  # an unknown category
])
def test_bad_parameters_are_400(client, query, message):
    response = get(client, f"/ogc/collections/issues/items?{query}")
    assert response.status_code == 400
    assert message in response.json["description"]


def test_area_collections_refuse_issue_filters(client):
    response = get(client, "/ogc/collections/cells/items?status=open")
    assert response.status_code == 400 and "unknown parameter" in response.json["description"]


def test_empty_database_has_an_issue_extent_from_the_district(client):
    collection = get(client, "/ogc/collections/issues").json
    assert collection["extent"]["temporal"]["interval"] == [[None, None]]
    assert get(client, "/ogc/collections/issues/items").json["numberMatched"] == 0


def test_issue_ids_are_stable_after_changes(client, gm, issues):
    with gm.db.session() as session:
        session.get(Issue, issues[0]).status = "registered"
    assert get(client, f"/ogc/collections/issues/items/{issues[0]}").json["properties"]["status"] == "registered"
