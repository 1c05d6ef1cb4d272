"""CRS handling: parsing what users type, GCJ-02/BD-09 conversion, catching wrong coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from gridmap.errors import InvalidInput
from gridmap.geo.crs import (
    bd09_to_gcj02,
    check_lonlat,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    metric_crs_for,
    parse_crs,
    to_wgs84,
    wgs84_to_gcj02,
)


@pytest.mark.parametrize(
    "text, name",
    [
        (None, "EPSG:4326"),  # absent: WGS84
        ("", "EPSG:4326"),  # empty parameter: treated as absent
        ("wgs84", "EPSG:4326"),
        ("EPSG:4490", "EPSG:4490"),  # CGCS2000
        ("32649", "EPSG:32649"),  # a bare EPSG number
        ("GCJ-02", "gcj02"),  # AMap / Tencent
        ("bd09", "bd09"),  # Baidu
    ],
)
def test_parse_crs_accepts_what_users_type(text, name):
    assert parse_crs(text).name == name


def test_unknown_crs_says_what_to_give():
    with pytest.raises(InvalidInput, match="give an EPSG code"):
        parse_crs("not-a-crs")


def test_wgs84_to_gcj02_matches_the_published_reference_point():
    lon, lat = wgs84_to_gcj02(120.0, 40.0)
    assert (round(float(lon), 6), round(float(lat), 6)) == (120.005676, 40.001305)


def test_gcj02_inverse_round_trips_to_a_millimetre():
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(100, 125, 1000), rng.uniform(18, 45, 1000)
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert np.abs(back_lon - lon).max() < 1e-8 and np.abs(back_lat - lat).max() < 1e-8


def test_bd09_round_trips_through_gcj02():
    lon, lat = gcj02_to_bd09(109.5, 18.25)
    back = bd09_to_gcj02(lon, lat)
    assert np.allclose(back, (109.5, 18.25), atol=1e-6)


def test_no_offset_outside_china():
    assert wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)


def test_projected_input_is_converted_with_pyproj():
    lon, lat = to_wgs84([500000.0], [2000000.0], "EPSG:32649")
    assert lon[0] == pytest.approx(111.0, abs=1e-9)
    assert lat[0] == pytest.approx(18.0880, abs=1e-3)


@pytest.mark.parametrize(
    "lon, lat, message",
    [
        (420000.0, 2015000.0, "looks like projected coordinates"),  # UTM metres given as lon/lat
        (18.25, 109.5, "look swapped"),  # lat, lon order
        (200.0, 10.0, "out of range"),
        (float("nan"), 18.0, "must be numbers"),
    ],
)
def test_wrong_coordinates_are_explained(lon, lat, message):
    with pytest.raises(InvalidInput, match=message):
        check_lonlat(lon, lat)


def test_metric_crs_is_the_utm_zone_of_the_point():
    assert metric_crs_for(109.5, 18.3).to_epsg() == 32649
    assert metric_crs_for(-70.6, -33.4).to_epsg() == 32719
