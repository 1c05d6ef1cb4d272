"""Coordinate reference systems: parse a user's CRS, convert inputs to WGS84, pick a metric CRS.

Besides any EPSG code, inputs may be ``gcj02`` (AMap/Tencent pickers) or ``bd09`` (Baidu).
Those are not projections pyproj knows: they are obfuscation offsets applied only inside China,
so they are converted here (forward in closed form, inverse by fixed-point iteration to ~1e-9°).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyproj
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info

from gridmap.errors import InvalidInput

WGS84 = "EPSG:4326"
_CHINA_OFFSETS = ("gcj02", "bd09")

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323


@dataclass(frozen=True)
class InputCRS:
    """A parsed input CRS: either an offset system (gcj02/bd09) or a pyproj CRS."""

    name: str  # "gcj02", "bd09" or an authority string like "EPSG:4326"

    @property
    def is_wgs84(self) -> bool:
        return self.name == WGS84

    @property
    def is_geographic(self) -> bool:
        """True when coordinates are lon/lat degrees."""
        return self.name in _CHINA_OFFSETS or _pyproj_crs(self.name).is_geographic


def parse_crs(text: str | None) -> InputCRS:
    """Parse ``gcj02``, ``bd09``, ``wgs84``, ``EPSG:3857`` or ``3857``; raise InvalidInput if unknown."""
    if text is None or str(text).strip() == "":
        return InputCRS(WGS84)
    value = str(text).strip()
    lowered = value.lower().replace("-", "").replace("_", "")
    if lowered in _CHINA_OFFSETS:
        return InputCRS(lowered)
    if lowered in ("wgs84", "4326", "epsg:4326", "crs84", "ogc:crs84"):
        return InputCRS(WGS84)
    if value.isdigit():
        value = f"EPSG:{value}"
    try:
        crs = pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError:
        raise InvalidInput(
            f"unknown CRS {text!r}: give an EPSG code such as EPSG:4326 or EPSG:32649, or gcj02 / bd09"
        ) from None
    authority = crs.to_authority()
    if authority is None:
        raise InvalidInput(f"CRS {text!r} has no EPSG code; give one such as EPSG:32649")
    name = ":".join(authority)
    if name in ("OGC:CRS84", "EPSG:4326"):
        name = WGS84
    return InputCRS(name)


@lru_cache(maxsize=64)
def _pyproj_crs(name: str) -> pyproj.CRS:
    return pyproj.CRS.from_user_input(name)


@lru_cache(maxsize=64)
def _to_wgs84_transformer(name: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(name, WGS84, always_xy=True)


def to_wgs84(x, y, crs: InputCRS | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Convert coordinate arrays in ``crs`` to WGS84 lon/lat arrays (vectorised)."""
    crs = crs if isinstance(crs, InputCRS) else parse_crs(crs)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if crs.name in _CHINA_OFFSETS:
        # Absurd values (1e300) become inf/NaN: refused by range checks.
        with np.errstate(over="ignore", invalid="ignore"):
            return gcj02_to_wgs84(x, y) if crs.name == "gcj02" else gcj02_to_wgs84(*bd09_to_gcj02(x, y))
    if crs.is_wgs84:
        return x.copy(), y.copy()
    lon, lat = _to_wgs84_transformer(crs.name).transform(x, y)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def check_lonlat(lon, lat, *, what: str = "point") -> None:
    """Raise InvalidInput when lon/lat values are not finite degrees in range.

    Values far beyond ±180/±90 are almost always projected metres given as lon/lat, so the
    message says to pass the right CRS.
    """
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    if bad.any():
        raise InvalidInput(f"{what}: coordinates must be numbers (got NaN or infinity)")
    if (np.abs(lon) > 180).any() or (np.abs(lat) > 90).any():
        i = int(np.flatnonzero((np.abs(lon) > 180) | (np.abs(lat) > 90))[0])
        if abs(lon[i]) > 1000 or abs(lat[i]) > 1000:
            raise InvalidInput(
                f"{what}: ({lon[i]:g}, {lat[i]:g}) looks like projected coordinates in metres, "
                "not lon/lat degrees; say which CRS they are in (e.g. --crs EPSG:32649)"
            )
        if abs(lon[i]) <= 90 and abs(lat[i]) <= 180:
            raise InvalidInput(
                f"{what}: ({lon[i]:g}, {lat[i]:g}) is out of range; longitude and latitude look "
                "swapped (give lon first, then lat)"
            )
        raise InvalidInput(f"{what}: ({lon[i]:g}, {lat[i]:g}) is out of range (lon -180..180, lat -90..90)")


def metric_crs_for(lon: float, lat: float) -> pyproj.CRS:
    """The UTM zone CRS (WGS84 datum) containing the given point, for metric work."""
    infos = query_utm_crs_info(
        datum_name="WGS 84",
        area_of_interest=AreaOfInterest(lon, lat, lon, lat),
    )
    if not infos:
        raise InvalidInput(f"no UTM zone covers ({lon:g}, {lat:g})")
    # query_utm_crs_info may list both hemispheres' zones at the equator; prefer the point's.
    wanted = "S" if lat < 0 else "N"
    for info in infos:
        if info.name.endswith(wanted):
            return pyproj.CRS.from_epsg(int(info.code))
    return pyproj.CRS.from_epsg(int(infos[0].code))


# --- GCJ-02 / BD-09 -----------------------------------------------------------------------


def _outside_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    d_lat += common
    d_lon += common
    d_lat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    d_lon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    d_lat += (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    d_lon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * np.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    outside = _outside_china(lon, lat)
    return np.where(outside, 0.0, d_lon), np.where(outside, 0.0, d_lat)


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 → GCJ-02 (identity outside China)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    d_lon, d_lat = _gcj_delta(lon, lat)
    return lon + d_lon, lat + d_lat


def gcj02_to_wgs84(lon, lat, *, tolerance: float = 1e-9, max_iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 → WGS84 by fixed-point iteration (the forward offset has no closed-form inverse)."""
    g_lon = np.asarray(lon, dtype=float)
    g_lat = np.asarray(lat, dtype=float)
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    for _ in range(max_iterations):
        f_lon, f_lat = wgs84_to_gcj02(w_lon, w_lat)
        e_lon, e_lat = f_lon - g_lon, f_lat - g_lat
        w_lon = w_lon - e_lon
        w_lat = w_lat - e_lat
        if np.nanmax(np.abs(np.concatenate([np.ravel(e_lon), np.ravel(e_lat), [0.0]]))) < tolerance:
            break
    return w_lon, w_lat


_X_PI = np.pi * 3000.0 / 180.0


def gcj02_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 → BD-09 (Baidu)."""
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 (Baidu) → GCJ-02."""
    x = np.asarray(lon, dtype=float) - 0.0065
    y = np.asarray(lat, dtype=float) - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)
