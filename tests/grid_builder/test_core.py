"""Pure-core tests on the real demo data files (no database): partitioner, blocks, codes, validator, H3."""

from __future__ import annotations

from collections import deque

import pytest
from shapely.affinity import translate
from shapely.geometry import Point, Polygon, box
from shapely.ops import unary_union

from grid_builder import h3grid
from grid_builder.blocks import assign_points, building_anchor, building_groups, connect_pieces, street_blocks
from grid_builder.build import BuildConfig, BuildingIn, EmptyCommunity, build_community
from grid_builder.codes import west_east_north_south
from grid_builder.demo_data import DEMO_BBOX, is_block_road, load_demo
from grid_builder.geom import n_parts, to_metric
from grid_builder.partition import adjacency, partition_units
from grid_builder.pipeline import BuildingRec, RoadIn, community_grids, provisional_boundaries
from grid_builder.validate import validate_community


@pytest.fixture(scope="module")
def demo(shared_data):
    return load_demo(str(shared_data))


@pytest.fixture(scope="module")
def provisional(demo):
    roads = [RoadIn(r.kind, r.geom, r.name, r.tags) for r in demo.roads]
    buildings = [BuildingRec(b.id, b.geom, int(b.households)) for b in demo.buildings]
    units, notes = provisional_boundaries(
        {c: (demo.district_names[c], g) for c, g in demo.districts.items()},
        DEMO_BBOX,
        roads,
        [],
        demo.water,
        buildings,
    )
    return units, roads, buildings


def _metric_inputs(demo, boundary_m):
    lines = [to_metric(r.geom) for r in demo.roads if is_block_road(r.kind, r.tags)]
    bm = [(b.id, to_metric(b.geom), b.households) for b in demo.buildings]
    inside = [BuildingIn(i, g, h) for i, g, h in bm if boundary_m.contains(building_anchor(g))]
    return lines, inside


def _connected(units: list[int], nbrs) -> bool:
    units = set(units)
    start = next(iter(units))
    seen, dq = {start}, deque([start])
    while dq:
        u = dq.popleft()
        for v in nbrs[u]:
            if v in units and v not in seen:
                seen.add(v)
                dq.append(v)
    return seen == units


def test_street_blocks_cover_the_area_and_follow_roads(demo):
    area = to_metric(box(121.484, 31.236, 121.492, 31.242))  # the Nanjing East Road blocks
    lines = [to_metric(r.geom) for r in demo.roads if is_block_road(r.kind, r.tags)]
    blocks = street_blocks(area, lines)
    assert len(blocks) > 10
    union = unary_union([b.geom for b in blocks])
    assert abs(union.area - area.area) < 1.0
    # block edges follow the roads: all road length inside the area lies on block edges, except
    # dead-end stubs (which polygonisation cannot close) and edges of slivers merged into a neighbour
    road_len = unary_union([ln.intersection(area) for ln in lines])
    edges = unary_union([b.geom.boundary for b in blocks]).buffer(0.5)
    assert road_len.intersection(edges).length / road_len.length > 0.7  # 0.77 on this area


def test_partition_regions_are_contiguous_and_balanced(demo):
    area = to_metric(box(121.484, 31.236, 121.492, 31.242))
    lines = [to_metric(r.geom) for r in demo.roads if is_block_road(r.kind, r.tags)]
    blocks = street_blocks(area, lines)
    anchors = [to_metric(building_anchor(b.geom)) for b in demo.buildings]
    where = assign_points([b.geom for b in blocks], anchors)
    hh = [0.0] * len(blocks)
    for i, w in enumerate(where):
        if area.contains(anchors[i]):
            hh[w] += demo.buildings[i].households
    geoms = [b.geom for b in blocks]
    res = partition_units(geoms, hh, 300, 500)
    nbrs = adjacency(geoms)
    assert res.k >= 2 and len(res.labels) == len(geoms)
    groups: dict[int, list[int]] = {}
    for u, r in enumerate(res.labels):
        groups.setdefault(r, []).append(u)
    assert len(groups) == res.k
    for units in groups.values():
        assert _connected(units, nbrs)
    sums = [sum(hh[u] for u in units) for units in groups.values()]
    assert abs(sum(sums) - sum(hh)) < 1e-6


