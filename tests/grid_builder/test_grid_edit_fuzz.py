"""Seeded property test on the real demo grids: random edits that the engine accepts keep every invariant
(checked independently of the validator), and random edits that break one are always refused.

50 cases in `make test`, 1,000 under `make fuzz` (``fuzz_cases(50, 1000)``)."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import LineString, Point

from grid_builder.edit.errors import EditRefused
from grid_builder.edit.invariants import check_layout, refuse_if_broken
from grid_builder.edit.ops import apply_ops, parse_ops, shared_length
from grid_builder.edit.service import load_layout
from grid_builder.geom import to_wgs84
from tests.grid_builder._edit_helpers import independent_problems, lonlat, shared_vertices


@pytest.fixture(scope="module")
def layouts(engine, jurisdictions):
    """Both test communities' layouts."""
    out = []
    with engine.connect() as conn:
        for key in ("community", "other_community"):
            out.append(load_layout(conn, jurisdictions[key])[1])
    return out


def _run(layout, raw):
    before, seq = dict(layout.grids), layout.next_seq
    try:
        res, _ = apply_ops(layout, parse_ops(raw))
        refuse_if_broken(check_layout(layout.community_code, layout.community, res.grids, layout.buildings,
                                      focus=set(res.affected)))
        return res
    finally:
        layout.grids, layout.next_seq = before, seq


def _line(rng, geom, through_inside=True):
    c = geom.representative_point() if through_inside else geom.centroid
    t = rng.uniform(0, np.pi)
    r = 2 * max(geom.bounds[2] - geom.bounds[0], geom.bounds[3] - geom.bounds[1])
    d = np.array([np.cos(t), np.sin(t)])
    return LineString([(c.x - r * d[0], c.y - r * d[1]), (c.x + r * d[0], c.y + r * d[1])])


def _ll(line):
    return [list(c) for c in to_wgs84(line).coords]


def valid_candidate(rng, layout, sv):
    """An edit that may or may not keep the invariants (the engine decides)."""
    kind = rng.integers(4)
    codes = sorted(layout.grids)
    if kind == 0:
        a, b, p = sv[rng.integers(len(sv))]
        ang, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 6.0)
        return [{"op": "move_vertex", "from": lonlat(p),
                 "to": lonlat(Point(p.x + dist * np.cos(ang), p.y + dist * np.sin(ang)))}]
    if kind == 1:
        a, b, _p = sv[rng.integers(len(sv))]
        mine = sorted((x for x in layout.buildings if layout.grids[a].contains(x.anchor)),
                      key=lambda x: layout.grids[b].distance(x.footprint))
        k = int(rng.integers(1, 4))
        return [{"op": "move_buildings", "buildings": [x.id for x in mine[:k]], "to": b}]
    if kind == 2:
        code = codes[rng.integers(len(codes))]
        return [{"op": "split", "grid": code, "line": _ll(_line(rng, layout.grids[code]))}]
    a, b, _p = sv[rng.integers(len(sv))]
    return [{"op": "merge", "grids": [a, b]}]


def invalid_edit(rng, layout):
    """An edit that breaks a rule whatever the engine thinks of it."""
    codes = sorted(layout.grids)
    kind = rng.integers(5)
    code = codes[rng.integers(len(codes))]
    g = layout.grids[code]
    if kind == 0:  # a vertex of the community edge pushed 5–20 m outwards: a gap or an overhang
        edge = layout.community.boundary
        pts = [Point(c) for poly in g.geoms for c in poly.exterior.coords if edge.distance(Point(c)) < 0.01]
        if pts:
            p = pts[rng.integers(len(pts))]
            c = layout.community.centroid
            v = np.array([p.x - c.x, p.y - c.y])
            v = v / np.hypot(*v) * rng.uniform(5, 20)
            q = Point(p.x + v[0], p.y + v[1])
            if not layout.community.buffer(1).contains(q):
                return [{"op": "move_vertex", "from": lonlat(p), "to": lonlat(q)}]
        kind = 1
    if kind == 1:  # every building out of a grid
        ids = [x.id for x in layout.buildings if g.contains(x.anchor)]
        nb = [c for c in codes if c != code and shared_length(layout.grids[c], g) > 1]
        if ids and nb:
            return [{"op": "move_buildings", "buildings": ids, "to": nb[0]}]
        kind = 2
    if kind == 2:  # a split line that ends inside the grid
        c = g.representative_point()
        if g.buffer(-1).contains(c):
            far = Point(c.x + 5000 * np.cos(rng.uniform(0, 6.28)), c.y + 5000 * np.sin(rng.uniform(0, 6.28)))
            return [{"op": "split", "grid": code, "line": _ll(LineString([far, c]))}]
        kind = 3
    if kind == 3:  # a split line crossing itself
        c = g.representative_point()
        r = rng.uniform(200, 2000)
        bow = LineString([(c.x - r, c.y), (c.x + r, c.y + 3), (c.x + r, c.y - 3), (c.x - r, c.y + 1)])
        return [{"op": "split", "grid": code, "line": _ll(bow)}]
    apart = [(x, y) for i, x in enumerate(codes) for y in codes[i + 1:] if layout.grids[x].distance(layout.grids[y]) > 1]
    if apart:
        return [{"op": "merge", "grids": list(apart[rng.integers(len(apart))])}]
    return [{"op": "merge", "grids": [code]}]


@pytest.mark.fuzz
def test_random_edits_keep_every_invariant_or_are_refused(layouts, fuzz_cases):
    n = fuzz_cases(50, 1000)
    accepted = refused_invalid = 0
    svs = [shared_vertices(lay) for lay in layouts]
    for seed in range(n):
        rng = np.random.default_rng(seed)
        i = int(rng.integers(len(layouts)))
        layout, sv = layouts[i], svs[i]
        raw = valid_candidate(rng, layout, sv)
        try:
            res = _run(layout, raw)
        except EditRefused:
            pass
        else:
            accepted += 1
            problems = independent_problems(layout, res.grids)
            assert not problems, (seed, raw, problems[:3])
        bad = invalid_edit(rng, layout)
        with pytest.raises(EditRefused):
            _run(layout, bad)
        refused_invalid += 1
    assert refused_invalid == n
    assert accepted >= n // 4, f"only {accepted} of {n} random edits were accepted: the test would be vacuous"
