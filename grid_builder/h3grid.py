"""H3 analysis grids (h3 v4): cells covering an area in three modes, and counts per cell.

Modes (what users ask for):
- ``center``  — the cell's centre lies inside the area (every point of the area in exactly one cell
  of a tiling; the usual choice for statistics);
- ``overlap`` — the cell touches the area at all (a cover: nothing of the area is left out);
- ``full``    — the cell lies entirely inside the area (no cell spills over the boundary).

They nest: full ⊆ center ⊆ overlap. Pure functions over lon/lat shapely geometries and plain tuples.
"""

from __future__ import annotations

from collections.abc import Iterable

import h3
from shapely.geometry import Polygon, mapping
from shapely.geometry.base import BaseGeometry

from grid_builder.errors import H3Error, TooManyCells
from grid_builder.geom import polygons_of

MODES = ("center", "overlap", "full")
MIN_RES, MAX_RES = 7, 12


__all__ = [
    "MAX_RES",
    "MIN_RES",
    "MODES",
    "H3Error",
    "aggregate",
    "cell_info",
    "cell_polygon",
    "cells_for",
    "check",
    "count_points",
    "is_cell",
]


def check(res: int, mode: str) -> None:
    """Raise H3Error unless ``res`` is within MIN_RES–MAX_RES and ``mode`` is one of MODES."""
    if not (MIN_RES <= int(res) <= MAX_RES):
        raise H3Error(f"H3 分辨率须在 {MIN_RES}–{MAX_RES} 之间 (res must be {MIN_RES}–{MAX_RES}), got {res}")
    if mode not in MODES:
        raise H3Error(f"覆盖方式须为 {'/'.join(MODES)} (mode must be one of {MODES}), got {mode!r}")


#: the most cells one request may produce (an area × resolution that would give more is refused first)
MAX_CELLS = 50_000


def check_cell_budget(area: BaseGeometry, res: int, max_cells: int = MAX_CELLS) -> int:
    """The estimated cell count of ``area`` (WGS84) at ``res``; `TooManyCells` (413) above ``max_cells``,
    before any cell is computed."""
    from pyproj import Geod

    area_m2 = abs(Geod(ellps="WGS84").geometry_area_perimeter(area)[0])
    estimate = int(area_m2 / h3.average_hexagon_area(res, unit="m^2")) + 1
    if estimate > max_cells:
        raise TooManyCells(
            f"H3 单元过多：约 {estimate} 个，上限 {max_cells}；请降低分辨率或缩小区域 too many H3 cells: about "
            f"{estimate}, the limit is {max_cells}; use a coarser resolution or a smaller area",
            {"estimated_cells": estimate, "max_cells": max_cells},
        )
    return estimate


def cells_for(area: BaseGeometry, res: int, mode: str = "center") -> list[str]:
    """Sorted H3 cells of ``area`` (lon/lat polygonal geometry) at ``res`` in ``mode``."""
    check(res, mode)
    out: set[str] = set()
    for poly in polygons_of(area):
        shape = h3.geo_to_h3shape(mapping(poly))
        out.update(h3.h3shape_to_cells_experimental(shape, int(res), contain=mode))
    return sorted(out)


def cell_polygon(cell: str) -> Polygon:
    """The cell's boundary as a lon/lat polygon."""
    return Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(cell)])


def is_cell(value: str) -> bool:
    """True when ``value`` is a valid H3 cell id."""
    try:
        return bool(h3.is_valid_cell(value))
    except (TypeError, ValueError):
        return False


def count_points(
    cells: Iterable[str], points: Iterable[tuple[float, float, float]], res: int
) -> dict[str, dict]:
    """{cell: {"n": count, "w": summed weight}} for points (lon, lat, weight) that fall in ``cells``."""
    wanted = {c: {"n": 0, "w": 0.0} for c in cells}
    for lon, lat, w in points:
        c = h3.latlng_to_cell(lat, lon, res)
        slot = wanted.get(c)
        if slot is not None:
            slot["n"] += 1
            slot["w"] += w
    return wanted


def aggregate(
    area: BaseGeometry, res: int, mode: str, layers: dict[str, list[tuple[float, float, float]]]
) -> list[dict]:
    """Cells of the area with counts per layer: buildings (+ households = summed building weight), pois,
    addresses (when given). Points are binned by the cell containing them (h3 ``latlng_to_cell``)."""
    cells = cells_for(area, res, mode)
    rows = {c: {"cell": c, "geom": cell_polygon(c)} for c in cells}
    for layer, pts in layers.items():
        counts = count_points(cells, pts, res)
        for c, v in counts.items():
            rows[c][layer] = v["n"]
            if layer == "buildings":
                rows[c]["households"] = v["w"]
    for r in rows.values():
        r.setdefault("households", 0.0)
        for layer in ("buildings", "pois"):
            r.setdefault(layer, 0)
    return [rows[c] for c in cells]


def cell_info(cell: str) -> dict:
    """Parent, children, centre, resolution, area of one cell."""
    if not is_cell(cell):
        raise H3Error(f"不是有效的 H3 单元编号 (not a valid H3 cell): {cell!r}")
    res = h3.get_resolution(cell)
    lat, lng = h3.cell_to_latlng(cell)
    return {
        "cell": cell,
        "res": res,
        "center": [lng, lat],
        "parent": h3.cell_to_parent(cell, res - 1) if res > 0 else None,
        "children": sorted(h3.cell_to_children(cell, res + 1)) if res < 15 else [],
        "area_m2": h3.cell_area(cell, unit="m^2"),
        "geom": cell_polygon(cell),
    }
