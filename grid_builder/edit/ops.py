"""The edit operations on a community's grids, on plain data (metric shapely geometries, UTM 51N).

An edit is a list of operations applied in order to a `Layout` (the community's current grids and
buildings); the result says which grids changed, which codes were created and retired, and the lineage
(old → new codes). Operations arrive as JSON with lon/lat coordinates (`parse_ops`):

- ``{"op": "move_vertex", "from": [lon, lat], "to": [lon, lat]}``: every grid with a vertex within
  ``SNAP_M`` of ``from`` (or an edge passing within it: the vertex is inserted there first) moves it to
  ``to`` — both neighbours of a shared boundary change together, so the edge stays shared;
- ``{"op": "move_buildings", "buildings": [ids], "to": "<grid code>"}``: the buildings (and their
  households) move to a neighbouring grid; the boundary follows the footprints (the buildings' Voronoi
  cells inside their grid, the cells the micro-grid builder uses);
- ``{"op": "split", "grid": "<code>", "line": [[lon, lat], ...]}``: cut a grid by a simple line crossing
  it from edge to edge;
- ``{"op": "merge", "grids": ["<code>", ...]}``: merge two or more adjacent grids.

Code rule: a grid whose geometry changes keeps its code (a new version); a split retires the code and
every piece gets a new code; a merge retires every merged code and the result gets a new code. New codes
take the community's next unused 3-digit sequence numbers (codes are never reused), pieces numbered
west→east, north→south.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
import shapely.ops
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, mapping
from shapely.geometry.base import BaseGeometry

from grid_builder.blocks import building_cells
from grid_builder.codes import west_east_north_south
from grid_builder.edit.errors import EditRefused
from grid_builder.geom import (
    as_multipolygon,
    polygons_of,
    safe_difference,
    safe_intersection,
    safe_union,
    to_metric,
    to_wgs84,
)

SNAP_M = 1.0  # a dragged vertex / edge is found within this distance
ADJACENT_M = 1.0  # grids sharing at least this much boundary are neighbours
MIN_PIECE_M2 = 10.0  # a split piece smaller than this is refused
CELL_REACH_M = 60.0  # a moved building takes its Voronoi cell within this distance of its footprint
MAX_OPS = 50


@dataclass(frozen=True)
class EditBuilding:
    """A building as an edit sees it: metric anchor (where it belongs), footprint and households."""

    id: int
    anchor: Point
    footprint: BaseGeometry
    households: float


@dataclass
class Layout:
    """A community's grids at one moment (metric), its buildings and the next free grid sequence number."""

    community_code: str
    community: BaseGeometry
    grids: dict[str, BaseGeometry]
    buildings: list[EditBuilding]
    next_seq: int = 1
    seq_width: int = 3  # digits of a new code's sequence number (grids 3, micro-grids 2)
    _xy: np.ndarray | None = field(default=None, repr=False, compare=False)

    def anchors_xy(self) -> np.ndarray:
        """The buildings' anchors as an (n, 2) array (computed once)."""
        if self._xy is None or len(self._xy) != len(self.buildings):
            self._xy = anchor_xy(self.buildings)
        return self._xy


@dataclass
class Op:
    """One parsed operation (metric coordinates)."""

    kind: str
    args: dict[str, Any]


@dataclass
class EditResult:
    """The grids after an edit and what happened to the codes."""

    grids: dict[str, BaseGeometry]
    changed: list[str] = field(default_factory=list)  # kept codes whose geometry changed
    created: list[str] = field(default_factory=list)  # new codes (split pieces, merge results)
    retired: list[str] = field(default_factory=list)  # codes that end (split / merged)
    lineage: list[dict] = field(default_factory=list)  # {"kind", "old": [...], "new": [...]}

    @property
    def affected(self) -> list[str]:
        """Codes written by the edit (changed + created), sorted."""
        return sorted({*self.changed, *self.created})


def place(geom: BaseGeometry | None) -> dict | None:
    """GeoJSON (lon/lat) of a metric geometry, for error details and figures."""
    if geom is None or geom.is_empty:
        return None
    return mapping(to_wgs84(geom))


