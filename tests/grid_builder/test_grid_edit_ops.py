"""Grid edit operations and the invariant validator, on the real demo grids (read from the database, the
operations themselves are pure)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point

from grid_builder.edit.errors import EditRefused
from grid_builder.edit.invariants import check_layout, refuse_if_broken
from grid_builder.edit.ops import apply_ops, parse_ops, shared_length
from grid_builder.edit.outcome import figures, settle
from grid_builder.edit.service import load_layout
from grid_builder.geom import to_wgs84
from tests.grid_builder._edit_helpers import independent_problems, lonlat, shared_vertices


@pytest.fixture(scope="module")
def demo(engine, jurisdictions):
    """The first test community's layout (metric) as the database holds it."""
    with engine.connect() as conn:
        _info, layout, _versions = load_layout(conn, jurisdictions["community"])
    return layout


def apply(layout, raw):
    """Apply JSON operations to a copy, validate the whole community; the layout is left as it was."""
    before, seq = dict(layout.grids), layout.next_seq
    try:
        res, moved = apply_ops(layout, parse_ops(raw))
        refuse_if_broken(check_layout(layout.community_code, layout.community, res.grids, layout.buildings,
                                      focus=set(res.affected)))
    finally:
        layout.grids, layout.next_seq = before, seq
    return res, moved


def refused(layout, raw) -> EditRefused:
    with pytest.raises(EditRefused) as info:
        apply(layout, raw)
    assert info.value.detail["rule"] == info.value.rule
    return info.value


def test_the_demo_community_is_sound(demo):
    assert len(demo.grids) >= 2 and len(demo.buildings) > 50
    assert check_layout(demo.community_code, demo.community, demo.grids, demo.buildings) == []
    assert independent_problems(demo, demo.grids) == []


def test_moving_a_shared_vertex_moves_both_neighbours(demo):
    for a, b, p in shared_vertices(demo):
        q = Point(p.x + 2.0, p.y + 1.5)
        try:
            res, _ = apply(demo, [{"op": "move_vertex", "from": lonlat(p), "to": lonlat(q)}])
        except EditRefused:
            continue
        assert res.changed == sorted([a, b]) and not res.created and not res.retired
        for code in (a, b):  # the new point is a vertex of both: the edge stays shared
            assert min(Point(c).distance(q) for c in _coords(res.grids[code])) < 1e-6
        assert shared_length(res.grids[a], res.grids[b]) > 5
        assert independent_problems(demo, res.grids) == []
        return
    pytest.fail("no shared vertex of the demo community could be moved by 2.5 m")


def _coords(geom):
    return [tuple(c) for poly in geom.geoms for c in np.asarray(poly.exterior.coords)[:, :2]]


