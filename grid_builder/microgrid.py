"""Micro-grids (微网格): whole buildings grouped inside one grid, 30–50 households or one building.

Each building gets the cell of the grid nearest to its footprint (Voronoi of outline points, clipped
to the grid), so cells cover the grid and micro-grids nest in it exactly; the cells are then
partitioned with the same household-balanced partitioner as the grids.
"""

from __future__ import annotations

from shapely.geometry.base import BaseGeometry

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
from grid_builder.records import Area

MAX_MICROGRIDS = 99  # 2-digit sequence


def build_microgrids(grid, buildings, lo: float, hi: float, seed: int = 0):
    """Micro-grids of ``grid`` (an `Area`) from its buildings (`BuildingIn` records)."""
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
    drafts = split_large_buildings(drafts, buildings, lo, hi)
    pts = [(d[0].centroid.x, d[0].centroid.y) for d in drafts]
    order = west_east_north_south(pts)
    codes = child_codes(grid.code, len(order), 2)
    out = []
    for code, di in zip(codes, order, strict=True):
        geom, bidx, part = drafts[di]
        out.append(_microgrid(code, grid.code, geom, bidx, part, buildings, lo, hi))
    return out


def _microgrid(code: str, grid_code: str, geom, bidx: list[int], part: dict | None, buildings, lo, hi) -> Area:
    """One micro-grid from its draft (geometry, building indices, unit range of a large building or None)."""
    h = sum(buildings[i].households for i in bidx)
    flags = []
    if part is not None:
        h = part["unit_households"] + sum(
            buildings[i].households for i in bidx if buildings[i].id != part["building_id"]
        )
        flags.append("building_units")
        if not (lo <= part["unit_households"] <= hi):
            flags.append("outside_band")
        if n_parts(geom) > 1:
            flags.append("not_contiguous")
        return Area(code, "microgrid", grid_code, geom, h, [buildings[i].id for i in bidx], flags, part)
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
    return Area(code, "microgrid", grid_code, geom, h, [buildings[i].id for i in bidx], flags)


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


def unit_count(households: float, lo: float, hi: float, cap: int) -> int:
    """How many unit ranges a building of ``households`` is cut into: the fewest whose (near-equal)
    shares all fall inside ``lo``–``hi``; when no count does, the one closest to the band; at most ``cap``."""
    hh = int(round(households))
    if hh <= hi or cap <= 1:
        return 1

    def dev(k: int) -> float:
        q, r = divmod(hh, k)
        sizes = [q + 1] * r + [q] * (k - r)
        return sum(max(0, lo - s, s - hi) for s in sizes)

    first = max(1, -(-hh // int(hi)))
    best = min(range(first, max(first, -(-hh // max(int(lo), 1))) + 1), key=lambda k: (dev(k), k))
    return max(1, min(best, cap))


def strips(geom, k: int) -> list:
    """Cut ``geom`` into ``k`` strips of equal area across the long axis of its minimum rotated rectangle.
    The strips cover ``geom`` and do not overlap (neighbours share a cut line)."""
    import math

    import shapely
    from shapely import affinity
    from shapely.geometry import box

    if k <= 1:
        return [geom]
    rect = shapely.minimum_rotated_rectangle(geom)
    xy = list(rect.exterior.coords)[:4]
    edges = [(xy[i], xy[(i + 1) % 4]) for i in range(2)]
    (a, b) = max(edges, key=lambda e: math.dist(*e))
    angle = math.degrees(math.atan2(b[1] - a[1], b[0] - a[0]))
    origin = geom.centroid
    rot = affinity.rotate(geom, -angle, origin=origin)  # long axis along x
    minx, miny, maxx, maxy = rot.bounds
    total = rot.area
    cuts = [minx]
    for j in range(1, k):
        target = total * j / k
        lo_x, hi_x = cuts[-1], maxx
        for _ in range(40):
            mid = (lo_x + hi_x) / 2
            if rot.intersection(box(minx - 1, miny - 1, mid, maxy + 1)).area < target:
                lo_x = mid
            else:
                hi_x = mid
        cuts.append((lo_x + hi_x) / 2)
    cuts.append(maxx)
    out = []
    for x0, x1 in zip(cuts[:-1], cuts[1:], strict=True):
        x0 = minx - 1 if x0 == minx else x0
        x1 = maxx + 1 if x1 == maxx else x1
        piece = rot.intersection(box(x0, miny - 1, x1, maxy + 1))
        out.append(as_multipolygon(affinity.rotate(piece, angle, origin=origin)))
    return out


def split_large_buildings(drafts, buildings, lo: float, hi: float, cap: int = MAX_MICROGRIDS):
    """Micro-grids of unit ranges for buildings above the band ("units of large buildings").

    A draft whose heaviest building holds more than ``hi`` households is cut into strips of equal area
    (``strips``), one per range of units of that building, so micro-grid geometries still tile the grid
    without overlap. The building itself is assigned to the strip holding its anchor (one row per
    building); every strip carries its unit range and households in ``part``. Other buildings of the
    draft (non-residential neighbours) go to the strip holding their anchor. The grid's 2-digit
    sequence caps the total at ``cap`` micro-grids: large buildings then get fewer, bigger ranges.
    Returns (geometry, building indices, part or None) triples."""
    out: list[tuple[BaseGeometry, list[int], dict | None]] = [(g, b, None) for g, b in drafts]
    big = []
    for j, (_g, bidx, _p) in enumerate(out):
        if bidx:
            heavy = max(bidx, key=lambda i: buildings[i].households)
            if buildings[heavy].households > hi:
                big.append((j, heavy))
    if not big:
        return out
    room = cap - len(out)
    want = {j: unit_count(buildings[h].households, lo, hi, cap) for j, h in big}
    while sum(want.values()) - len(want) > room:  # shrink the largest request until all fit
        jmax = max(want, key=lambda j: want[j])
        if want[jmax] <= 1:
            break
        want[jmax] -= 1
    result = [d for j, d in enumerate(out) if j not in want]
    for j, heavy in big:
        geom, bidx, _ = out[j]
        k = want[j]
        if k <= 1:
            result.append(out[j])
            continue
        pieces = strips(geom, k)
        hh = int(round(buildings[heavy].households))
        q, r = divmod(hh, k)
        sizes = [q + 1] * r + [q] * (k - r)
        members: list[list[int]] = [[] for _ in pieces]
        for i in bidx:
            where = assign_points(pieces, [building_anchor(buildings[i].geom)])[0]
            members[where].append(i)
        first = 1
        for n, (piece, size) in enumerate(zip(pieces, sizes, strict=True)):
            part = {
                "building_id": buildings[heavy].id,
                "units": [first, first + size - 1],
                "part": n + 1,
                "parts": k,
                "unit_households": size,
            }
            first += size
            result.append((piece, members[n], part))
    return result
