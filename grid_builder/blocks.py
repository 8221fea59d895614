"""Street blocks: polygonise roads (plus water edges and rail) inside a boundary; assign buildings.

Pure core, metric coordinates (see ``grid_builder.geom.to_metric``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import shapely
import shapely.affinity
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from grid_builder.geom import as_multipolygon, polygons_of, safe_intersection, safe_union, to_metric, to_wgs84

SLIVER_M2 = 150.0  # faces smaller than this are merged into their longest-border neighbour


@dataclass
class Block:
    """A street block (metric): land between block lines, or water; the buildings whose anchor it holds."""

    geom: Polygon  # metric
    kind: str = "land"  # land | water | split
    building_ids: list[int] = field(default_factory=list)
    households: float = 0.0
    source_block: int | None = None  # index of the street block a split piece came from


def street_blocks(
    boundary: BaseGeometry,
    lines: list[BaseGeometry],
    water: list[BaseGeometry] | None = None,
) -> list[Block]:
    """Faces of the road (+ rail + water edge) linework inside ``boundary``; they cover it exactly."""
    polys = polygons_of(boundary)
    if not polys:
        return []
    boundary = safe_union(polys)
    edges = [boundary.boundary]
    prepared = boundary
    shapely.prepare(prepared)
    for ln in lines:
        if ln is None or ln.is_empty or not prepared.intersects(ln):
            continue
        edges.append(safe_intersection(ln, boundary))
    water_union = None
    if water:
        wp = [w for w in water if w is not None and not w.is_empty and prepared.intersects(w)]
        if wp:
            water_union = safe_union(polygons_of(safe_intersection(safe_union(wp), boundary)))
            if not water_union.is_empty:
                edges.append(water_union.boundary)
    noded = safe_union([e for e in edges if not e.is_empty])
    faces = [f for f in shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))) if f.area > 0]
    # keep faces inside the boundary (holes of the boundary are faces too)
    kept = [f for f in faces if boundary.contains(f.representative_point())]
    if water_union is not None and not water_union.is_empty:
        shapely.prepare(water_union)
    blocks = []
    for f in kept:
        kind = "land"
        if water_union is not None and water_union.contains(f.representative_point()):
            kind = "water"
        blocks.append(Block(geom=f, kind=kind))
    return merge_slivers(blocks)


def merge_slivers(blocks: list[Block], min_area_m2: float = SLIVER_M2) -> list[Block]:
    """Merge tiny faces (slivers between close parallel carriageways) into a neighbour."""
    changed = True
    while changed and len(blocks) > 1:
        changed = False
        small = [i for i, b in enumerate(blocks) if b.geom.area < min_area_m2]
        if not small:
            break
        geoms = [b.geom for b in blocks]
        tree = STRtree(geoms)
        for i in small:
            g = blocks[i].geom
            cand = [int(j) for j in tree.query(g, predicate="dwithin", distance=0.05) if int(j) != i]
            cand = [j for j in cand if blocks[j].geom.area >= min_area_m2 or blocks[j].geom.area > g.area]
            if not cand:
                continue
            j = max(cand, key=lambda q: g.boundary.intersection(blocks[q].geom.buffer(0.1)).length)
            merged = safe_union([blocks[j].geom, g])
            parts = polygons_of(merged)
            if len(parts) != 1:
                continue
            blocks[j] = Block(geom=parts[0], kind=blocks[j].kind)
            blocks.pop(i)
            changed = True
            break
    return blocks


def assign_points(polys: list[BaseGeometry], points: list[Point]) -> list[int]:
    """Index of the polygon containing each point (the lowest index when several do; the nearest polygon when
    none does); -1 if no polygons. One bulk query of the tree for all points (a query per point cost ~25 µs
    of Python each: at 10^7 addresses, `grid boundaries` spent minutes here)."""
    if not polys:
        return [-1] * len(points)
    if not points:
        return []
    tree = STRtree(polys)
    pts = np.empty(len(points), dtype=object)
    pts[:] = points
    p_idx, t_idx = tree.query(pts, predicate="intersects")
    none = len(polys)
    out = np.full(len(points), none, dtype=np.int64)
    np.minimum.at(out, p_idx, t_idx)
    missing = np.flatnonzero(out == none)
    if len(missing):
        out[missing] = tree.nearest(pts[missing])
    return out.tolist()


def building_anchor(geom: BaseGeometry) -> Point:
    """The point that decides where a building belongs (inside the footprint, stable): the footprint's
    point-on-surface taken in lon/lat — exactly what the SQL side uses (``ST_PointOnSurface(geom)`` on the
    stored WGS84 geometry). A metric footprint (UTM 51N) gets that same point, projected; taking
    point-on-surface in UTM instead can land tens of metres away in a large, irregular footprint."""
    x0 = geom.bounds[0] if not geom.is_empty else 0.0
    if abs(x0) <= 180.0:
        return geom.representative_point()
    return _metric_anchor(shapely.to_wkb(geom))


@lru_cache(maxsize=65536)
def _metric_anchor(wkb: bytes) -> Point:
    return to_metric(to_wgs84(shapely.from_wkb(wkb)).representative_point())


def building_cells(region: BaseGeometry, building_geoms: list[BaseGeometry], spacing_m: float = 4.0,
                   only: set[int] | None = None):
    """Split ``region`` into one cell per building: Voronoi of footprint outline points, dissolved per
    building and clipped to the region, each building's anchor being a seed as well, so a building's cell
    contains its anchor. Cells cover the region; boundaries run between buildings.

    ``only`` (indices): build the cells of these buildings only (the others come back empty); they are
    the same cells, since every building is still a Voronoi site."""
    n = len(building_geoms)
    if n == 0:
        return []
    if n == 1:
        return [region]
    pts, owner, seen = [], [], set()
    shapely.prepare(region)
    for i, g in enumerate(building_geoms):
        gg = g.intersection(region) if not region.contains(g) else g
        if gg.is_empty:
            gg = building_anchor(g)
        coords = shapely.get_coordinates(shapely.segmentize(gg.boundary if gg.area > 0 else gg, spacing_m))
        if len(coords) == 0:
            coords = shapely.get_coordinates(building_anchor(g))
        added = False
        for x, y in np.round(coords, 2):
            key = (x, y)
            if key in seen:
                continue
            seen.add(key)
            pts.append((x, y))
            owner.append(i)
            added = True
        # the anchor is a seed of its own building too, so the building's cell always contains the point
        # that decides membership (an outline point of a neighbour can otherwise lie nearer to it)
        rp = building_anchor(g)
        key = (round(rp.x, 2), round(rp.y, 2))
        if key in seen or not added:
            key = (key[0] + 0.01 * (i % 7 + 1), key[1])
        if key not in seen:
            seen.add(key)
            pts.append(key)
            owner.append(i)
    env = region.envelope.buffer(50.0)
    # Voronoi in local coordinates: UTM magnitudes (3.4e6 m) cost GEOS precision
    ox, oy = round(env.centroid.x), round(env.centroid.y)
    local = shapely.multipoints(np.asarray(pts, dtype=float) - (ox, oy))
    vor = shapely.voronoi_polygons(local, extend_to=shapely.affinity.translate(env, -ox, -oy), ordered=True)
    per_building: list[list] = [[] for _ in range(n)]
    for idx, c in enumerate(shapely.get_parts(vor)):  # ordered: cell i belongs to point i
        if only is None or owner[idx] in only:
            cell = shapely.affinity.translate(shapely.set_precision(shapely.make_valid(c), 0.001), ox, oy)
            per_building[owner[idx]].append(cell)
    out = []
    for i in range(n):
        cell = safe_intersection(safe_union(per_building[i]), region) if per_building[i] else Polygon()
        out.append(as_multipolygon(cell))
    return out


def building_groups(
    anchors: list[tuple[float, float]], households: list[float], max_hh: float
) -> list[list[int]]:
    """Recursive weighted bisection of buildings along the longer axis until each group holds at most
    ``max_hh`` households (a single building heavier than that stays alone)."""
    idx = list(range(len(anchors)))

    def rec(items: list[int]) -> list[list[int]]:
        total = sum(households[i] for i in items)
        if len(items) <= 1 or total <= max_hh:
            return [items]
        xs = [anchors[i][0] for i in items]
        ys = [anchors[i][1] for i in items]
        axis = 0 if (max(xs) - min(xs)) >= (max(ys) - min(ys)) else 1
        items = sorted(items, key=lambda i: (anchors[i][axis], anchors[i][1 - axis]))
        k = max(2, int(np.ceil(total / max_hh)))
        share = total * (k // 2) / k
        acc, cut = 0.0, 1
        for pos, i in enumerate(items):
            acc += households[i]
            if acc >= share:
                cut = pos + 1
                # put the crossing building on the side that balances better
                if acc - share > households[i] / 2 and pos > 0:
                    cut = pos
                break
        cut = min(max(cut, 1), len(items) - 1)
        return rec(items[:cut]) + rec(items[cut:])

    return rec(idx) if idx else []


def split_block(
    block: BaseGeometry, footprints: list[BaseGeometry], households: list[float], max_hh: float
) -> list[tuple[BaseGeometry, list[int]]]:
    """Split a block whose households exceed ``max_hh`` along building groups.

    Returns (piece geometry, indices of its buildings); pieces cover the block, boundaries run between
    buildings (Voronoi of footprint outlines)."""
    anchors = [building_anchor(g).coords[0] for g in footprints]
    groups = building_groups(anchors, households, max_hh)
    if len(groups) <= 1:
        return [(block, list(range(len(footprints))))]
    cells = building_cells(block, footprints)
    pieces = [safe_union([cells[i] for i in grp if not cells[i].is_empty]) for grp in groups]
    pieces = connect_pieces(pieces, [Point(a) for a in anchors], households)
    # buildings follow their anchors (a detached part that moved takes its buildings along)
    where = assign_points(pieces, [Point(a) for a in anchors])
    out: list[tuple[BaseGeometry, list[int]]] = [(g, []) for g in pieces]
    for b, j in enumerate(where):
        out[j][1].append(b)
    return [(g, grp) for g, grp in out if not g.is_empty]  # a piece left without buildings still covers land


def _clusters(geom: BaseGeometry, gap_tol_m: float) -> list[BaseGeometry]:
    """The polygons of ``geom`` grouped into connected pieces (parts closer than ``gap_tol_m`` touch)."""
    parts = polygons_of(geom)
    if len(parts) <= 1:
        return [geom] if parts else []
    comp = list(range(len(parts)))

    def find(i):
        while comp[i] != i:
            comp[i] = comp[comp[i]]
            i = comp[i]
        return i

    for i in range(len(parts)):
        for j in range(i + 1, len(parts)):
            if parts[i].distance(parts[j]) < gap_tol_m:
                comp[find(i)] = find(j)
    groups: dict[int, list] = {}
    for i, p in enumerate(parts):
        groups.setdefault(find(i), []).append(p)
    return [safe_union(g) for g in groups.values()]


def connect_pieces(
    pieces: list[BaseGeometry], anchors: list[Point], households: list[float], gap_tol_m: float = 0.1
) -> list[BaseGeometry]:
    """Make every piece of a split block one connected polygon.

    The union of a group's building cells can fall apart: a cell clipped by a concave block, or the cell
    of another group's building lying in between, leaves a detached part (in the demo, fragments of
    7 and 73 m² a few decimetres from their piece, which made two grids non-contiguous). Each piece keeps
    the part holding most of its households (then the largest); every other part goes to the
    neighbouring piece it shares the longest border with, so the pieces still tile the block."""
    pieces = list(pieces)
    for _ in range(4 * len(pieces) + 4):
        moved = False
        for i, piece in enumerate(pieces):
            parts = _clusters(piece, gap_tol_m)
            if len(parts) <= 1:
                continue

            def weight(part):
                shapely.prepare(part)
                inside = [h for a, h in zip(anchors, households, strict=True) if part.intersects(a)]
                return (sum(inside), len(inside), part.area)

            parts.sort(key=weight, reverse=True)
            keep = parts[0]
            for part in parts[1:]:
                others = [j for j in range(len(pieces)) if j != i and not pieces[j].is_empty]
                if not others:
                    keep = safe_union([keep, part])
                    continue
                ring = part.boundary
                j = max(
                    others,
                    key=lambda q: (
                        ring.intersection(pieces[q].buffer(gap_tol_m)).length,
                        -pieces[q].distance(part),
                    ),
                )
                pieces[j] = safe_union([pieces[j], part])
                moved = True
            pieces[i] = keep
        if not moved:
            break
    return pieces
