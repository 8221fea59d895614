"""Sample edits on a real layout: shared vertices, a movable vertex, trying an edit (tests, benchmark)."""

from __future__ import annotations

import numpy as np
from shapely.geometry import Point

from grid_builder.edit.ops import Layout, shared_length
from grid_builder.geom import polygons_of, to_wgs84


def lonlat(p: Point) -> list[float]:
    """A metric point as [lon, lat]."""
    q = to_wgs84(p)
    return [q.x, q.y]


def shared_vertices(layout: Layout, margin: float = 3.0) -> list[tuple[str, str, Point]]:
    """Vertices on a boundary shared by exactly two grids, at least ``margin`` m from the community edge and
    from every other grid: (code a, code b, vertex), in a stable order."""
    out = []
    codes = sorted(layout.grids)
    edge = layout.community.boundary
    for i, a in enumerate(codes):
        for b in codes[i + 1:]:
            ga, gb = layout.grids[a], layout.grids[b]
            if shared_length(ga, gb) < 5:
                continue
            for poly in polygons_of(ga):
                for x, y in np.asarray(poly.exterior.coords)[:-1, :2]:
                    p = Point(x, y)
                    if gb.boundary.distance(p) > 0.01 or edge.distance(p) < margin:
                        continue
                    if any(layout.grids[c].distance(p) < margin for c in codes if c not in (a, b)):
                        continue
                    out.append((a, b, p))
    return out


def try_apply(layout: Layout, raw: list) -> object:
    """The result of JSON operations on a copy of the layout when they keep every invariant, else None."""
    from grid_builder.edit.errors import EditRefused
    from grid_builder.edit.invariants import check_layout
    from grid_builder.edit.ops import apply_ops, parse_ops

    before, seq = dict(layout.grids), layout.next_seq
    try:
        res, _ = apply_ops(layout, parse_ops(raw))
        issues = check_layout(layout.community_code, layout.community, res.grids, layout.buildings,
                              focus=set(res.affected))
        return None if issues else res
    except EditRefused:
        return None
    finally:
        layout.grids, layout.next_seq = before, seq


def movable_vertex(layout: Layout, must_touch: str | None = None, skip: int = 0) -> tuple[list, list, str, str]:
    """A shared vertex that can move by 2.5 m keeping every invariant: (from, to, code a, code b)."""
    found = 0
    for a, b, p in shared_vertices(layout):
        if must_touch is not None and must_touch not in (a, b):
            continue
        q = Point(p.x + 2.0, p.y + 1.5)
        raw = [{"op": "move_vertex", "from": lonlat(p), "to": lonlat(q)}]
        if try_apply(layout, raw) is not None:
            if found == skip:
                return lonlat(p), lonlat(q), a, b
            found += 1
    raise AssertionError("no movable shared vertex")
