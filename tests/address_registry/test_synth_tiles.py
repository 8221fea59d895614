"""`shequ demo synth --tiles`: the real structure repeated as translated tiles with synthetic districts, so
that sizes beyond the real blocks (10⁷) can be grown (issue 14 §1, docs/scaling.md §1).

Small sizes: two tiles forced at a few thousand addresses (a low tile capacity), seconds in all.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from address_registry import codes, reverse, synth
from address_registry.errors import InvalidAddress
from address_registry.geocoder import AdminName, Geocoder
from address_registry.numbering import SHANGHAI
from address_registry.service import build_registry
from address_registry.store import load_geocoder_inputs
from address_registry.store import synthetic as store
from address_registry.store.reading import admin_containing

N = 5_000
SEED = 5
# a tile capacity low enough that N needs two tiles under --tiles auto
LOW_CAPACITY = 3_000


@pytest.fixture(scope="module")
def blocks(synth_inputs):
    return synth.street_blocks(synth_inputs["roads"], synth_inputs["districts"])


def _tiles(inputs, blocks, n=N, tiles=2, seed=SEED):
    return list(synth.grow_tiles(inputs["roads"], inputs["districts"], n, tiles, seed=seed,
                                 admin_names=inputs["admin_names"], blocks=blocks, node_ids=inputs["node_ids"]))


@pytest.fixture(scope="module")
def tiled(synth_inputs, blocks):
    return _tiles(synth_inputs, blocks, tiles=synth.tile_count(N, "auto", LOW_CAPACITY))


def _key(city):
    return [(r.code, r.formatted, r.lon, r.lat, r.building_id) for r in city.records]


def test_tile_count_follows_the_capacity():
    assert synth.tile_count(10**6) == 1  # the real blocks hold it: today's city
    assert synth.tile_count(10**7) == 9  # ⌈10⁷ / 1.2 × 10⁶⌉
    assert synth.tile_count(N, "auto", LOW_CAPACITY) == 2
    assert synth.tile_count(N, "3") == 3
    assert synth.tile_shares(10, 3) == [4, 3, 3]
    for bad in ("0", "x", "1000"):
        with pytest.raises(synth.InvalidAddress, match="--tiles"):
            synth.tile_count(N, bad)


def test_within_capacity_it_is_todays_city(synth_inputs, blocks):
    """One tile (N within capacity) is `grow_city` unchanged; tile 0 of a tiled city is today's city of its share."""
    d = synth_inputs
    today = synth.grow_city(d["roads"], d["districts"], N, seed=SEED, admin_names=d["admin_names"], blocks=blocks)
    [(base, only)] = _tiles(d, blocks, tiles=1)
    assert base is None and _key(only) == _key(today)
    share = synth.tile_shares(N, 2)[0]
    today_share = synth.grow_city(d["roads"], d["districts"], share, seed=SEED, admin_names=d["admin_names"],
                                  blocks=blocks)
    tiled = _tiles(d, blocks, tiles=2)
    assert tiled[0][0] is None and _key(tiled[0][1]) == _key(today_share)
    # the same seed gives the same tiles; the tile has its own random stream, not tile 0's
    assert _key(tiled[1][1]) == _key(_tiles(d, blocks, tiles=2)[1][1])
    assert [b.households for b in tiled[1][1].buildings][:20] != [b.households for b in today_share.buildings][:20]