def _lonlat(value: Any, what: str) -> tuple[float, float]:
    try:
        lon, lat = float(value[0]), float(value[1])
    except (TypeError, ValueError, IndexError):
        raise EditRefused("bad_operation", f"{what} 须为 [经度, 纬度] ({what} must be [lon, lat])") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90) or not (np.isfinite(lon) and np.isfinite(lat)):
        raise EditRefused("bad_operation", f"{what} 坐标超出范围 ({what} out of range)")
    return lon, lat


def _metric_point(value: Any, what: str) -> Point:
    return to_metric(Point(_lonlat(value, what)))


def _codes(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(c, str) and c.isdigit() for c in value):
        raise EditRefused("bad_operation", f"{what} 须为网格编码 ({what} must be grid codes)")
    return list(value)


def parse_op(raw: Any) -> Op:
    """One operation from JSON (lon/lat) to an `Op` (metric); a malformed one is refused."""
    kind = raw.get("op") if isinstance(raw, dict) else None
    if kind == "move_vertex":
        return Op(kind, {"from": _metric_point(raw.get("from"), "from"), "to": _metric_point(raw.get("to"), "to")})
    if kind == "move_buildings":
        ids = raw.get("buildings")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
            raise EditRefused("bad_operation", "buildings 须为建筑编号列表 (buildings must be building ids)")
        return Op(kind, {"buildings": sorted(set(ids)), "to": _codes(raw.get("to"), "to")[0]})
    if kind == "split":
        line = raw.get("line")
        if not isinstance(line, list) or len(line) < 2:
            raise EditRefused("split_line_open", "分割线至少需要两个点 (a split line needs two points or more)")
        pts = [_lonlat(p, "line") for p in line]
        return Op(kind, {"grid": _codes(raw.get("grid"), "grid")[0], "line": to_metric(LineString(pts))})
    if kind == "merge":
        codes = _codes(raw.get("grids"), "grids")
        if len(set(codes)) < 2:
            raise EditRefused("merge_too_few", "合并至少需要两个不同的网格 (merge needs two grids or more)", codes)
        return Op(kind, {"grids": sorted(set(codes))})
    raise EditRefused("bad_operation", f"未知的编辑操作 {kind!r} (unknown operation; move_vertex, "
                      "move_buildings, split, merge)")


def parse_ops(raw: Any) -> list[Op]:
    """A list of JSON operations to `Op`s (at least one, at most ``MAX_OPS``)."""
    if not isinstance(raw, list) or not raw:
        raise EditRefused("bad_operation", "编辑至少需要一个操作 (an edit needs at least one operation)")
    if len(raw) > MAX_OPS:
        raise EditRefused("bad_operation", f"一次编辑最多 {MAX_OPS} 个操作 (at most {MAX_OPS} operations)")
    return [parse_op(x) for x in raw]


# --- move a shared vertex -------------------------------------------------------------------------


