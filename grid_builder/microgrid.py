"""Micro-grids (微网格): whole buildings grouped inside one grid, 30–50 households or one building.

Each building gets the cell of the grid nearest to its footprint (Voronoi of outline points, clipped
to the grid), so cells cover the grid and micro-grids nest in it exactly; the cells are then
partitioned with the same household-balanced partitioner as the grids.
"""

from __future__ import annotations

from grid_builder.blocks import assign_points, building_anchor, building_cells
from grid_builder.codes import child_codes, west_east_north_south
from grid_builder.geom import (
    as_multipolygon,
    n_parts,
    polygons_of,
    safe_difference,
    safe_union,
)
from grid_builder.partition import partition_units


def build_microgrids(grid, buildings, lo: float, hi: float, seed: int = 0):
    """Micro-grids of ``grid`` (a ``build.Area``) from its buildings (``build.BuildingIn``)."""
    from grid_builder.build import Area

    if not buildings:
        code = child_codes(grid.code, 1, 2)[0]
        return [Area(code, "microgrid", grid.code, grid.geom, 0.0, [], ["no_buildings"])]
    region = grid.geom
    cells = building_cells(region, [b.geom for b in buildings])
    units, unit_buildings = [], []
    orphans = []
    for i, c in enumerate(cells):
        if c.is_empty or c.area <= 0:
            orphans.append(i)
            continue
        units.append(c)
        unit_buildings.append([i])
    if not units:  # degenerate: the whole grid is one micro-grid
        units, unit_buildings, orphans = [region], [list(range(len(buildings)))], []
    if orphans:  # buildings whose cell vanished join the unit containing their anchor
        where = assign_points(units, [building_anchor(buildings[i].geom) for i in orphans])
        for i, u in zip(orphans, where, strict=True):
            unit_buildings[u].append(i)
    hh = [sum(buildings[i].households for i in ub) for ub in unit_buildings]
    res = partition_units(units, hh, lo, hi, restarts=2, seed=seed, max_k=99)
    groups: dict[int, list[int]] = {}
    for u, r in enumerate(res.labels):
        groups.setdefault(r, []).append(u)
    drafts = []
    for uis in groups.values():
        geom = as_multipolygon(safe_union([units[u] for u in uis]))
        bidx = [i for u in uis for i in unit_buildings[u]]
        drafts.append((geom, bidx))
    # cells left over where the Voronoi clipping missed bits of the grid: give them to a neighbour
    covered = safe_union([d[0] for d in drafts])
    rest = [p for p in polygons_of(safe_difference(region, covered)) if p.area > 0.01]
    for p in rest:
        j = max(range(len(drafts)), key=lambda q: drafts[q][0].boundary.intersection(p.buffer(0.05)).length)
        drafts[j] = (as_multipolygon(safe_union([drafts[j][0], p])), drafts[j][1])
    drafts = _follow_anchors(drafts, buildings)
    pts = [(d[0].centroid.x, d[0].centroid.y) for d in drafts]
    order = west_east_north_south(pts)
    codes = child_codes(grid.code, len(order), 2)
    out = []
    for code, di in zip(codes, order, strict=True):
        geom, bidx = drafts[di]
        h = sum(buildings[i].households for i in bidx)
        flags = []
        if not bidx:
            flags.append("no_buildings")
        elif len(bidx) == 1:
            flags.append("single_building")  # "30–50 households, or one building"
        elif any(buildings[i].households > hi for i in bidx):
            flags.append("over_band_building")  # one big building with non-residential neighbours
        elif not (lo <= h <= hi):
            flags.append("outside_band")
        if n_parts(geom) > 1:
            flags.append("not_contiguous")
        out.append(Area(code, "microgrid", grid.code, geom, h, [buildings[i].id for i in bidx], flags))
    return out


def _follow_anchors(drafts, buildings):
    """Membership follows the anchor: a building whose anchor lies strictly inside another micro-grid
    (a footprint reaching over the Voronoi boundary, a clipped cell) moves there, so that the stored
    assignment and a point lookup (``/grids/locate``) always agree. Drafts left without buildings keep
    their area (they stay part of the grid's cover)."""
    geoms = [d[0] for d in drafts]
    members = [list(d[1]) for d in drafts]
    moved = False
    for j in range(len(drafts)):
        for i in list(members[j]):
            p = building_anchor(buildings[i].geom)
            if geoms[j].covers(p):
                continue
            home = next((q for q, g in enumerate(geoms) if q != j and g.contains(p)), None)
            if home is not None:
                members[j].remove(i)
                members[home].append(i)
                moved = True
    return [(g, m) for g, m in zip(geoms, members, strict=True)] if moved else drafts
