"""Helpers of the grid-edit tests: the invariants checked independently of the validator."""

from __future__ import annotations

import shapely

from grid_builder.edit.ops import Layout
from grid_builder.edit.samples import lonlat, movable_vertex, shared_vertices, try_apply
from grid_builder.geom import polygons_of, safe_union

__all__ = ["independent_problems", "lonlat", "movable_vertex", "shared_vertices", "try_apply"]


def independent_problems(layout: Layout, grids: dict) -> list[str]:
    """The invariants, checked another way than the validator: areas add up to the community's, pairwise
    overlaps below 1 m², each grid one piece (10 cm tolerance), every building anchor in exactly one grid."""
    problems = []
    union = safe_union(list(grids.values()))
    sym = shapely.symmetric_difference(union, layout.community)
    thick = sym.buffer(-0.25)
    if not thick.is_empty and thick.area > 0.5:
        problems.append(f"cover: {sym.area:.1f} m² differ")
    codes = sorted(grids)
    for i, a in enumerate(codes):
        if len([p for p in polygons_of(grids[a].buffer(0.05)) if p.area >= 1.0]) != 1:
            problems.append(f"{a} not one piece")
        for b in codes[i + 1:]:
            if grids[a].intersects(grids[b]) and grids[a].intersection(grids[b]).area > 1.0:
                problems.append(f"{a}/{b} overlap")
    for bld in layout.buildings:
        n = sum(1 for g in grids.values() if g.contains(bld.anchor))
        if n > 1 or not any(g.covers(bld.anchor) for g in grids.values()):
            problems.append(f"building {bld.id} in {n} grids")
    return problems