def _seg_distances(pts: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from ``p`` to each segment pts[i]→pts[i+1] (ring, closing segment included) and the
    parameter of the nearest point on it."""
    a, b = pts, np.roll(pts, -1, axis=0)
    ab = b - a
    len2 = np.maximum((ab**2).sum(axis=1), 1e-12)
    t = np.clip(((p - a) * ab).sum(axis=1) / len2, 0.0, 1.0)
    near = a + ab * t[:, None]
    return np.hypot(*(near - p).T), t


def move_in_ring(coords: np.ndarray, p: np.ndarray, q: np.ndarray, tol: float) -> np.ndarray | None:
    """The closed ring with its vertex nearest ``p`` (within ``tol``) moved to ``q``; when only an edge
    passes within ``tol``, ``q`` is inserted into that edge. None when the ring does not come near ``p``."""
    pts = np.asarray(coords)[:-1, :2]
    if len(pts) < 3:
        return None
    d = np.hypot(*(pts - p).T)
    i = int(np.argmin(d))
    if d[i] <= tol:
        pts = pts.copy()
        pts[i] = q
    else:
        sd, _t = _seg_distances(pts, p)
        j = int(np.argmin(sd))
        if sd[j] > tol:
            return None
        pts = np.insert(pts, j + 1, q, axis=0)
    return np.vstack([pts, pts[:1]])


def _move_polygon(poly: Polygon, p: np.ndarray, q: np.ndarray, tol: float) -> tuple[Polygon, bool]:
    rings = [poly.exterior, *poly.interiors]
    out, touched = [], False
    for ring in rings:
        moved = move_in_ring(np.asarray(ring.coords), p, q, tol)
        touched |= moved is not None
        out.append(moved if moved is not None else np.asarray(ring.coords)[:, :2])
    return (Polygon(out[0], out[1:]) if touched else poly), touched


def move_vertex(grids: dict[str, BaseGeometry], p: Point, q: Point, tol: float = SNAP_M) -> list[str]:
    """Move the vertex at ``p`` to ``q`` in every grid that has it (in place); returns the changed codes."""
    pa, qa = np.array([p.x, p.y]), np.array([q.x, q.y])
    changed = []
    for code, geom in grids.items():
        if geom.distance(p) > tol:
            continue
        parts, touched = [], False
        for poly in polygons_of(geom):
            new, t = _move_polygon(poly, pa, qa, tol)
            parts.append(new)
            touched |= t
        if not touched:
            continue
        new_geom = MultiPolygon(parts)
        if not new_geom.is_valid:
            raise EditRefused("self_intersection", f"移动顶点后网格 {code} 自相交 (moving the vertex makes grid "
                              f"{code} self-intersect)", [code], place(shapely.make_valid(new_geom)))
        grids[code] = new_geom
        changed.append(code)
    if not changed:
        raise EditRefused("vertex_not_found", f"{tol:g} 米内没有网格顶点或边界 (no grid vertex or edge within "
                          f"{tol:g} m of 'from')", [], place(p.buffer(tol)))
    return changed


# --- move buildings ---------------------------------------------------------------------------------


def grid_of(grids: dict[str, BaseGeometry], pt: Point) -> str | None:
    """The grid holding a point: the one containing it, else the first (by code) covering it."""
    covering = [c for c in sorted(grids) if grids[c].covers(pt)]
    inside = [c for c in covering if grids[c].contains(pt)]
    found = inside or covering
    return found[0] if found else None


def anchor_xy(buildings: list[EditBuilding]) -> np.ndarray:
    """The buildings' anchors as an (n, 2) array (metric)."""
    if not buildings:
        return np.empty((0, 2))
    return shapely.get_coordinates(np.array([b.anchor for b in buildings], dtype=object))


def grids_of(grids: dict[str, BaseGeometry], xy: np.ndarray) -> list[str | None]:
    """`grid_of` for many points at once (same answer: the first grid by code containing the point, else
    the first covering it): vectorised point-in-polygon over each grid's bounding box only."""
    n = len(xy)
    inside = np.full(n, -1)
    on_edge = np.full(n, -1)
    codes = sorted(grids)
    for k, code in enumerate(codes):
        g = grids[code]
        if g.is_empty:
            continue
        x0, y0, x1, y1 = g.bounds
        near = np.flatnonzero((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1))
        if not len(near):
            continue
        shapely.prepare(g)
        px, py = xy[near, 0], xy[near, 1]
        hit = shapely.contains_xy(g, px, py)
        first = near[hit & (inside[near] < 0)]
        inside[first] = k
        edge = near[~hit & (on_edge[near] < 0)]
        if len(edge):  # covered but not contained: on the boundary (intersects == covers for a point)
            on = shapely.intersects_xy(g, xy[edge, 0], xy[edge, 1])
            on_edge[edge[on]] = k
    best = np.where(inside >= 0, inside, on_edge)
    return [codes[int(i)] if i >= 0 else None for i in best]


def shared_length(a: BaseGeometry, b: BaseGeometry, tol: float = 0.05) -> float:
    """Length of boundary two polygons share (within ``tol``)."""
    if a.distance(b) > tol:
        return 0.0
    return float(a.boundary.intersection(b.buffer(tol)).length)


def _moved_cells(grid: BaseGeometry, members: list[EditBuilding], mids: set[int]) -> BaseGeometry:
    """The moved buildings' Voronoi cells inside their grid, within ``CELL_REACH_M`` of their footprints.

    Only buildings near that window are Voronoi sites: inside the window the cells are the same as with
    every building of the grid (a farther site is never the nearest there), and a cell reaching farther
    (a building alone in open ground) is cut at the window."""
    moved = safe_union([b.footprint for b in members if b.id in mids])
    window = moved.buffer(CELL_REACH_M)
    near = [b for b in members if b.id in mids or b.footprint.distance(window) <= CELL_REACH_M + 5.0]
    region = safe_intersection(grid, window)
    want = {i for i, b in enumerate(near) if b.id in mids}
    cells = building_cells(region, [b.footprint for b in near], only=want)
    return safe_union([cells[i] for i in sorted(want)])


def move_buildings(layout: Layout, grids: dict[str, BaseGeometry], ids: list[int], to: str) -> tuple[list[str], dict]:
    """Move buildings (by id) to grid ``to`` (in place): each building's cell inside its grid goes over.
    Returns (changed codes, {building id: [from, to]})."""
    if to not in grids:
        raise EditRefused("unknown_grid", f"目标网格 {to} 不在本社区 (target grid not in the community)", [to])
    by_id = {b.id: b for b in layout.buildings}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise EditRefused("unknown_building", f"建筑 {unknown} 不在本社区 (buildings not in the community)")
    sources: dict[str, list[int]] = {}
    for i in ids:
        src = grid_of(grids, by_id[i].anchor)
        if src is None:
            raise EditRefused("building_stranded", f"建筑 {i} 不在任何网格内 (building in no grid)", [],
                              place(by_id[i].footprint))
        if src == to:
            raise EditRefused("already_in_grid", f"建筑 {i} 已在网格 {to} 内 (building already in the grid)", [to],
                              place(by_id[i].footprint))
        sources.setdefault(src, []).append(i)
    moved: dict[int, list[str]] = {}
    for src, mids in sources.items():
        holds = grids_of({src: grids[src]}, layout.anchors_xy())
        members = [b for b, g in zip(layout.buildings, holds, strict=True) if g == src]
        if len(members) <= len(mids):
            raise EditRefused("grid_emptied", f"移走后网格 {src} 将没有建筑 (grid {src} would be left without "
                              "buildings)", [src], place(grids[src]))
        region = _moved_cells(grids[src], members, set(mids))
        if shared_length(region, grids[to]) < ADJACENT_M:
            raise EditRefused("not_adjacent", f"建筑所在区域与网格 {to} 不相邻 (the buildings' area does not "
                              f"touch grid {to})", [src, to], place(region))
        grids[src] = as_multipolygon(safe_difference(grids[src], region))
        grids[to] = as_multipolygon(safe_union([grids[to], region]))
        moved.update({i: [src, to] for i in mids})
    return sorted({*sources, to}), moved


# --- split and merge --------------------------------------------------------------------------------


def _extended(line: LineString, by: float = 1.0) -> LineString:
    """The line with both ends pushed out by ``by`` metres (an end drawn onto the boundary crosses it)."""
    c = np.asarray(line.coords)[:, :2]

    def push(end: np.ndarray, prev: np.ndarray) -> np.ndarray:
        v = end - prev
        n = float(np.hypot(*v))
        return end + v / n * by if n > 0 else end

    return LineString([push(c[0], c[1]), *c[1:-1], push(c[-1], c[-2])]) if len(c) >= 2 else line


def split_pieces(geom: BaseGeometry, line: LineString, code: str) -> list[BaseGeometry]:
    """The pieces of a grid cut by a line; refuses a self-intersecting line, a line ending inside the grid
    (open) and a line that leaves a piece below ``MIN_PIECE_M2``."""
    if not line.is_simple or not line.is_valid:
        raise EditRefused("split_line_self_intersecting", "分割线自相交 (the split line crosses itself)", [code],
                          place(line))
    inner = geom.buffer(-0.5)
    ends = [Point(line.coords[0]), Point(line.coords[-1])]
    if any(inner.contains(e) for e in ends):
        raise EditRefused("split_line_open", f"分割线的端点须在网格 {code} 之外或边界上 (the split line must cross "
                          "the grid from edge to edge)", [code], place(line))
    pieces = [p for p in shapely.ops.split(geom, _extended(line)).geoms if p.area > 0]
    if len(pieces) < 2:
        raise EditRefused("split_line_open", f"分割线没有穿过网格 {code} (the split line does not cut the grid)",
                          [code], place(line))
    small = [p for p in pieces if p.area < MIN_PIECE_M2]
    if small:
        raise EditRefused("split_piece_too_small", f"分割后有小于 {MIN_PIECE_M2:g} m² 的碎片 (a piece below "
                          f"{MIN_PIECE_M2:g} m²)", [code], place(safe_union(small)))
    return pieces


def _components(codes: list[str], grids: dict[str, BaseGeometry]) -> list[list[str]]:
    """Groups of ``codes`` connected through shared boundaries of at least ``ADJACENT_M``."""
    seen: set[str] = set()
    comps = []
    for start in codes:
        if start in seen:
            continue
        comp, stack = [], [start]
        seen.add(start)
        while stack:
            c = stack.pop()
            comp.append(c)
            for o in codes:
                if o not in seen and shared_length(grids[c], grids[o]) >= ADJACENT_M:
                    seen.add(o)
                    stack.append(o)
        comps.append(sorted(comp))
    return comps


def _new_codes(layout: Layout, n: int) -> list[str]:
    w = layout.seq_width
    if layout.next_seq + n - 1 > 10**w - 1:
        raise EditRefused("codes_exhausted", "编码已用尽 (no free codes left)")
    codes = [f"{layout.community_code}{s:0{w}d}" for s in range(layout.next_seq, layout.next_seq + n)]
    layout.next_seq += n
    return codes


def _known(grids: dict[str, BaseGeometry], codes: list[str]) -> None:
    missing = [c for c in codes if c not in grids]
    if missing:
        raise EditRefused("unknown_grid", f"网格 {missing} 不在本社区 (grids not in the community)", missing)


def _apply_one(layout: Layout, grids: dict[str, BaseGeometry], op: Op, res: EditResult, moved: dict) -> None:
    if op.kind == "move_vertex":
        changed = move_vertex(grids, op.args["from"], op.args["to"])
        res.lineage.append({"kind": "move_vertex", "old": changed, "new": changed})
    elif op.kind == "move_buildings":
        changed, m = move_buildings(layout, grids, op.args["buildings"], op.args["to"])
        moved.update(m)
        res.lineage.append({"kind": "move_buildings", "old": changed, "new": changed, "buildings": sorted(m)})
    elif op.kind == "split":
        code = op.args["grid"]
        _known(grids, [code])
        pieces = split_pieces(grids[code], op.args["line"], code)
        order = west_east_north_south([(p.centroid.x, p.centroid.y) for p in pieces])
        new = _new_codes(layout, len(pieces))
        del grids[code]
        for c, i in zip(new, order, strict=True):
            grids[c] = as_multipolygon(pieces[i])
        res.lineage.append({"kind": "split", "old": [code], "new": new})
    else:  # merge
        codes = op.args["grids"]
        _known(grids, codes)
        comps = _components(codes, grids)
        if len(comps) > 1:
            raise EditRefused("merge_not_adjacent", f"网格 {comps} 互不相邻，不能合并 (grids not adjacent)", codes,
                              place(safe_union([grids[c] for c in codes])))
        merged = _new_codes(layout, 1)
        grids[merged[0]] = as_multipolygon(safe_union([grids.pop(c) for c in codes]))
        res.lineage.append({"kind": "merge", "old": codes, "new": merged})


def apply_ops(layout: Layout, ops: list[Op]) -> tuple[EditResult, dict[int, list[str]]]:
    """Apply ``ops`` in order to a copy of the layout's grids. Returns the result and the buildings moved
    explicitly ({id: [from, to]}). Refusals of single operations raise `EditRefused`; the invariants of
    the whole result are checked by `invariants.check_result`."""
    before = layout.grids
    grids = dict(before)
    res = EditResult(grids)
    moved: dict[int, list[str]] = {}
    for op in ops:
        _apply_one(layout, grids, op, res, moved)
    res.retired = sorted(c for c in before if c not in grids)
    res.created = sorted(c for c in grids if c not in before)
    res.changed = sorted(c for c in grids if c in before and not grids[c].equals_exact(before[c], 0.0))
    return res, moved
