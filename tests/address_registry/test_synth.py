"""`shequ demo synth`: a synthetic city grown from the demo's real roads and districts (issue 14).

Small sizes only (a few thousand addresses); the large ones are measured by benchmarks/bench_scale.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict

import pytest
from sqlalchemy import text

from address_registry import codes, synth
from address_registry.geocoder import Geocoder
from address_registry.numbering import SHANGHAI, position_on_axis, road_axis
from address_registry.textnorm import house_number_parts
from geo.errors import TooLarge

N = 4_000


@pytest.fixture(scope="module")
def inputs(shared_data):
    data = synth.inputs_from_files(shared_data)
    data["blocks"] = synth.street_blocks(data["roads"], data["districts"])
    return data


def _grow(inputs, n=N, seed=3, blocks=None):
    return synth.grow_city(inputs["roads"], inputs["districts"], n, seed=seed, admin_names=inputs["admin_names"],
                           blocks=blocks if blocks is not None else inputs["blocks"])


@pytest.fixture(scope="module")
def city(inputs):
    return _grow(inputs)


def test_blocks_are_real_faces_of_the_road_network_inside_districts(inputs):
    blocks = inputs["blocks"]
    assert len(blocks) > 1_000  # central Shanghai: ~1,600 blocks between named roads
    district_codes = {d.code for d in inputs["districts"]}
    assert {b.district_code for b in blocks} <= district_codes
    assert {"310101", "310115"} <= {b.district_code for b in blocks}  # 黄浦区, 浦东新区
    for b in blocks[::50]:
        assert synth.BLOCK_MIN_M2 <= b.metres.area <= synth.BLOCK_MAX_M2


def test_size_is_the_target_to_within_one_building(city):
    assert N <= len(city.records) <= N + max(synth.addresses_of(b) for b in city.buildings)
    levels = Counter(r.level for r in city.records)
    assert {"road", "house_number", "building", "unit", "floor", "room", "compound"} <= set(levels)


def test_codes_are_valid_and_the_tree_holds(city):
    by_code = {r.code: r for r in city.records}
    assert len(by_code) == len(city.records)
    for rec in city.records:
        assert codes.is_valid(rec.code), rec.code
        assert codes.level_of(rec.code) == rec.level
        assert codes.parent_of(rec.code) == rec.parent_code
        if rec.level not in ("road", "compound"):
            parent = by_code[rec.parent_code]
            assert codes.body(rec.code).startswith(codes.body(parent.code))
            assert parent.district_code == rec.district_code


def test_every_row_is_marked_synthetic(city):
    assert {r.source for r in city.records} == {"synthetic"}
    assert {a.source for a in city.aliases} <= {"synthetic"}
    assert all(b.id > synth.SYNTH_ID_BASE and b.osm_id == -b.id for b in city.buildings)


def test_house_numbers_are_on_the_side_of_their_parity(city, inputs):
    """The registry's rule: looking from the road's start, odd numbers on the left, even on the right."""
    lines = synth.road_lines(inputs["roads"])
    axes = {}
    checked = 0
    for rec in city.records:
        if rec.level != "house_number":
            continue
        road = rec.components["road"]
        if road not in axes:
            axes[road] = road_axis([SHANGHAI.geom_to_metres(g) for g in lines[road]])
        x, y = SHANGHAI.forward(rec.lon, rec.lat)
        from shapely.geometry import Point

        _m, left = position_on_axis(axes[road], Point(float(x), float(y)))
        number = house_number_parts(rec.components["house_number"])["main"]
        assert (number % 2 == 1) == left, (rec.formatted, left)
        checked += 1
    assert checked >= 50


def test_flats_have_units_floors_and_one_room_per_household(city):
    rooms_of = Counter()
    by_code = {r.code: r for r in city.records}
    for rec in city.records:
        if rec.level == "room":
            floor = by_code[rec.parent_code]
            unit = by_code[floor.parent_code]
            building = by_code[unit.parent_code]
            assert (floor.level, unit.level, building.level) == ("floor", "unit", "building")
            assert rec.components["room"].startswith(floor.components["floor"][:-1])  # 301室 on 3层
            rooms_of[rec.building_id] += 1
    flats = [b for b in city.buildings if b.kind == "apartments"]
    assert flats
    for b in flats:
        assert rooms_of[b.id] == b.households
    assert sum(rooms_of.values()) <= city.households


def test_compounds_hold_the_addresses_of_their_block(city):
    compounds = [r for r in city.records if r.level == "compound"]
    assert compounds and all(r.area is not None for r in compounds)
    members = defaultdict(int)
    for r in city.records:
        if r.compound_code:
            members[r.compound_code] += 1
    assert all(members[c.code] > 0 for c in compounds)


def test_same_seed_same_city_other_seed_other_city(inputs, city):
    again = _grow(inputs)
    assert [(r.code, r.formatted, r.lon, r.lat) for r in again.records] == [
        (r.code, r.formatted, r.lon, r.lat) for r in city.records
    ]
    other = _grow(inputs, seed=4)
    assert {r.formatted for r in other.records} != {r.formatted for r in city.records}


def test_the_synthetic_registry_geocodes(city, inputs):
    geocoder = Geocoder(city.records, city.aliases, road_lines=synth.road_lines(inputs["roads"]))
    rooms = [r for r in city.records if r.level == "room"][::97]
    assert rooms
    for rec in rooms:
        assert geocoder.geocode(rec.formatted, 1)[0]["address_code"] == rec.code


def test_refusals_say_why_with_the_estimate(inputs):
    with pytest.raises(TooLarge, match="GiB"):
        synth.check_fits(10**8, 24 * 2**30)
    synth.check_fits(10**5, 24 * 2**30)
    with pytest.raises(synth.InvalidAddress, match="容纳约"):
        _grow(inputs, n=200_000, blocks=inputs["blocks"][:30])


def test_write_marks_every_row_and_replaces_the_last_city(rolled_back, city, registry):
    from address_registry.store import synthetic as store

    conn = rolled_back
    assert store.real_address_count(conn) > 0  # the demo registry: the command refuses this database
    conn.execute(text("DELETE FROM address_alias"))
    conn.execute(text("DELETE FROM standard_address"))
    assert store.real_address_count(conn) == 0
    counts = store.write_city(conn, city)
    assert counts["addresses"] == len(city.records)
    again = store.remove_synthetic(conn)
    assert again["addresses"] == len(city.records) and again["buildings"] == len(city.buildings)
    store.write_city(conn, city)
    rows = conn.execute(text("""SELECT source, changed_by, count(*) FROM standard_address
        WHERE valid_to IS NULL GROUP BY 1, 2""")).all()
    assert [(r[0], r[1], r[2]) for r in rows] == [("synthetic", synth.SYNTH_USER, len(city.records))]
    tagged = conn.execute(text("SELECT count(*) FROM building WHERE tags->>'synthetic' = 'true'")).scalar_one()
    assert tagged == len(city.buildings)
    room = next(r for r in city.records if r.level == "room")
    got = conn.execute(text("SELECT full_text, ST_X(geom), building_id FROM standard_address WHERE code = :c"),
                       {"c": room.code}).one()
    assert got[0] == room.formatted and abs(got[1] - room.lon) < 1e-9 and got[2] == room.building_id


def test_cli_refuses_a_database_with_real_addresses(registry):
    proc = subprocess.run([sys.executable, "-m", "gis_api.cli", "demo", "synth", "--addresses", "3000"],
                          capture_output=True, text=True, env={**os.environ}, timeout=300)
    assert proc.returncode == 1
    assert "非合成地址" in proc.stderr and "database of its own" in proc.stderr