def test_heavy_unit_is_a_region_of_its_own():
    squares = [box(i * 10, 0, i * 10 + 10, 10) for i in range(6)]
    res = partition_units(squares, [900, 100, 100, 100, 100, 0], 300, 500, restarts=2)
    assert res.labels[0] not in res.labels[1:5]
    assert len(set(res.labels[1:5])) == 1  # the four 100s make one in-band region of 400
    assert "over_band_units" in res.flags


def test_unreachable_band_is_flagged_best_effort():
    squares = [box(i * 10, 0, i * 10 + 10, 10) for i in range(3)]
    res = partition_units(squares, [100, 100, 150], 400, 420)
    assert "best_effort" in res.flags and res.k == 1


def test_codes_run_west_to_east_then_north_to_south():
    pts = [(x, y) for y in (200, 100, 0) for x in (0, 100, 200)]
    shuffled = [pts[i] for i in (4, 8, 0, 6, 2, 7, 1, 5, 3)]
    order = west_east_north_south(shuffled, row_height=50)
    assert [shuffled[i] for i in order] == pts


def test_building_groups_respect_the_cap():
    anchors = [(i * 10.0, 0.0) for i in range(10)]
    hh = [100.0] * 10
    groups = building_groups(anchors, hh, 250)
    assert sorted(i for g in groups for i in g) == list(range(10))
    assert all(sum(hh[i] for i in g) <= 250 for g in groups)
    # groups are runs along the axis (contiguous), not interleaved
    for g in groups:
        assert sorted(g) == list(range(min(g), max(g) + 1))


def test_detached_parts_of_split_pieces_join_their_neighbour():
    """A piece whose cells fell apart keeps its main part; the fragment joins the piece around it."""
    block = box(0, 0, 100, 50)
    frag = box(90, 40, 100, 50)  # in the corner of the right piece, not touching the left one
    left = unary_union([box(0, 0, 50, 50), frag])
    right = box(50, 0, 100, 50).difference(frag)
    anchors = [Point(20, 20), Point(70, 20), Point(95, 45)]  # the third building sits in the fragment
    hh = [100.0, 100.0, 10.0]
    assert n_parts(left) == 2
    out = connect_pieces([left, right], anchors, hh)
    assert [n_parts(p) for p in out] == [1, 1]
    assert abs(out[0].area - 2500) < 1e-6 and abs(out[1].area - 2500) < 1e-6
    assert abs(unary_union(out).area - block.area) < 1e-6 and out[0].intersection(out[1]).area < 1e-6
    assert out[1].contains(anchors[2])  # the fragment's building goes with it


def test_every_provisional_community_builds_a_sound_hierarchy(demo, provisional):
    units, roads, buildings = provisional
    communities = [u for u in units if u.level == "community"]
    assert len(communities) >= 8
    # communities tile each township
    for t in (u for u in units if u.level == "township"):
        kids = [to_metric(c.geom) for c in communities if c.parent_code == t.code]
        assert abs(unary_union(kids).area - to_metric(t.geom).area) < 1.0
    seen: set[int] = set()
    for c in communities[:6]:
        inside = [b for b in buildings if c.geom.contains(building_anchor(b.geom))]
        cb = community_grids(c.code, c.geom, roads, [], demo.water, inside, BuildConfig())
        assert cb.issues == [], [i.message for i in cb.issues]
        for g in cb.grids:
            assert g.code.startswith(c.code) and len(g.code) == 15
        for m in cb.microgrids:
            assert len(m.code) == 17 and m.parent_code == m.code[:15]
        # every grid is one connected piece (detached fragments of split blocks used to make two of
        # these communities' grids non-contiguous)
        assert all(g.contiguous and "not_contiguous" not in g.flags for g in cb.grids), c.code
        ids = [b for g in cb.grids for b in g.building_ids]
        assert sorted(ids) == sorted(b.id for b in inside)
        assert not (set(ids) & seen)
        seen |= set(ids)