def test_tiles_are_translated_copies_with_their_own_districts(tiled, synth_inputs):
    base, city = tiled[1]
    assert base is not None and city.tile_index == 1
    dlon, dlat = base.tile.offset_deg
    frame = shapely.box(*synth.tile_frame(synth_inputs["roads"]))
    real = {d.code: d for d in synth_inputs["districts"]}
    back = np.array([-dlon, -dlat])
    assert len(base.districts) >= 8  # the central districts the road network crosses
    for d in base.districts:
        copy_of = real[base.real_district[d.code]]
        moved_back = shapely.transform(d.geom, lambda c: c + back)
        assert moved_back.symmetric_difference(copy_of.geom.intersection(frame)).area < 1e-9
        assert d.name == f"合成1-{copy_of.name}" and d.parent_code == "900000"
    # roads: every named way, moved by the same offset (names repeat across tiles, as across real districts)
    assert len(base.roads) == len(synth_inputs["roads"])
    for way, real_way in list(zip(base.roads, synth_inputs["roads"], strict=True))[::97]:
        assert way.name == real_way.name and way.tags[synth.TILE_TAG] == 1
        assert np.allclose(shapely.get_coordinates(way.geom) + back, shapely.get_coordinates(real_way.geom))
        assert len(base.node_ids[way.osm_id]) == len(shapely.get_coordinates(way.geom))
    # the offset is exact in the local projection: blocks keep their shape and area
    for b in base.blocks[::200]:
        assert shapely.equals_exact(SHANGHAI.geom_to_metres(b.wgs84), b.metres, tolerance=1e-3)
    # the tile overlaps no real district and no other tile, and lies inside China
    tile_area = shapely.union_all([d.geom for d in base.districts])
    assert not any(tile_area.intersects(d.geom) for d in synth_inputs["districts"] if d.geom is not None)
    x0, y0, x1, y1 = tile_area.bounds
    assert 73 < x0 < x1 < 135 and 18 < y0 < y1 < 54
    layout = synth.tile_layout(synth_inputs["roads"], synth_inputs["districts"], 12)
    frames = [shapely.transform(frame, lambda c, t=t: c + np.array(t.offset_deg)) for t in layout]
    assert all(not a.intersects(b) for i, a in enumerate(frames) for b in frames[i + 1:])


def test_codes_are_unique_valid_and_cannot_be_real(tiled, synth_inputs):
    records = [r for _, city in tiled for r in city.records]
    assert len({r.code for r in records}) == len(records)
    assert len({r.normalized for r in records}) == len(records)  # the district's name tells same-named roads apart
    buildings = [b.id for _, city in tiled for b in city.buildings]
    assert len(set(buildings)) == len(buildings)
    base = tiled[1][0]
    tile_districts = {d.code for d in base.districts}
    assert not any(d.code.startswith("9") for d in synth_inputs["districts"])  # GB/T 2260: no province 9x
    for r in tiled[1][1].records:
        assert codes.is_valid(r.code) and codes.level_of(r.code) == r.level
        assert r.district_code in tile_districts and r.code.startswith(r.district_code)
        assert r.components["district"].startswith("合成1-") and r.components["province"] == "合成市"
        assert r.source == "synthetic"
    assert {r.district_code[:1] for r in tiled[0][1].records} == {"3"}  # tile 0: the real districts
    levels = Counter(r.level for r in tiled[1][1].records)
    assert {"road", "house_number", "building", "unit", "floor", "room", "compound"} <= set(levels)


def test_addresses_of_a_tile_lie_in_its_districts_as_in_the_real_place(tiled, synth_inputs):
    """A tile's addresses lie in its own districts, in the copy of the real district that holds the same
    point moved back; each road is in the copy of its real district (a house number goes with its road's
    district, as in the real place, also where the building stands across the boundary)."""
    base, city = tiled[1]
    back = np.array(base.tile.offset_deg)
    polygons = {d.code: d.geom for d in base.districts} | {d.code: d.geom for d in synth_inputs["districts"]}
    placed = [r for r in city.records if r.lon is not None and r.level in ("house_number", "room", "compound")]
    assert len(placed) > 100
    for r in placed[::7]:
        pt = shapely.Point(r.lon, r.lat)
        holders = [c for c, g in polygons.items() if g is not None and g.covers(pt)]
        assert len(holders) == 1 and holders[0][:4] == "9001", (r.formatted, holders)
        moved_back = shapely.Point(np.array([r.lon, r.lat]) - back)
        real = [d.code for d in synth_inputs["districts"] if d.geom is not None and d.geom.covers(moved_back)]
        assert real == [base.real_district[holders[0]]]
    real_road = {r.components["road"]: r.district_code for r in tiled[0][1].records if r.level == "road"}
    tile_road = {r.components["road"]: r.district_code for r in city.records if r.level == "road"}
    assert len(tile_road) == len(real_road) > 700
    assert all(base.real_district[code] == real_road[name] for name, code in tile_road.items())


def _admin_names(base, inputs):
    units = list(inputs["districts"]) + list(base.districts)
    return [AdminName(u.code, u.name, "district", *u.geom.representative_point().coords[0]) for u in units]