def test_a_vertex_on_the_community_edge_cannot_leave_it(demo):
    code = sorted(demo.grids)[0]
    poly = demo.grids[code].geoms[0]
    edge = demo.community.boundary
    p = next(Point(c) for c in poly.exterior.coords if edge.distance(Point(c)) < 0.01)
    centre = demo.community.centroid
    q = Point(p.x + (p.x - centre.x) / p.distance(centre) * 8, p.y + (p.y - centre.y) / p.distance(centre) * 8)
    err = refused(demo, [{"op": "move_vertex", "from": lonlat(p), "to": lonlat(q)}])
    assert err.rule in ("gap", "overhang", "self_intersection")
    assert err.detail["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_a_vertex_dragged_across_a_neighbour_is_refused(demo):
    a, b, p = shared_vertices(demo)[0]
    far = demo.grids[b].centroid
    q = Point(p.x + (far.x - p.x) * 3, p.y + (far.y - p.y) * 3)  # well past the neighbour
    err = refused(demo, [{"op": "move_vertex", "from": lonlat(p), "to": lonlat(q)}])
    assert err.rule in ("overlap", "self_intersection", "overhang", "gap", "building_stranded", "not_connected")


def test_no_vertex_there(demo):
    c = demo.community.centroid
    outside = Point(c.x + 50_000, c.y)
    assert refused(demo, [{"op": "move_vertex", "from": lonlat(outside), "to": lonlat(c)}]).rule == "vertex_not_found"


def _near_buildings(demo, a, b):
    """Buildings of grid a, nearest to grid b first."""
    mine = [x for x in demo.buildings if demo.grids[a].contains(x.anchor)]
    return sorted(mine, key=lambda x: demo.grids[b].distance(x.footprint))


def test_moving_buildings_to_a_neighbour_takes_their_households(demo):
    for a, b, _p in shared_vertices(demo)[:40]:
        for bld in _near_buildings(demo, a, b)[:6]:
            try:
                res, moved = apply(demo, [{"op": "move_buildings", "buildings": [bld.id], "to": b}])
            except EditRefused:
                continue
            assert moved == {bld.id: [a, b]}
            assert res.grids[b].contains(bld.anchor) and not res.grids[a].contains(bld.anchor)
            figs = figures(demo, res)
            assert any(m["building"] == bld.id and m["to"] == b for m in figs["moved_buildings"])
            assert independent_problems(demo, res.grids) == []
            out = settle(demo, res)  # micro-grids of both grids rebuilt and nested
            assert bld.id in out[b].building_ids
            assert sum(len(m.building_ids) for m in out[b].microgrids) == len(out[b].building_ids)
            return
    pytest.fail("no building could move to a neighbouring grid")


def test_emptying_a_grid_or_an_unknown_building_is_refused(demo):
    code = min(demo.grids, key=lambda c: sum(1 for x in demo.buildings if demo.grids[c].contains(x.anchor)))
    other = next(c for c in sorted(demo.grids) if c != code and shared_length(demo.grids[c], demo.grids[code]) > 1)
    ids = [x.id for x in demo.buildings if demo.grids[code].contains(x.anchor)]
    assert refused(demo, [{"op": "move_buildings", "buildings": ids, "to": other}]).rule == "grid_emptied"
    assert refused(demo, [{"op": "move_buildings", "buildings": [-5], "to": other}]).rule == "unknown_building"


def _lines_across(geom, n=8):
    """Straight lines through the grid's centroid at n angles, long enough to cross it."""
    c = geom.centroid
    r = 2 * max(geom.bounds[2] - geom.bounds[0], geom.bounds[3] - geom.bounds[1])
    for k in range(n):
        t = np.pi * k / n
        yield LineString([(c.x - r * np.cos(t), c.y - r * np.sin(t)), (c.x + r * np.cos(t), c.y + r * np.sin(t))])


def _ll(line):
    return [list(c) for c in to_wgs84(line).coords]


def test_splitting_a_grid_retires_its_code_and_codes_the_pieces(demo):
    for code in sorted(demo.grids):
        for line in _lines_across(demo.grids[code]):
            try:
                res, _ = apply(demo, [{"op": "split", "grid": code, "line": _ll(line)}])
            except EditRefused:
                continue
            assert res.retired == [code] and len(res.created) >= 2
            assert all(c.startswith(demo.community_code) and int(c[-3:]) >= demo.next_seq for c in res.created)
            assert res.lineage == [{"kind": "split", "old": [code], "new": res.created}]
            assert abs(sum(res.grids[c].area for c in res.created) - demo.grids[code].area) < 1.0
            assert independent_problems(demo, res.grids) == []
            return
    pytest.fail("no straight line split a demo grid")


def test_bad_split_lines_are_refused(demo):
    code = sorted(demo.grids)[0]
    g = demo.grids[code]
    c = g.representative_point()
    bow = LineString([(c.x - 500, c.y), (c.x + 500, c.y + 3), (c.x + 500, c.y - 3), (c.x - 500, c.y + 1)])
    assert refused(demo, [{"op": "split", "grid": code, "line": _ll(bow)}]).rule == "split_line_self_intersecting"
    inside = LineString([(c.x - 500, c.y), (c.x, c.y)])
    if g.buffer(-1).contains(c):
        assert refused(demo, [{"op": "split", "grid": code, "line": _ll(inside)}]).rule == "split_line_open"
    assert refused(demo, [{"op": "split", "grid": code, "line": [[121.5, 31.2]]}]).rule == "split_line_open"


def test_merging_adjacent_grids_and_refusing_non_adjacent_ones(demo):
    a, b, _p = shared_vertices(demo)[0]
    res, _ = apply(demo, [{"op": "merge", "grids": [a, b]}])
    (new,) = res.created
    assert res.retired == sorted([a, b]) and res.lineage[0] == {"kind": "merge", "old": sorted([a, b]), "new": [new]}
    assert abs(res.grids[new].area - demo.grids[a].area - demo.grids[b].area) < 1.0
    codes = sorted(demo.grids)
    apart = [(x, y) for i, x in enumerate(codes) for y in codes[i + 1:] if demo.grids[x].distance(demo.grids[y]) > 1]
    if apart:
        err = refused(demo, [{"op": "merge", "grids": list(apart[0])}])
        assert err.rule == "merge_not_adjacent" and err.detail["geometry"] is not None
    assert refused(demo, [{"op": "merge", "grids": [a]}]).rule == "merge_too_few"
    assert refused(demo, [{"op": "merge", "grids": [a, "310101999999999"]}]).rule == "unknown_grid"


def test_malformed_operations_are_refused(demo):
    for raw in ([], [{"op": "paint"}], [{"op": "move_vertex", "from": [1], "to": [2, 3]}],
                [{"op": "move_buildings", "buildings": "all", "to": "1"}]):
        assert refused(demo, raw).rule == "bad_operation"


def test_fast_membership_and_cells_agree_with_the_plain_ones(demo):
    """The vectorised building membership, the Voronoi cells of a few buildings and the overlap bound give
    the same answers as the one-by-one versions."""
    from grid_builder.blocks import building_cells
    from grid_builder.edit.ops import grid_of, grids_of
    from grid_builder.validate import check_overlaps

    pts = [b.anchor for b in demo.buildings]
    for g in list(demo.grids.values())[:3]:  # points on the boundaries (covered, not contained) too
        pts += [Point(c) for c in list(g.geoms[0].exterior.coords)[:20:3]]
    xy = np.array([[p.x, p.y] for p in pts])
    assert grids_of(demo.grids, xy) == [grid_of(demo.grids, p) for p in pts]
    assert sum(1 for c in grids_of(demo.grids, xy[len(demo.buildings):]) if c is not None) >= 3

    code = max(demo.grids, key=lambda c: sum(1 for b in demo.buildings if demo.grids[c].contains(b.anchor)))
    fps = [b.footprint for b in demo.buildings if demo.grids[code].contains(b.anchor)][:40]
    full = building_cells(demo.grids[code], fps)
    part = building_cells(demo.grids[code], fps, only={0, 5, 7})
    for i in range(len(fps)):
        if i in (0, 5, 7):
            assert part[i].equals(full[i]) and part[i].area > 0
        else:
            assert part[i].is_empty

    a, b, _p = shared_vertices(demo)[0]
    shifted = dict(demo.grids)
    shifted[a] = demo.grids[a].buffer(3.0)  # overlaps its neighbours by far more than 1 m²
    union = shapely.union_all(list(shifted.values()))
    plain = check_overlaps(shifted, 1.0)
    assert plain and [i.codes for i in check_overlaps(shifted, 1.0, union=union)] == [i.codes for i in plain]
    assert check_overlaps(demo.grids, 1.0, union=shapely.union_all(list(demo.grids.values()))) == []


def test_unit_strips_are_fitted_at_the_grid_edge_not_rebuilt(engine):
    """A grid whose micro-grids include unit-range strips of a large building: trimming or widening the grid
    by a few m² next to a strip keeps every micro-grid code (the strip keeps its unit range); cutting away
    most of a strip rebuilds."""
    from sqlalchemy import text

    from grid_builder.edit import store
    from grid_builder.edit.invariants import check_microgrids
    from grid_builder.edit.outcome import adjust_microgrids
    from grid_builder.edit.service import to_metric_many
    from grid_builder.records import Area

    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT g.community_code, m.parent_code FROM grid m JOIN grid g ON g.code = m.parent_code "
            "AND g.valid_to IS NULL WHERE m.level = 'microgrid' AND m.valid_to IS NULL "
            "AND m.properties ? 'building_units' ORDER BY m.code LIMIT 1")).first()
        assert row is not None, "the test city has large buildings split into unit strips"
        _info, layout, _v = load_layout(conn, row[0])
        rows = store.current_microgrids(conn, [row[1]])
    code = row[1]
    old = [Area(r["code"], "microgrid", code, g, float(r["households"]), [], list(r["flags"] or []), r["part"])
           for r, g in zip(rows, to_metric_many([r["geom"] for r in rows]), strict=True)]
    grid = layout.grids[code]
    strip = next(m for m in old if m.part is not None)
    edge = strip.geom.boundary.intersection(grid.boundary.buffer(0.01))
    assert edge.length > 4
    at = edge.interpolate(0.5, normalized=True)
    for new in (grid.difference(at.buffer(1.5)), grid.union(at.buffer(1.5))):
        members = [b for b in layout.buildings if new.contains(b.anchor)]
        fitted = adjust_microgrids(code, new, old, members)
        assert fitted is not None
        assert sorted(m.code for m in fitted) == sorted(m.code for m in old)
        again = next(m for m in fitted if m.code == strip.code)
        assert again.part == strip.part and abs(again.geom.area - strip.geom.area) < 10
        assert check_microgrids({code: new}, {code: {m.code: m.geom for m in fitted}}) == []
    cut = grid.difference(strip.geom.buffer(-0.01).representative_point().buffer(1e4).intersection(strip.geom))
    members = [b for b in layout.buildings if cut.contains(b.anchor)]
    assert adjust_microgrids(code, cut, old, members) is None