def test_provisional_communities_cover_every_demo_building(demo, provisional):
    """The district set comes from the data (虹口区's North Bund included), and every building anchor of
    the demo lies in exactly one provisional community."""
    units, _roads, buildings = provisional
    assert "310109" in demo.districts and {"310101", "310115"} <= set(demo.districts)
    communities = [u for u in units if u.level == "community"]
    assert {c.parent_code[:6] for c in communities} == set(demo.districts)
    counts = [sum(c.geom.contains(building_anchor(b.geom)) for c in communities) for b in buildings]
    assert len(buildings) > 1000 and [b.id for b, n in zip(buildings, counts, strict=True) if n != 1] == []


def test_validator_reports_gap_overlap_and_nesting(demo):
    boundary = to_metric(box(121.484, 31.236, 121.492, 31.242))
    lines, inside = _metric_inputs(demo, boundary)
    cb = build_community("310101999001", boundary, lines, [], inside)
    assert cb.issues == []
    grids = {g.code: g.geom for g in cb.grids}
    micro = {m.code: (m.parent_code, m.geom) for m in cb.microgrids}
    first, second = list(grids)[:2]
    # a gap: shrink one grid by 5 m
    broken = dict(grids, **{first: grids[first].buffer(-5)})
    bg = {b: [g.code] for g in cb.grids for b in g.building_ids}
    bm = {b: [m.code] for m in cb.microgrids for b in m.building_ids}
    ids = [b.id for b in inside]
    kinds = {i.kind for i in validate_community("310101999001", boundary, broken, micro, ids, bg, bm)}
    assert "gap" in kinds
    # an overlap: grow a grid into its neighbours
    broken = dict(grids, **{second: grids[second].buffer(10).intersection(boundary)})
    issues = validate_community("310101999001", boundary, broken, micro, ids, bg, bm)
    ov = [i for i in issues if i.kind == "overlap"]
    assert ov and all(i.geom is not None and i.area_m2 > 1 for i in ov)
    # a micro-grid sticking out of its grid
    mcode = next(m for m, (p, _) in micro.items() if p == first)
    moved = dict(micro, **{mcode: (first, translate(micro[mcode][1], 300, 0))})
    kinds = {i.kind for i in validate_community("310101999001", boundary, grids, moved, ids, bg, bm)}
    assert "not_nested" in kinds
    # a building in two grids / in none
    bg2 = {**bg, ids[0]: [first, second]}
    bg2.pop(ids[1])
    kinds = {i.kind for i in validate_community("310101999001", boundary, grids, micro, ids, bg2, bm)}
    assert {"building_multiple", "building_unassigned"} <= kinds


def test_bad_input_gives_flags_not_crashes(demo):
    # self-intersecting (bow-tie) boundary: repaired and flagged
    x0, y0, x1, y1 = to_metric(box(121.484, 31.236, 121.492, 31.242)).bounds
    bowtie = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    lines, inside = _metric_inputs(demo, bowtie.buffer(0))
    cb = build_community("310101999002", bowtie, lines, [], inside)
    assert "boundary_repaired" in cb.flags and cb.grids
    # no roads at all: grids follow building groups, flagged
    area = to_metric(box(121.484, 31.236, 121.488, 31.240))
    _, inside = _metric_inputs(demo, area)
    cb = build_community("310101999003", area, [], [], inside)
    assert "no_roads" in cb.flags and cb.issues == []
    assert sorted(b for g in cb.grids for b in g.building_ids) == sorted(b.id for b in inside)
    # an empty community (no buildings): one grid, flagged
    cb = build_community("310101999004", box(0, 0, 100, 100), [], [], [])
    assert "no_households" in cb.flags and len(cb.grids) == 1 and cb.issues == []
    # an empty boundary: a clear error
    with pytest.raises(EmptyCommunity):
        build_community("310101999005", Polygon(), [], [], [])
    with pytest.raises(ValueError):
        build_community("310101999006", box(0, 0, 1, 1), [], [], [], BuildConfig(grid_min=500, grid_max=300))