def _twins(tiled):
    """Pairs of same-named roads, (tile 1's, tile 0's): only the district in the text tells them apart."""
    tile0 = {r.components["road"]: r for r in tiled[0][1].records if r.level == "road"}
    return [(r, tile0[r.components["road"]]) for r in tiled[1][1].records if r.level == "road"]


def test_geocoding_an_address_of_tile_1_finds_it_in_tile_1(tiled, synth_inputs):
    base, city = tiled[1]
    records = [r for _, c in tiled for r in c.records]
    aliases = [a for _, c in tiled for a in c.aliases]
    geocoder = Geocoder(records, aliases, road_lines=synth.road_lines(synth_inputs["roads"]),
                        admin_units=_admin_names(base, synth_inputs))
    twins = _twins(tiled)
    assert len(twins) > 700
    for tile1, tile0 in twins[::40]:
        assert geocoder.geocode(tile1.formatted, 1)[0]["address_code"] == tile1.code, tile1.formatted
        assert geocoder.geocode(tile0.formatted, 1)[0]["address_code"] == tile0.code, tile0.formatted
    numbers = [r for r in city.records if r.level in ("house_number", "room")][::23]
    assert len(numbers) > 20
    for rec in numbers:
        got = geocoder.geocode(rec.formatted, 1)[0]
        assert got["address_code"] == rec.code, (rec.formatted, got)


def test_written_tiles_hold_in_the_database(rolled_back, tiled, registry, synth_inputs):
    """Written as the command writes them: the tiles' districts in admin_unit, their roads routable, every
    address in its district's polygon; the geocoder and reverse read from the database find tile 1's."""
    conn = rolled_back
    conn.execute(text("DELETE FROM address_alias"))
    conn.execute(text("DELETE FROM standard_address"))
    store.remove_synthetic(conn)
    for base, city in tiled:
        if base is not None:
            assert store.write_tile_base(conn, base)["districts"] == len(base.districts)
        store.write_city(conn, city)
    base, city = tiled[1]
    n = len(tiled[0][1].records) + len(city.records)
    assert conn.execute(text("SELECT count(*) FROM standard_address WHERE source = 'synthetic'")).scalar_one() == n
    # every address of a tile in one district of the same tile (tile 0: the real districts, 3…)
    outside = conn.execute(text("""SELECT count(*) FROM standard_address a
        WHERE a.source = 'synthetic' AND a.geom IS NOT NULL AND NOT EXISTS (SELECT 1 FROM admin_unit d
          WHERE d.level = 'district' AND ST_Covers(d.geom, a.geom)
            AND left(d.code, 4) = (CASE WHEN a.district_code LIKE '9%' THEN left(a.district_code, 4)
                                   ELSE left(d.code, 4) END) AND (a.district_code LIKE '9%') = (d.code LIKE '9%'))""")
    ).scalar_one()
    assert outside == 0
    rows = conn.execute(text("SELECT code, name, source, parent_code FROM admin_unit WHERE code LIKE '9%'")).all()
    assert {r.code for r in rows} == {d.code for d in base.districts} | {"900000"}
    assert {r.source for r in rows} == {"synthetic"}
    # the tile's ways are in `road` with their own nodes; the geocoder's road axes are the real ways only
    tile_roads = conn.execute(text("SELECT count(*), min(cardinality(node_ids)) FROM road WHERE tags ? 'synthetic_tile'")
                              ).one()
    assert tile_roads[0] == len(base.roads) and tile_roads[1] >= 2
    inputs = load_geocoder_inputs(conn)
    name = synth.clean_road_name(base.roads[0].name)
    real_ways = [w for w in synth_inputs["roads"] if synth.clean_road_name(w.name) == name]
    assert len(inputs["road_lines"][name]) == len(real_ways)
    geocoder = Geocoder(inputs["records"], inputs["aliases"], road_lines=inputs["road_lines"],
                        admin_units=inputs["admin_units"])
    for tile1, tile0 in _twins(tiled)[::100]:
        assert geocoder.geocode(tile1.formatted, 1)[0]["address_code"] == tile1.code
        assert geocoder.geocode(tile0.formatted, 1)[0]["address_code"] == tile0.code
    for rec in [r for r in city.records if r.level == "house_number"][::40]:
        assert geocoder.geocode(rec.formatted, 1)[0]["address_code"] == rec.code
        here = reverse.locate(conn, rec.lon, rec.lat)
        assert here["district"]["code"][:4] == "9001"  # a district of tile 1
        assert here["nearby"][0]["address_code"][:4] == "9001"
        assert admin_containing(conn, rec.lon, rec.lat)["district"]["code"] == here["district"]["code"]
    # the registry of a tiled city cannot be rebuilt from the tables (roads grouped by name across tiles):
    # `address build` refuses, saying why, and writes nothing
    before = conn.execute(text("SELECT count(*) FROM standard_address")).scalar_one()
    with pytest.raises(InvalidAddress, match="demo synth"):
        build_registry(conn)
    assert conn.execute(text("SELECT count(*) FROM standard_address")).scalar_one() == before
    # replacing the city removes the tiles' roads and (nothing derived under them) their districts
    removed = store.remove_synthetic(conn)
    assert removed["roads"] == len(base.roads) and removed["districts"] == len(base.districts)
    assert conn.execute(text("SELECT count(*) FROM admin_unit WHERE source = 'synthetic'")).scalar_one() == 0



