"""Coordinate reference helpers: WGS84 ⇄ GCJ-02, CGCS2000, the China extent and a metric CRS.

Pure functions over floats / numpy arrays; no I/O. GCJ-02 is China's obfuscated datum used by Amap,
Tencent and other domestic basemaps; it is not a PROJ CRS, so it is computed here (the published
forward formula, inverted by fixed-point iteration to ~1e-7° ≈ 1 cm). CGCS2000 (EPSG:4490) differs
from WGS84 by centimetres, far below the accuracy of the data, so its coordinates are taken as is.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from geo.errors import InvalidInput

CrsName = Literal["wgs84", "cgcs2000", "gcj02"]
CRS_NAMES: tuple[str, ...] = ("wgs84", "cgcs2000", "gcj02")

# Aliases accepted on input, mapped to the short names above.
CRS_ALIASES = {
    "wgs84": "wgs84",
    "epsg:4326": "wgs84",
    "4326": "wgs84",
    "crs84": "wgs84",
    "http://www.opengis.net/def/crs/ogc/1.3/crs84": "wgs84",
    "http://www.opengis.net/def/crs/epsg/0/4326": "wgs84",
    "cgcs2000": "cgcs2000",
    "epsg:4490": "cgcs2000",
    "4490": "cgcs2000",
    "http://www.opengis.net/def/crs/epsg/0/4490": "cgcs2000",
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
}

# Rough bounding box of China's territory (the one the GCJ-02 offset applies in).
CHINA_LON = (73.33, 135.05)
CHINA_LAT = (3.51, 53.56)

_A = 6378245.0
_EE = 0.00669342162296594323

METRIC_EPSG = 32651  # UTM zone 51N: the demo city (Shanghai, 121.5°E); metres.


class CrsError(InvalidInput, ValueError):
    """Unknown CRS name or coordinates that cannot be handled."""

    code = "invalid_coordinates"


def normalize_crs(name: str | None) -> str:
    """Map a user-given CRS name (wgs84, EPSG:4490, a CRS URI, gcj02…) to 'wgs84' | 'cgcs2000' | 'gcj02'."""
    if name is None or name == "":
        return "wgs84"
    key = name.strip().lower()
    if key not in CRS_ALIASES:
        raise CrsError(f"未知坐标系 unknown crs '{name}': use one of wgs84, cgcs2000 (EPSG:4490), gcj02")
    return CRS_ALIASES[key]


def in_china(lon, lat):
    """True where (lon, lat) falls inside the rough China extent (array-aware)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon >= CHINA_LON[0]) & (lon <= CHINA_LON[1]) & (lat >= CHINA_LAT[0]) & (lat <= CHINA_LAT[1])


def check_in_china(lon: float, lat: float) -> None:
    """Raise CrsError unless (lon, lat) is a finite coordinate inside China."""
    try:
        lon_f, lat_f = float(lon), float(lat)
    except (TypeError, ValueError) as exc:
        raise CrsError(f"坐标格式错误 malformed coordinate ({lon!r}, {lat!r})") from exc
    if not (np.isfinite(lon_f) and np.isfinite(lat_f)):
        raise CrsError(f"坐标格式错误 malformed coordinate ({lon!r}, {lat!r})")
    if not (-180 <= lon_f <= 180 and -90 <= lat_f <= 90):
        raise CrsError(f"坐标超出经纬度范围 lon/lat out of range: ({lon_f}, {lat_f}); expected lon, lat in degrees")
    if not bool(in_china(lon_f, lat_f)):
        raise CrsError(f"坐标不在中国境内 coordinate outside China: ({lon_f}, {lat_f})")


def _delta(lon, lat):
    x = lon - 105.0
    y = lat - 35.0
    dlat = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon, lat):
    """WGS84 → GCJ-02 (array-aware); points outside China are returned unchanged."""
    lon_a = np.asarray(lon, dtype=float)
    lat_a = np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon_a, lat_a)
    inside = in_china(lon_a, lat_a)
    out_lon = np.where(inside, lon_a + dlon, lon_a)
    out_lat = np.where(inside, lat_a + dlat, lat_a)
    if np.ndim(lon) == 0:
        return float(out_lon), float(out_lat)
    return out_lon, out_lat


def gcj02_to_wgs84(lon, lat, iterations: int = 8):
    """GCJ-02 → WGS84 by fixed-point iteration of the forward transform (error < 1e-7°)."""
    g_lon = np.asarray(lon, dtype=float)
    g_lat = np.asarray(lat, dtype=float)
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    inside = in_china(g_lon, g_lat)
    for _ in range(iterations):
        dlon, dlat = _delta(w_lon, w_lat)
        w_lon = np.where(inside, g_lon - dlon, g_lon)
        w_lat = np.where(inside, g_lat - dlat, g_lat)
    if np.ndim(lon) == 0:
        return float(w_lon), float(w_lat)
    return w_lon, w_lat


def to_wgs84(lon, lat, crs: str = "wgs84"):
    """Coordinates given in `crs` → WGS84."""
    crs = normalize_crs(crs)
    if crs == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    return lon, lat


def from_wgs84(lon, lat, crs: str = "wgs84"):
    """WGS84 coordinates → `crs`."""
    crs = normalize_crs(crs)
    if crs == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    return lon, lat


def transform_geometry(geom, func):
    """Apply a (lon, lat) → (lon, lat) array function to every vertex of a shapely geometry."""
    import shapely

    def _tx(coords):
        lon, lat = func(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geom, _tx)


def geometry_to_wgs84(geom, crs: str = "wgs84"):
    """A shapely geometry given in ``crs`` → WGS84."""
    crs = normalize_crs(crs)
    return geom if crs != "gcj02" else transform_geometry(geom, gcj02_to_wgs84)


def geometry_from_wgs84(geom, crs: str = "wgs84"):
    """A shapely geometry in WGS84 → ``crs``."""
    crs = normalize_crs(crs)
    return geom if crs != "gcj02" else transform_geometry(geom, wgs84_to_gcj02)


def metric_crs() -> str:
    """The projected CRS (metres) used for distances and areas in the demo city."""
    return f"EPSG:{METRIC_EPSG}"


def ogc_crs_uri(crs: str) -> str:
    """The OGC URI of a short CRS name (GCJ-02 has none; a project URN is used)."""
    return {
        "wgs84": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        "cgcs2000": "http://www.opengis.net/def/crs/EPSG/0/4490",
        "gcj02": "urn:shequ:def:crs:gcj02",
    }[normalize_crs(crs)]


def point_to_wgs84(lon: float | None, lat: float | None, crs: str = "wgs84") -> tuple[float | None, float | None]:
    """A point given in ``crs`` → WGS84 floats, checked inside China; (None, None) when both are absent.

    Raises `CrsError` (bad input) for one coordinate without the other, a malformed or out-of-China
    coordinate, or an unknown CRS.
    """
    if lon is None and lat is None:
        return None, None
    if lon is None or lat is None:
        raise CrsError("lon 和 lat 需同时提供 give both lon and lat")
    crs = normalize_crs(crs)
    check_in_china(lon, lat)
    wlon, wlat = to_wgs84(lon, lat, crs)
    return float(wlon), float(wlat)