@pytest.mark.parametrize("res", [7, 9, 10, 12])
def test_h3_modes_nest(provisional, res):
    units, _, _ = provisional
    area = next(u for u in units if u.level == "township").geom
    full = set(h3grid.cells_for(area, res, "full"))
    center = set(h3grid.cells_for(area, res, "center"))
    overlap = set(h3grid.cells_for(area, res, "overlap"))
    assert full <= center <= overlap
    assert overlap
    for c in list(full)[:20]:
        assert area.buffer(1e-7).contains(h3grid.cell_polygon(c))
    for c in list(overlap)[:20]:
        assert h3grid.cell_polygon(c).intersects(area)


def test_h3_aggregation_counts_points(demo):
    area = box(121.484, 31.236, 121.492, 31.242)
    pts = [(building_anchor(b.geom).x, building_anchor(b.geom).y, b.households) for b in demo.buildings]
    rows = h3grid.aggregate(area, 10, "overlap", {"buildings": pts})
    inside = [p for p in pts if area.contains(Point(p[0], p[1]))]
    assert sum(r["buildings"] for r in rows) >= len(inside)
    assert sum(r["households"] for r in rows) >= sum(p[2] for p in inside) - 1e-6
    with pytest.raises(h3grid.H3Error):
        h3grid.cells_for(area, 13, "center")
    with pytest.raises(h3grid.H3Error):
        h3grid.cells_for(area, 10, "middle")
    info = h3grid.cell_info(rows[0]["cell"])
    assert info["parent"] and len(info["children"]) == 7


@pytest.mark.parametrize(
    "driver,suffix", [("GPKG", ".gpkg"), ("ESRI Shapefile", ".shp"), ("GeoJSON", ".geojson")]
)
def test_importer_reads_gpkg_shp_geojson(provisional, tmp_path, driver, suffix):
    import geopandas as gpd

    from grid_builder.importer import ImportProblem, read_boundaries

    units, _, _ = provisional
    comm = [u for u in units if u.level == "community"][:2]
    minx, miny, maxx, maxy = comm[1].geom.bounds
    bowtie = Polygon([(minx, miny), (maxx, maxy), (maxx, miny), (minx, maxy)])
    gdf = gpd.GeoDataFrame(
        {"code": [comm[0].code, comm[1].code, "99"], "name": ["甲", "乙", "坏"]},
        geometry=[comm[0].geom, bowtie, comm[0].geom],
        crs=4326,
    )
    path = tmp_path / f"c{suffix}"
    gdf.to_file(path, driver=driver)
    records, problems = read_boundaries(path)
    assert [r.code for r in records] == [comm[0].code, comm[1].code]
    assert all(r.level == "community" and r.parent_code == r.code[:9] for r in records)
    assert records[1].flags == ["boundary_repaired"] and records[1].geom.is_valid
    assert any("99" in p for p in problems)
    with pytest.raises(ImportProblem):
        read_boundaries(path, code_field="adcode")
    with pytest.raises(ImportProblem):
        read_boundaries(tmp_path / "missing.gpkg")


def test_staff_roles_levels_and_terms():
    from datetime import UTC, datetime

    from geo.errors import Conflict, InvalidInput
    from gis_api.errors import status_and_code
    from grid_builder.staff import StaffProblem, check_assignment

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    check_assignment("grid", "person:1", "网格员", t0, None)
    check_assignment("microgrid", "person:1", "微网格长", t0, t0)
    for args, kind, status in (
        (("grid", "person:1", "楼长", t0, None), InvalidInput, 422),
        (("grid", "person:1", "微网格长", t0, None), InvalidInput, 422),
        (("microgrid", "person:1", "网格员", t0, None), InvalidInput, 422),
        (("grid", "", "网格员", t0, None), InvalidInput, 422),
        (("grid", "p", "网格员", datetime(2026, 1, 1), None), InvalidInput, 422),
        (("grid", "p", "网格员", t0, datetime(2026, 2, 1, tzinfo=UTC)), Conflict, 409),
    ):
        with pytest.raises(StaffProblem) as exc:
            check_assignment(*args)
        assert isinstance(exc.value, kind) and exc.value.message
        assert status_and_code(exc.value)[0] == status


