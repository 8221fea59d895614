"""Building the demo registry from the real data in PostGIS."""

from sqlalchemy import text

from address_registry import codes, store
from address_registry.numbering import SHANGHAI, position_on_axis, road_axis
from address_registry.service import build_registry
from address_registry.textnorm import house_number_parts


def test_build_creates_roads_and_house_numbers(registry, engine):
    assert registry["road"] > 300
    assert registry["house_number_osm"] > 50
    assert registry["house_number_generated"] > 500
    with engine.connect() as conn:
        counts = dict(conn.execute(text("""SELECT level, count(*) FROM standard_address
            WHERE valid_to IS NULL GROUP BY level""")).all())
        assert counts["road"] >= registry["road"]
        assert counts["house_number"] > 600
        bad = [c for (c,) in conn.execute(text("SELECT code FROM standard_address")) if not codes.is_valid(c)]
        assert bad == []
        # every house number hangs under an existing road of the same district
        orphans = conn.execute(text("""SELECT count(*) FROM standard_address h
            WHERE h.level = 'house_number' AND h.valid_to IS NULL AND NOT EXISTS (
              SELECT 1 FROM standard_address r WHERE r.code = h.parent_code AND r.valid_to IS NULL
                AND r.level = 'road' AND r.district_code = h.district_code)""")).scalar()
        assert orphans == 0


def test_osm_address_tags_are_used(registry, engine):
    with engine.connect() as conn:
        row = conn.execute(text("""SELECT a.full_text, a.source, b.osm_id FROM standard_address a
            JOIN building b ON b.id = a.building_id
            WHERE a.valid_to IS NULL AND a.normalized_text = '上海市浦东新区世纪大道1号'""")).first()
        assert row is not None
        assert row.source == "osm" and row.osm_id == 40778038  # the Oriental Pearl Tower's footprint
        aliases = conn.execute(text("""SELECT alias FROM address_alias al JOIN standard_address a
            ON a.code = al.address_code AND a.valid_to IS NULL
            WHERE a.normalized_text = '上海市浦东新区世纪大道1号'""")).scalars().all()
        assert "东方明珠电视塔" in aliases


def test_generated_numbers_follow_the_documented_rule(registry, engine):
    """Odd numbers on the left, even on the right, growing from the road's start."""
    with engine.connect() as conn:
        road = conn.execute(text("""SELECT r.code, r.components->>'road' AS name, count(*) AS n
            FROM standard_address r JOIN standard_address h ON h.parent_code = r.code AND h.valid_to IS NULL
            WHERE r.valid_to IS NULL AND h.source = 'generated' GROUP BY r.code, name
            ORDER BY n DESC LIMIT 1""")).first()
        houses = conn.execute(text("""SELECT components->>'house_number' AS hn, ST_X(geom) AS lon, ST_Y(geom) AS lat
            FROM standard_address WHERE parent_code = :p AND valid_to IS NULL AND source = 'generated'"""),
                              {"p": road.code}).all()
        ways = conn.execute(text("SELECT ST_AsBinary(geom) FROM road WHERE name = :n"), {"n": road.name}).scalars().all()
    import shapely

    axis = road_axis([SHANGHAI.geom_to_metres(shapely.from_wkb(w)) for w in ways])
    assert len(houses) >= 5
    by_side = {True: [], False: []}
    for h in houses:
        x, y = SHANGHAI.forward(h.lon, h.lat)
        m, left = position_on_axis(axis, shapely.Point(float(x), float(y)))
        main = house_number_parts(h.hn)["main"]
        assert (main % 2 == 1) == left, (h.hn, left)
        by_side[left].append((m, main))
    for items in by_side.values():
        items.sort()
        mains = [n for _, n in items]
        # increasing along the road (ties inside one 20 m slot may be bumped, never reversed by much)
        assert sum(b < a for a, b in zip(mains, mains[1:], strict=False)) <= len(mains) // 10


def test_unique_normalised_text_and_one_current_version(registry, engine):
    with engine.connect() as conn:
        dup = conn.execute(text("""SELECT normalized_text FROM standard_address
            WHERE valid_to IS NULL AND status = 'active' GROUP BY 1 HAVING count(*) > 1""")).all()
        assert dup == []


