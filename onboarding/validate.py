"""Checks of a layer before it is written: geometry repair (with a report) and the declared area.

Rows whose geometry lies wholly outside the declared district are refused and counted; when most of a
layer is outside (``MAX_OUTSIDE_SHARE``), the CRS or projection zone is wrong (a wrong Gauss–Krüger zone
puts a city hundreds of kilometres away, often in the sea): the layer is refused with the distance.
Outside China (no district) only the lon/lat range is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
import shapely.ops

from onboarding.errors import CrsOutOfArea

MAX_OUTSIDE_SHARE = 0.5


@dataclass
class LayerReport:
    """What happened to one layer: rows read, repaired, dropped, refused outside the area, written."""

    layer: str
    source: str
    read: int = 0
    repaired: int = 0
    dropped_empty: int = 0
    outside_area: int = 0
    written: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The report as JSON-ready data."""
        return dict(self.__dict__)


def repair(geoms: np.ndarray) -> tuple[np.ndarray, int]:
    """Invalid geometries made valid (shapely.make_valid); returns them and how many were repaired."""
    arr = np.asarray(geoms, dtype=object)
    present = np.array([g is not None for g in arr], dtype=bool)
    if not present.any():
        return arr, 0
    valid = np.ones(len(arr), dtype=bool)
    valid[present] = shapely.is_valid(np.asarray(list(arr[present]), dtype=object))
    bad = np.flatnonzero(~valid)
    out = arr.copy()
    for i in bad:
        out[i] = shapely.make_valid(arr[i])
    return out, len(bad)


def check_lonlat(records: list[dict], layer: str, source: str) -> None:
    """Every coordinate must be a lon/lat (a projected file read without its CRS gives millions)."""
    if not records:
        return
    b = shapely.total_bounds(np.asarray([r["geom"] for r in records], dtype=object))
    if b[0] < -180 or b[2] > 180 or b[1] < -90 or b[3] > 90:
        raise CrsOutOfArea(
            f"坐标不是经纬度 {source} ({layer}): coordinates {b[0]:.0f}…{b[2]:.0f}, {b[1]:.0f}…{b[3]:.0f} are not "
            "lon/lat: the file is projected; give its CRS with --crs (EPSG:4528 …)"
        )


def within_area(records: list[dict], area, area_label: str, report: LayerReport) -> list[dict]:
    """Records meeting `area` (refused ones counted in `report`); a mostly-outside layer raises `CrsOutOfArea`."""
    if not records or area is None:
        return records
    geoms = np.asarray([r["geom"] for r in records], dtype=object)
    shapely.prepare(area)
    inside = shapely.intersects(area, geoms)
    n_out = int((~inside).sum())
    if n_out and n_out / len(records) > MAX_OUTSIDE_SHARE:
        centre = shapely.centroid(shapely.GeometryCollection(list(geoms)))
        from pyproj import Geod

        nearest = shapely.ops.nearest_points(area, centre)[0]
        _, _, dist = Geod(ellps="WGS84").inv(centre.x, centre.y, nearest.x, nearest.y)
        raise CrsOutOfArea(
            f"数据不在所申报的区县内 {report.source} ({report.layer}): {n_out} of {len(records)} features lie "
            f"outside {area_label}, their centre ({centre.x:.3f}, {centre.y:.3f}) {dist / 1000:.0f} km away: "
            "wrong CRS or projection zone (the data lands in the sea?) or wrong district code"
        )
    report.outside_area = n_out
    if n_out:
        report.notes.append(f"{n_out} features outside {area_label} refused")
    return [r for r, ok in zip(records, inside, strict=True) if ok]