def test_large_building_units_tile_its_cell():
    """A tower above the micro-grid band: unit ranges of 30–50 households on strips that tile its cell."""
    from shapely.geometry import Polygon

    from grid_builder.microgrid import split_large_buildings, strips, unit_count

    assert unit_count(3041, 30, 50, 99) == 61 and unit_count(40, 30, 50, 99) == 1
    assert unit_count(3041, 30, 50, 20) == 20  # capped by the 2-digit sequence
    assert unit_count(55, 30, 50, 99) == 2  # 27/28: closer to the band than one range of 55
    cell = Polygon([(0, 0), (120, 0), (120, 30), (60, 60), (0, 30)])
    parts = strips(cell, 7)
    assert len(parts) == 7
    assert (
        abs(sum(p.area for p in parts) - cell.area) < 1e-6 and abs(unary_union(parts).area - cell.area) < 1e-6
    )
    assert all(abs(p.area - cell.area / 7) < 0.01 for p in parts)
    assert all(parts[i].intersection(parts[j]).area < 1e-6 for i in range(7) for j in range(i + 1, 7))
    tower = BuildingIn(7, Polygon([(50, 10), (70, 10), (70, 20), (50, 20)]), 3041.0)
    shop = BuildingIn(8, Polygon([(5, 5), (10, 5), (10, 10), (5, 10)]), 0.0)
    out = split_large_buildings([(cell, [0, 1])], [tower, shop], 30, 50)
    assert len(out) == 61
    ranges = sorted(p["units"] for _g, _b, p in out)
    assert ranges[0][0] == 1 and ranges[-1][1] == 3041
    assert all(a[1] + 1 == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert all(30 <= p["unit_households"] <= 50 for _g, _b, p in out)
    # each building is a member of exactly one strip: the one holding its anchor
    members = [i for _g, b, _p in out for i in b]
    assert sorted(members) == [0, 1]
    for g, b, _p in out:
        for i in b:
            assert g.covers(building_anchor([tower, shop][i].geom))


def _assign_one_by_one(polys, points):
    """The point-by-point placement `assign_points` replaced (kept here as the reference)."""
    from shapely.strtree import STRtree

    tree = STRtree(polys)
    out = []
    for p in points:
        hit = tree.query(p, predicate="intersects")
        out.append(int(min(hit)) if len(hit) else int(tree.nearest(p)))
    return out


def test_assign_points_in_bulk_places_as_one_by_one(demo):
    """Every building anchor of the demo, points on shared block edges (two blocks contain them: the lowest
    index wins) and points outside every block (the nearest block): the bulk query places each point where
    the point-by-point one did."""
    area = to_metric(box(121.484, 31.236, 121.492, 31.242))
    lines = [to_metric(r.geom) for r in demo.roads if is_block_road(r.kind, r.tags)]
    polys = [b.geom for b in street_blocks(area, lines)]
    anchors = [to_metric(building_anchor(b.geom)) for b in demo.buildings]
    on_edges = [Point(polys[i].exterior.coords[0]) for i in range(0, len(polys), 3)]
    x0, y0, x1, y1 = area.bounds
    outside = [Point(x0 - 50 - 10 * k, y0 + (y1 - y0) * k / 20) for k in range(20)] + [Point(x1 + 400, y1 + 400)]
    points = anchors + on_edges + outside
    got = assign_points(polys, points)
    assert got == _assign_one_by_one(polys, points)
    assert sum(1 for p in on_edges if sum(poly.intersects(p) for poly in polys) > 1) >= 3  # real ties were asked
    assert all(not any(poly.intersects(p) for poly in polys) for p in outside)  # and real misses
    assert assign_points([], points[:3]) == [-1, -1, -1] and assign_points(polys, []) == []