def test_rebuild_is_idempotent(registry, engine):
    with engine.begin() as conn:
        before = conn.execute(text("SELECT count(*) FROM standard_address")).scalar()
        stats = build_registry(conn)
        after = conn.execute(text("SELECT count(*) FROM standard_address")).scalar()
    assert stats.get("created", 0) == 0 and stats.get("updated", 0) == 0
    assert before == after


def test_rebuild_after_communities_exist_fills_them_with_new_versions(registry, engine):
    """A community polygon arriving later gives the addresses inside it a new version; codes stay."""
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            # start from "no communities yet" whatever other features loaded (all rolled back below)
            conn.execute(text("""UPDATE admin_unit SET valid_to = now() - interval '1 second'
                WHERE level IN ('township', 'community')"""))
            build_registry(conn)
            target = conn.execute(text("""SELECT code, version, ST_X(geom) AS lon, ST_Y(geom) AS lat
                FROM standard_address WHERE valid_to IS NULL AND level = 'house_number'
                  AND district_code = '310115' AND changed_by = 'shequ address build'
                ORDER BY code LIMIT 1""")).first()
            assert store.current(conn, target.code).community_code is None
            conn.execute(text("""INSERT INTO admin_unit (code, name, level, parent_code, source, geom)
                VALUES ('310115999', '测试街道', 'township', '310115', 'provisional',
                        ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 0.002))),
                       ('310115999001', '测试居委会', 'community', '310115999', 'provisional',
                        ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 0.002)))"""),
                         {"lon": target.lon, "lat": target.lat})
            stats = build_registry(conn)
            assert stats["updated"] >= 1 and stats.get("created", 0) == 0
            rec = store.current(conn, target.code)
            assert rec.community_code == "310115999001" and rec.township_code == "310115999"
            assert rec.components["community"] == "测试居委会"
            assert rec.version == target.version + 1
            assert len(store.history(conn, target.code)) == rec.version
            assert build_registry(conn).get("updated", 0) == 0  # and again: nothing to do
        finally:
            tx.rollback()


def test_dwelling_plan_layout():
    from address_registry.build import dwelling_plan

    plan = dwelling_plan(households=25, floors=6)
    assert len(plan) == 25
    assert plan[0] == (1, 1, 101) and plan[1] == (1, 1, 102) and plan[11] == (1, 6, 602)
    assert plan[12] == (2, 1, 101) and plan[-1] == (3, 1, 101)  # third unit holds the 25th flat
    assert len(set(plan)) == 25


def test_blocks_of_flats_get_units_floors_and_rooms(registry, engine, client):
    with engine.connect() as conn:
        rows = conn.execute(text("""SELECT b.id, b.households_est, b.floors,
                (SELECT count(*) FROM standard_address r WHERE r.valid_to IS NULL AND r.level = 'room'
                   AND r.building_id = b.id AND r.changed_by = 'shequ address build') AS rooms
            FROM building b WHERE b.kind_detail IN ('apartments', 'residential', 'dormitory')
              AND b.households_est > 0 AND b.floors >= 2
              AND EXISTS (SELECT 1 FROM standard_address a WHERE a.building_id = b.id AND a.valid_to IS NULL)
            ORDER BY b.id""")).all()
        assert len(rows) >= 10
        for r in rows:
            assert r.rooms == r.households_est, r
        room = conn.execute(text("""SELECT code, full_text, parent_code FROM standard_address
            WHERE level = 'room' AND valid_to IS NULL AND source = 'generated' ORDER BY code LIMIT 1""")).first()
        floor = store.current(conn, room.parent_code)
        unit = store.current(conn, floor.parent_code)
        building = store.current(conn, unit.parent_code)
        assert (floor.level, unit.level, building.level) == ("floor", "unit", "building")
        assert store.current(conn, building.parent_code).level == "house_number"
    got = client.get("/geocode", params={"q": room.full_text.replace("室", "户").replace("幢", "栋")}).json()
    assert got["results"][0]["address_code"] == room.code and got["results"][0]["level"] == "room"


def test_plan_houses_takes_plan_registry_arguments():
    """`plan_registry` hands every argument to `plan_houses` by name: the two take the same parameters, in the
    same order, with the same defaults (a parameter added to one and not the other fails here)."""
    import inspect

    from address_registry.build import plan_houses, plan_registry

    a, b = inspect.signature(plan_registry).parameters, inspect.signature(plan_houses).parameters
    assert list(a) == list(b)
    assert [(p.default, p.kind) for p in a.values()] == [(p.default, p.kind) for p in b.values()]
