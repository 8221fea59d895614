"""Candidate sites posted by a planner as CSV text: ``id,lon,lat`` in a stated CRS, checked and turned
into WGS84 lon/lat (``InputError`` / ``CrsError``, both 422, naming what is wrong)."""

from __future__ import annotations

import csv
import io

import numpy as np
import shapely

from geo.crs import CrsError, check_in_china, normalize_crs, to_wgs84

from .errors import InputError

#: the most candidate points one CSV may carry
MAX_CANDIDATES = 5000


def parse_csv(text: str, crs: str = "wgs84") -> tuple[list[str], np.ndarray]:
    """``(ids, lonlat (n, 2) WGS84)`` of a CSV with columns ``lon,lat`` (or ``x,y``) and optionally ``id``."""
    crs = normalize_crs(crs)
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        raise InputError("候选点 CSV 为空 (the candidate CSV has no rows)")
    cols = {c.strip().lower(): c for c in rows[0] if c}
    xcol = cols.get("lon") or cols.get("lng") or cols.get("x")
    ycol = cols.get("lat") or cols.get("y")
    if xcol is None or ycol is None:
        raise InputError(f"候选点 CSV 缺少列 lon,lat（或 x,y）(missing columns lon,lat; got {sorted(cols)})")
    if len(rows) > MAX_CANDIDATES:
        raise InputError(f"候选点过多：{len(rows)} > {MAX_CANDIDATES} (too many candidate points)")
    ids, xy = [], []
    for n, r in enumerate(rows, start=2):
        try:
            xy.append((float(r[xcol]), float(r[ycol])))
        except (TypeError, ValueError):
            raise InputError(f"第 {n} 行坐标数值无效 (line {n}: not a number: {r[xcol]!r}, {r[ycol]!r})") from None
        ids.append(str(r.get(cols.get("id", ""), "") or n - 1))
    arr = np.array(xy)
    for n, (x, y) in enumerate(arr, start=2):
        try:
            check_in_china(x, y)
        except CrsError as exc:
            raise CrsError(f"第 {n} 行：{exc.message}；坐标系是否为 {crs}？(line {n}: wrong CRS?)") from None
    lon, lat = to_wgs84(arr[:, 0], arr[:, 1], crs)
    return ids, np.column_stack([lon, lat])


def check_near(lonlat: np.ndarray, extent, margin_deg: float = 0.05) -> None:
    """``CrsError`` for points farther than ~5 km from the data extent (a CSV in another CRS, or elsewhere)."""
    if extent is None or len(lonlat) == 0:
        return
    grown = extent.buffer(margin_deg)
    far = np.flatnonzero(~shapely.contains(grown, shapely.points(lonlat)))
    if far.size:
        x, y = lonlat[far[0]]
        raise CrsError(f"{far.size} 个候选点远离数据范围（如 {x:.5f}, {y:.5f}），坐标系是否正确？"
                       f"({far.size} candidate points are far from the data: wrong CRS?)")
