"""Coordinate systems of a city's files: detect, name, and bring to WGS84.

Accepted: any CRS PROJ knows (the file's own, or ``--crs``) — in China usually CGCS2000 geographic
(EPSG:4490, numerically WGS84 to within centimetres) or CGCS2000 Gauss–Krüger (6° zones EPSG:4491–4512,
3° zones EPSG:4513–4554) — plus the two offset systems of commercial maps that PROJ does not know:
GCJ-02 (Amap, Tencent; `geo.crs.gcj02_to_wgs84`) and BD-09 (Baidu: BD-09 → GCJ-02 → WGS84).
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from geo.crs import gcj02_to_wgs84
from onboarding.errors import UnknownCrs

OFFSET_CRS = ("gcj02", "bd09")
_ALIASES = {
    "wgs84": "EPSG:4326",
    "crs84": "EPSG:4326",
    "cgcs2000": "EPSG:4490",
    "gcj-02": "gcj02",
    "gcj02": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
    "baidu": "bd09",
    "amap": "gcj02",
}
_X_PI = math.pi * 3000.0 / 180.0


def bd09_to_gcj02(lon, lat):
    """BD-09 (Baidu) → GCJ-02, array-aware (the published inverse; error well under a metre)."""
    x = np.asarray(lon, dtype=float) - 0.0065
    y = np.asarray(lat, dtype=float) - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def bd09_to_wgs84(lon, lat):
    """BD-09 → WGS84 (through GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def describe(crs) -> str:
    """A short human name of a CRS: 'EPSG:4528 CGCS2000 / 3-degree Gauss-Kruger zone 40', 'GCJ-02' …"""
    if crs == "gcj02":
        return "GCJ-02 (火星坐标 Amap/Tencent)"
    if crs == "bd09":
        return "BD-09 (百度 Baidu)"
    epsg = crs.to_epsg()
    return f"EPSG:{epsg} {crs.name}" if epsg else crs.name


def kind_of(crs) -> str:
    """'cgcs2000-geographic', 'cgcs2000-gk6', 'cgcs2000-gk3', 'wgs84', 'offset' or 'other'."""
    if crs in OFFSET_CRS:
        return "offset"
    epsg = crs.to_epsg() or 0
    if epsg == 4490:
        return "cgcs2000-geographic"
    if 4491 <= epsg <= 4512:
        return "cgcs2000-gk6"
    if 4513 <= epsg <= 4554:
        return "cgcs2000-gk3"
    if epsg == 4326:
        return "wgs84"
    return "other"


def parse_crs(name: str):
    """A user-given CRS (EPSG:4528, 4528, cgcs2000, gcj02, bd09, a PROJ string …) → pyproj CRS or offset name."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    key = _ALIASES.get(name.strip().lower(), name.strip())  # PROJ strings and WKT keep their case
    if key in OFFSET_CRS:
        return key
    if key.isdigit():
        key = f"EPSG:{key}"
    try:
        return CRS.from_user_input(key)
    except CRSError as exc:
        raise UnknownCrs(
            f"未知坐标系 unknown CRS '{name}': give an EPSG code (EPSG:4490, EPSG:4528 …), gcj02 or bd09"
        ) from exc


def choose_crs(file_crs, given: str | None, source: str):
    """The CRS to read `source` in: the one given (wins), else the file's own; neither raises `UnknownCrs`."""
    if given:
        return parse_crs(given)
    if file_crs is None:
        raise UnknownCrs(
            f"文件没有坐标系 {source} carries no coordinate system (no .prj / no CRS): "
            f"give it with --crs (e.g. --crs EPSG:4490, --crs EPSG:4528, --crs gcj02)"
        )
    return file_crs


def to_wgs84(geoms: np.ndarray, crs) -> np.ndarray:
    """An array of shapely geometries in `crs` → WGS84 lon/lat (same order; None stays None)."""
    if crs == "gcj02":
        return shapely.transform(geoms, lambda c: np.column_stack(gcj02_to_wgs84(c[:, 0], c[:, 1])))
    if crs == "bd09":
        return shapely.transform(geoms, lambda c: np.column_stack(bd09_to_wgs84(c[:, 0], c[:, 1])))
    from pyproj import CRS, Transformer

    if crs.equals(CRS.from_epsg(4326)):
        return geoms
    tr = Transformer.from_crs(crs, 4326, always_xy=True)
    return shapely.transform(geoms, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
