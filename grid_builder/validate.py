"""Topology checks for the 社区—网格—微网格 hierarchy: gaps, overlaps, nesting, building membership.

Pure core on metric geometries. Each problem comes back with the geometry that shows it, so the map
and the CLI can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from grid_builder.geom import polygons_of, safe_difference, safe_intersection, safe_union

COVER_TOL_M = 0.5  # union of children must match the parent within this distance
OVERLAP_M2 = 1.0  # overlaps larger than this are errors


@dataclass
class Issue:
    """One problem of the hierarchy, with the codes involved and the (metric) geometry that shows it."""

    kind: str  # gap | overhang | overlap | not_nested | building_unassigned | building_multiple | invalid
    codes: list[str]
    message: str
    geom: BaseGeometry | None = None  # metric
    area_m2: float = 0.0
    extra: dict = field(default_factory=dict)


def _wider_than(geom: BaseGeometry, tol: float) -> BaseGeometry | None:
    """The part of ``geom`` that is more than ``tol`` wide (None when it is only a thin sliver)."""
    if geom is None or geom.is_empty:
        return None
    core = geom.buffer(-tol / 2.0)
    if core.is_empty:
        return None
    parts = [p for p in polygons_of(geom) if not p.buffer(-tol / 2.0).is_empty]
    return safe_union(parts) if parts else None


def check_cover(
    parent_code: str,
    parent: BaseGeometry,
    children: dict[str, BaseGeometry],
    tol_m: float = COVER_TOL_M,
    level: str = "grid",
    union: BaseGeometry | None = None,
) -> list[Issue]:
    """Gaps and overhangs between a parent and the union of its children (beyond ``tol_m``); ``union``:
    the children's union when the caller has it already."""
    issues: list[Issue] = []
    if not children:
        return [Issue("gap", [parent_code], f"{parent_code} 没有任何{level}", parent, parent.area)]
    if union is None:
        union = safe_union(list(children.values()))
    gap = _wider_than(safe_difference(parent, union), tol_m)
    if gap is not None:
        issues.append(
            Issue(
                "gap", [parent_code], f"{parent_code} 内有 {gap.area:.1f} m² 未被{level}覆盖", gap, gap.area
            )
        )
    over = _wider_than(safe_difference(union, parent), tol_m)
    if over is not None:
        codes = [c for c, g in children.items() if g.intersects(over)]
        issues.append(
            Issue(
                "overhang" if level == "grid" else "not_nested",
                [parent_code, *codes],
                f"{level} 超出 {parent_code} 边界 {over.area:.1f} m²",
                over,
                over.area,
            )
        )
    return issues


def check_overlaps(children: dict[str, BaseGeometry], min_area_m2: float = OVERLAP_M2,
                   union: BaseGeometry | None = None) -> list[Issue]:
    """Overlaps larger than ``min_area_m2`` between sibling children.

    With ``union`` (the children's union) the pairwise intersections are skipped when the total overlap
    (sum of the areas minus the union's area) is below ``min_area_m2``: no pair can overlap by more than
    the total, since every point in two children counts at least once in the difference."""
    codes = list(children)
    geoms = [children[c] for c in codes]
    issues: list[Issue] = []
    if len(geoms) < 2:
        return issues
    if union is not None and sum(g.area for g in geoms) - union.area <= 0.9 * min_area_m2:
        return issues
    tree = STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i >= j:
            continue
        inter = safe_intersection(geoms[i], geoms[j])
        if inter.area > min_area_m2:
            issues.append(
                Issue(
                    "overlap",
                    [codes[i], codes[j]],
                    f"{codes[i]} 与 {codes[j]} 重叠 {inter.area:.1f} m²",
                    inter,
                    inter.area,
                )
            )
    return issues


def check_buildings(building_ids: list[int], membership: dict[int, list[str]], level: str) -> list[Issue]:
    """Buildings in no unit of ``level`` or in more than one."""
    issues = []
    for b in building_ids:
        owners = membership.get(b, [])
        if len(owners) == 0:
            issues.append(
                Issue("building_unassigned", [], f"建筑 {b} 不属于任何{level}", extra={"building": b})
            )
        elif len(owners) > 1:
            issues.append(
                Issue(
                    "building_multiple",
                    owners,
                    f"建筑 {b} 同时属于多个{level}: {owners}",
                    extra={"building": b},
                )
            )
    return issues


def validate_community(
    community_code: str,
    community: BaseGeometry,
    grids: dict[str, BaseGeometry],
    microgrids: dict[str, tuple[str, BaseGeometry]],
    building_ids: list[int],
    building_grid: dict[int, list[str]],
    building_microgrid: dict[int, list[str]],
    check_validity: bool = True,
) -> list[Issue]:
    """All checks for one community; an empty list means the hierarchy is sound."""
    issues: list[Issue] = []
    for code, g in grids.items():
        if check_validity and not g.is_valid:
            issues.append(Issue("invalid", [code], f"{code} 几何无效", g, g.area))
    issues += check_cover(community_code, community, grids, level="grid")
    issues += check_overlaps(grids)
    by_grid: dict[str, dict[str, BaseGeometry]] = {c: {} for c in grids}
    for mcode, (parent, g) in microgrids.items():
        if parent not in by_grid:
            issues.append(Issue("not_nested", [mcode], f"微网格 {mcode} 的上级 {parent} 不存在", g, g.area))
            continue
        by_grid[parent][mcode] = g
    for gcode, children in by_grid.items():
        issues += check_cover(gcode, grids[gcode], children, level="microgrid")
        issues += check_overlaps(children)
    issues += check_buildings(building_ids, building_grid, "网格")
    issues += check_buildings(building_ids, building_microgrid, "微网格")
    for b, mcodes in building_microgrid.items():
        gcodes = building_grid.get(b, [])
        for m in mcodes:
            owner = microgrids.get(m, (None, None))[0]
            if gcodes and owner not in gcodes:
                issues.append(
                    Issue(
                        "not_nested",
                        [m, *gcodes],
                        f"建筑 {b} 的微网格 {m} 不在其网格 {gcodes} 内",
                        extra={"building": b},
                    )
                )
    return issues