def test_snapper_prefers_a_vertex_then_the_nearest_point_on_a_line(demo):
    from grid_builder.edit.snap import Snapper, targets_from

    fp = max((b.footprint for b in demo.buildings), key=lambda g: g.length)
    ring = np.asarray(fp.geoms[0].exterior.coords)
    snapper = Snapper(targets_from([], [], [fp]))
    v = ring[0]
    q, target, d = snapper.snap(Point(v[0] + 0.3, v[1] + 0.4), 1.0)
    assert target is not None and target.kind == "building" and (q.x, q.y) == (v[0], v[1]) and abs(d - 0.5) < 1e-9
    seg = np.hypot(*np.diff(ring, axis=0).T)
    k = int(np.argmax(seg))  # the middle of the longest edge, 0.8 m off it: no vertex within 2 m
    assert seg[k] > 6.0
    mid = (ring[k] + ring[k + 1]) / 2
    normal = np.array([-(ring[k + 1] - ring[k])[1], (ring[k + 1] - ring[k])[0]]) / seg[k]
    p = Point(mid + 0.8 * normal)
    q, target, d = snapper.snap(p, 2.0)
    assert target is not None and d <= 0.8 + 1e-6 and fp.boundary.distance(q) < 1e-6
    assert min(np.hypot(*(ring - [q.x, q.y]).T)) > 2.0  # not a vertex: a point on the outline
    assert snapper.snap(p, 0.0)[1] is None and Snapper([]).snap(p, 5.0)[1] is None
