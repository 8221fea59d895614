"""The invariants every grid edit keeps, checked on the whole community before anything is written.

Chosen over PostGIS topology (``postgis_topology``): the grids are checked as polygons in the pure core
(shapely, metric), which proves the same properties a topology would guarantee — the grids of a
community cover it within ``COVER_TOL_M`` (0.5 m), no two overlap by more than ``OVERLAP_M2`` (1 m²), each
grid is one connected piece, every building (its anchor, the point that decides membership) lies in
exactly one grid, and the micro-grids of each written grid cover it without overlap. Shared edges stay
shared because a vertex move changes every grid that has the vertex (`ops.move_vertex`), and the cover
and overlap checks would catch any edge that did not.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from grid_builder.edit.errors import EditRefused
from grid_builder.edit.ops import EditBuilding, place
from grid_builder.geom import n_parts
from grid_builder.validate import COVER_TOL_M, OVERLAP_M2, Issue, check_cover, check_overlaps

__all__ = ["COVER_TOL_M", "OVERLAP_M2", "check_layout", "check_microgrids", "issue_dict", "refuse_if_broken"]

MIN_GRID_M2 = 1.0

#: issue kind → the rule name an API client sees
RULES = {
    "gap": "gap",
    "overhang": "overhang",
    "overlap": "overlap",
    "not_nested": "microgrid_not_nested",
    "invalid": "invalid_geometry",
    "grid_empty": "grid_emptied",
    "not_connected": "not_connected",
    "building_stranded": "building_stranded",
    "building_multiple": "building_multiple",
}


def _shape_issues(grids: dict[str, BaseGeometry], focus: set[str]) -> list[Issue]:
    issues = []
    for code in sorted(focus):
        g = grids.get(code)
        if g is None:
            continue
        if g.is_empty or g.area < MIN_GRID_M2:
            issues.append(Issue("grid_empty", [code], f"网格 {code} 为空 (grid {code} would be empty)", g, 0.0))
        elif not g.is_valid:
            issues.append(Issue("invalid", [code], f"网格 {code} 几何无效 (invalid geometry)", g, g.area))
        elif n_parts(g) > 1:
            issues.append(Issue("not_connected", [code], f"网格 {code} 分成了 {n_parts(g)} 块 (grid {code} is not "
                                "one connected piece)", g, g.area))
    return issues


def _building_issues(grids: dict[str, BaseGeometry], buildings: list[EditBuilding]) -> list[Issue]:
    codes = sorted(grids)
    geoms = np.array([grids[c] for c in codes], dtype=object)
    tree = STRtree(geoms)
    points = np.array([b.anchor for b in buildings], dtype=object)
    issues: list[Issue] = []
    if not len(points):
        return issues
    pi, gi = tree.query(points, predicate="intersects")  # pairs (building, grid) covering the anchor
    within = shapely.contains(geoms[gi], points[pi])
    n_hits = np.bincount(pi, minlength=len(points))
    n_inside = np.bincount(pi[within], minlength=len(points))
    for k in np.flatnonzero((n_hits == 0) | (n_inside > 1)):
        b = buildings[int(k)]
        if n_hits[k] == 0:
            issues.append(Issue("building_stranded", [], f"建筑 {b.id} 不在任何网格内 (building {b.id} left in no "
                                "grid)", b.footprint, 0.0, {"building": b.id}))
            continue
        inside = sorted(codes[int(g)] for g in gi[(pi == k) & within])
        if len(inside) > 1:
            issues.append(Issue("building_multiple", inside, f"建筑 {b.id} 同时在网格 {inside} 内 (building in "
                                "several grids)", b.footprint, 0.0, {"building": b.id}))
    return issues


def _exact_union(geoms: dict[str, BaseGeometry]) -> BaseGeometry | None:
    """The union without snap-rounding (None when GEOS needs it: the checks then compute their own, and
    overlaps are measured pair by pair, since a snapped union's area is not exact enough to bound them)."""
    try:
        return shapely.union_all([g for g in geoms.values() if g is not None and not g.is_empty])
    except shapely.errors.GEOSException:
        return None


def check_layout(
    community_code: str,
    community: BaseGeometry,
    grids: dict[str, BaseGeometry],
    buildings: list[EditBuilding],
    microgrids: dict[str, dict[str, BaseGeometry]] | None = None,
    focus: set[str] | None = None,
    level: str = "grid",
) -> list[Issue]:
    """Every broken invariant of a community's grids (metric). ``focus`` = the grids whose shape is checked
    (emptiness, validity, one piece; default all); ``microgrids`` = grid code → its micro-grids to check.
    With ``level="microgrid"`` the same checks hold for one grid's micro-grids (community = the grid): an
    overhang is then a micro-grid not nested in its grid."""
    focus = set(grids) if focus is None else focus
    issues = _shape_issues(grids, focus)
    if any(i.kind in ("grid_empty", "invalid") for i in issues):
        return issues  # the rest cannot be judged on broken shapes
    union = _exact_union(grids)
    issues += check_cover(community_code, community, grids, COVER_TOL_M, level=level, union=union)
    issues += check_overlaps(grids, OVERLAP_M2, union=union)
    issues += _building_issues(grids, buildings)
    return issues + check_microgrids(grids, microgrids or {})


def check_microgrids(grids: dict[str, BaseGeometry], microgrids: dict[str, dict[str, BaseGeometry]]
                     ) -> list[Issue]:
    """Micro-grids of the given grids cover them without overlap (nesting)."""
    issues: list[Issue] = []
    for code, children in microgrids.items():
        if code in grids:
            union = _exact_union(children)
            issues += check_cover(code, grids[code], children, COVER_TOL_M, level="microgrid", union=union)
            issues += check_overlaps(children, OVERLAP_M2, union=union)
    return issues


def issue_dict(i: Issue) -> dict:
    """An issue for the API: rule, codes, message, area and the place (GeoJSON lon/lat)."""
    return {"rule": RULES.get(i.kind, i.kind), "codes": i.codes, "message": i.message,
            "area_m2": round(i.area_m2, 2), "geometry": place(i.geom), **i.extra}


def refuse_if_broken(issues: list[Issue]) -> None:
    """Raise `EditRefused` naming the first broken rule (all issues in the detail) when there is any."""
    if not issues:
        return
    first = issues[0]
    rule = RULES.get(first.kind, first.kind)
    more = f"（另有 {len(issues) - 1} 个问题 and {len(issues) - 1} more）" if len(issues) > 1 else ""
    raise EditRefused(rule, f"编辑违反规则 {rule}: {first.message}{more}", first.codes, place(first.geom),
                      [issue_dict(i) for i in issues])