def test_a_tile_gets_its_own_townships_communities_and_grids(rolled_back, tiled, registry):
    """What `grid boundaries --extent buildings` and `grid build` run, on tile 1 as written: provisional
    townships and communities under the tile's districts (codes 9…), divided by the tile's own roads, and
    the grids of its largest community holding every household of it."""
    from grid_builder import store as grid_store
    from grid_builder.pipeline import community_grids, provisional_boundaries

    conn = rolled_back
    conn.execute(text("DELETE FROM address_alias"))
    conn.execute(text("DELETE FROM standard_address"))
    store.remove_synthetic(conn)
    for base, city in tiled:
        if base is not None:
            store.write_tile_base(conn, base)
        store.write_city(conn, city)
    base, city = tiled[1]
    area = shapely.box(*shapely.union_all([b.geom for b in city.buildings]).bounds)
    roads = grid_store.roads_in(conn, area)
    assert roads and all(r.tags.get(synth.TILE_TAG) == 1 for r in roads)  # the tile's ways, no real one
    buildings = grid_store.buildings_in(conn, area)
    assert {b.id for b in buildings} == {b.id for b in city.buildings}
    with_buildings = set(grid_store.districts_with_buildings(conn)) & {d.code for d in base.districts}
    assert with_buildings
    districts = {d.code: (d.name, d.geom) for d in base.districts if d.code in with_buildings}
    units, _notes = provisional_boundaries(districts, area, roads, [], [], buildings)
    communities = [u for u in units if u.level == "community"]
    townships = {u.code: u for u in units if u.level == "township"}
    assert communities and townships
    for u in communities:
        assert townships[u.parent_code].parent_code in districts and u.code.startswith(townships[u.parent_code].code)
    households = sum(b.households for b in buildings)
    assert sum(u.households for u in communities) == pytest.approx(households, rel=1e-6)
    largest = max(communities, key=lambda u: u.households)
    boundary = largest.geom  # lon/lat (provisional_boundaries returns it so)
    inside = grid_store.buildings_in(conn, boundary)
    cb = community_grids(largest.code, boundary, grid_store.roads_in(conn, boundary.buffer(0.0005)), [], [], inside)
    assert cb.grids and sum(g.households for g in cb.grids) == pytest.approx(sum(b.households for b in inside))


def test_cli_tiles_a_size_beyond_the_capacity(shared_data):
    from typer.testing import CliRunner

    from gis_api.cli import app

    res = CliRunner().invoke(app, ["demo", "synth", "-n", str(N), "--seed", str(SEED), "--dry-run",
                                   "--tile-capacity", str(LOW_CAPACITY), "--data-dir", str(shared_data)])
    assert res.exit_code == 0, res.output
    assert "tile 2/2" in res.output and "in 2 tile(s)" in res.output
    bad = CliRunner().invoke(app, ["demo", "synth", "-n", str(N), "--tiles", "many", "--dry-run"])
    assert bad.exit_code == 1 and "--tiles 应为 auto" in bad.output
