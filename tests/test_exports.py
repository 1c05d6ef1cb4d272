"""GeoJSON exports: every layer of the layer set, and filtered issues without personal data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from helpers import cell_point

FIRST_CELL = "460204001001001"
OTHER_CELL = "460204101001001"


def get(client, path: str):
    with client.get(path) as response:
        response.get_data()
        return response


@pytest.mark.parametrize("layer", ["districts", "streets", "communities", "cells"])
def test_every_layer_exports_as_the_layer_set_holds_it(client, gm, layer):
    response = get(client, f"/api/v1/export/{layer}.geojson")
    assert response.status_code == 200 and response.content_type == "application/geo+json"
    assert f'filename="{layer}.geojson"' in response.headers["Content-Disposition"]
    body = response.json
    assert body["type"] == "FeatureCollection"
    assert [f["id"] for f in body["features"]] == list(gm.areas.layers.level(layer)["code"])


def test_issue_export_takes_the_issue_filters(client, gm, mini_geodata):
    now = datetime.now(UTC)
    records = []
    for cell, category, status in ((FIRST_CELL, "E0102", None), (OTHER_CELL, "E0505", "closed")):
        lon, lat = cell_point(mini_geodata, cell)
        record = {"category": category, "description": "测试", "lon": lon, "lat": lat,
                  "reported_at": now - timedelta(days=1),
                  "reporter_name": "李四", "reporter_phone": "13900000000"}
        if status:
            record.update(status=status, closed_at=now)
        records.append(record)
    first, second = gm.intake.import_records(gm.db, records).issue_ids

    def exported(query: str = "") -> list[int]:
        response = get(client, f"/api/v1/export/issues.geojson{query}")
        assert response.status_code == 200 and response.content_type == "application/geo+json"
        assert "李四" not in response.data.decode() and "13900000000" not in response.data.decode()
        return [f["id"] for f in response.json["features"]]

    assert exported() == [first, second]
    assert exported("?status=open") == [first]
    assert exported("?category=E05") == [second]
    assert exported(f"?area={OTHER_CELL[:9]}") == [second]
    assert exported("?from=2000-01-01&to=2000-01-02") == []
    feature = get(client, "/api/v1/export/issues.geojson?status=open").json["features"][0]
    assert feature["geometry"]["type"] == "Point" and feature["properties"]["cell"] == FIRST_CELL


@pytest.mark.parametrize("path, status", [
    ("/api/v1/export/issues.geojson?status=pending", 400),  # unknown status
    ("/api/v1/export/issues.geojson?area=12", 400),  # not an area code
    ("/api/v1/export/rivers.geojson", 404),  # no such layer
])
def test_export_errors(client, path, status):
    response = get(client, path)
    assert response.status_code == status and response.json["error"]["message"]


def test_exports_are_in_the_openapi_document(client):
    paths = get(client, "/api/v1/openapi.json").json["paths"]
    assert {"/export/{layer}.geojson", "/export/issues.geojson"} <= set(paths)
