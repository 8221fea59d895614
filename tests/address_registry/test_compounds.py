"""Compounds (小区 / 院落) from the demo's named residential land use: registry rows, membership of the
buildings inside, geocoding, reverse geocoding and the /addresses API — on the real demo data."""

from __future__ import annotations

import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from sqlalchemy import text

from address_registry import codes
from address_registry.build import LanduseIn, compound_variant, merge_compounds

# named landuse=residential areas of the demo file (OSM), one compound per name
DEMO_COMPOUNDS = {
    "三航小区",
    "上港小区",
    "乳山三村",
    "乳山二村",
    "乳山四村",
    "崂山三村",
    "崂山二村",
    "崂山五村",
    "崂山四村",
    "招远小区",
    "梅一小区",
    "梅园三街坊",
}


def _compound(engine, name: str) -> dict:
    with engine.connect() as conn:
        row = conn.execute(
            text("""SELECT code, parent_code, district_code, community_code, components,
                ST_X(geom) AS lon, ST_Y(geom) AS lat FROM standard_address
            WHERE level = 'compound' AND valid_to IS NULL AND status = 'active'
              AND components->>'compound' = :n"""),
            {"n": name},
        ).one()
    return dict(row._mapping)


def _members_by_footprint(engine, name: str) -> set[int]:
    """Building ids at least half inside the compound's OSM polygons, computed by PostGIS alone."""
    with engine.connect() as conn:
        return set(
            conn.execute(
                text("""
            WITH c AS (SELECT ST_Union(geom) AS g FROM landuse WHERE name = :n AND kind = 'residential')
            SELECT b.id FROM building b, c WHERE ST_Intersects(b.geom, c.g)
              AND ST_Area(ST_Intersection(b.geom, c.g)) >= 0.5 * ST_Area(b.geom)"""),
                {"n": name},
            ).scalars()
        )


def test_landuse_loaded_merged_per_osm_id(engine):
    with engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT name, count(*) AS n, bool_and(ST_IsValid(geom)) AS valid,
                bool_and(label IS NULL OR ST_Intersects(label, geom)) AS label_inside
            FROM landuse WHERE kind = 'residential' GROUP BY name""")
        ).all()
    by_name = {r.name: r for r in rows}
    assert set(by_name) == DEMO_COMPOUNDS
    # 崂山三村 comes as three tile pieces of one OSM area: one row
    assert by_name["崂山三村"].n == 1
    assert all(r.valid and r.label_inside for r in rows)


def test_compound_rows_and_codes(engine, registry):
    assert registry["compound"] == len(DEMO_COMPOUNDS)
    with engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT code, parent_code, district_code, components->>'compound' AS name,
                ST_Contains(area, geom) AS point_inside, normalized_text, source
            FROM standard_address WHERE level = 'compound' AND valid_to IS NULL""")
        ).all()
    assert {r.name for r in rows} == DEMO_COMPOUNDS
    for r in rows:
        assert codes.is_valid(r.code) and len(r.code) == 11 and codes.level_of(r.code) == "compound"
        assert r.parent_code == codes.district_code(r.district_code) == codes.parent_of(r.code)
        assert r.point_inside, r.name
        assert r.normalized_text.endswith(r.name) and r.source == "osm"
    # all 12 lie in 浦东新区 and got serials 1..12 (roads of the district keep their own numbering)
    assert sorted(codes.serial_of(r.code) for r in rows) == list(range(1, 13))
    assert {r.district_code for r in rows} == {"310115"}


def test_buildings_inside_carry_the_compound(engine, registry):
    shanggang = _compound(engine, "上港小区")
    expected = _members_by_footprint(engine, "上港小区")
    assert len(expected) == 19  # footprints of the demo data inside 上港小区
    with engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT code, level, building_id, compound_code, components->>'compound' AS name
            FROM standard_address WHERE valid_to IS NULL AND status = 'active' AND building_id = ANY(:ids)"""),
            {"ids": list(expected)},
        ).all()
        tagged = set(
            conn.execute(
                text("""SELECT building_id FROM standard_address
            WHERE valid_to IS NULL AND compound_code = :c AND building_id IS NOT NULL"""),
                {"c": shanggang["code"]},
            ).scalars()
        )
    assert rows and {r.building_id for r in rows} == expected
    assert all(r.compound_code == shanggang["code"] and r.name == "上港小区" for r in rows)
    assert tagged == expected  # nothing outside the polygon is tagged
    # the compound's name is part of the formatted text but not of the identifying key
    one = rows[0]
    with engine.connect() as conn:
        full, norm = conn.execute(
            text(
                "SELECT full_text, normalized_text FROM standard_address WHERE code = :c AND valid_to IS NULL"
            ),
            {"c": one.code},
        ).one()
    assert "上港小区" in full and "上港小区" not in norm


@pytest.mark.parametrize("query", ["崂山三村", "上海市浦东新区崂山三村", "崂山3村"])
def test_geocode_compound_inside_its_polygon(client, engine, registry, query):
    res = client.get("/geocode", params={"q": query}).json()["results"]
    top = res[0]
    assert top["level"] == "compound" and top["components"]["compound"] == "崂山三村"
    assert top["address_code"] == _compound(engine, "崂山三村")["code"]
    with engine.connect() as conn:
        inside = conn.execute(
            text("""SELECT ST_Contains(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
            FROM landuse WHERE name = '崂山三村'"""),
            {"lon": top["lon"], "lat": top["lat"]},
        ).scalar_one()
    assert inside


def test_geocode_compound_plus_house_number_resolves_to_the_house(client, engine, registry):
    code = _compound(engine, "三航小区")["code"]
    with engine.connect() as conn:
        houses = conn.execute(
            text("""SELECT code, components FROM standard_address
            WHERE valid_to IS NULL AND status = 'active' AND level = 'house_number' AND compound_code = :c
            ORDER BY code"""),
            {"c": code},
        ).all()
    assert houses
    numbers = [h.components["house_number"] for h in houses]
    unique = [h for h in houses if numbers.count(h.components["house_number"]) == 1]
    house = unique[0]
    comps = house.components
    for query in (
        f"三航小区{comps['house_number']}",
        f"三航小区{comps['road']}{comps['house_number']}",
        f"{comps['road']}{comps['house_number']}(三航小区)",
    ):
        top = client.get("/geocode", params={"q": query}).json()["results"][0]
        assert top["address_code"] == house.code, query
        assert top["level"] == "house_number" and top["components"]["compound"] == "三航小区"
    # a number that no house of the compound has: the compound itself, with a lower score
    res = client.get("/geocode", params={"q": "三航小区9999号"}).json()["results"]
    assert res[0]["level"] == "compound" and res[0]["score"] < 0.9


def test_reverse_inside_compound_reports_it(client, engine, registry):
    laoshan = _compound(engine, "崂山三村")
    body = client.get("/reverse", params={"lon": laoshan["lon"], "lat": laoshan["lat"]}).json()
    assert body["compound"] == {"code": laoshan["code"], "name": "崂山三村"}
    # GCJ-02 input of the same spot
    from geo.crs import from_wgs84

    glon, glat = from_wgs84(laoshan["lon"], laoshan["lat"], "gcj02")
    body = client.get("/reverse", params={"lon": float(glon), "lat": float(glat), "crs": "gcj02"}).json()
    assert body["compound"]["code"] == laoshan["code"]
    # the Bund (中山东一路) is in no compound
    body = client.get("/reverse", params={"lon": 121.4903, "lat": 31.2400}).json()
    assert body["compound"] is None


def test_addresses_api_lists_compounds_and_members(client, engine, registry):
    body = client.get("/addresses", params={"level": "compound", "limit": 100}).json()
    assert body["total"] == len(DEMO_COMPOUNDS)
    assert {a["components"]["compound"] for a in body["addresses"]} == DEMO_COMPOUNDS
    code = _compound(engine, "上港小区")["code"]
    one = client.get(f"/addresses/{code}").json()
    assert one["level"] == "compound" and one["area"]["type"] == "MultiPolygon"
    assert {"alias": "上港小区", "kind": "compound", "source": "osm"} in one["aliases"]
    members = client.get("/addresses", params={"compound_code": code, "limit": 1000}).json()
    assert members["total"] == one["members_total"] > 0
    assert all(a["compound_code"] == code for a in members["addresses"])
    assert client.get("/addresses", params={"level": "estate"}).status_code == 422


def test_alias_variant_of_compound(engine, registry):
    code = _compound(engine, "梅园三街坊")["code"]
    with engine.connect() as conn:
        aliases = dict(
            conn.execute(
                text("SELECT alias, kind FROM address_alias WHERE address_code = :c AND valid_to IS NULL"),
                {"c": code},
            ).all()
        )
    assert aliases == {"梅园三街坊": "compound", "梅园3街坊": "variant"}


def test_rebuild_changes_nothing(engine, registry):
    from address_registry.service import build_registry

    with engine.begin() as conn:
        stats = build_registry(conn)
    assert stats.get("created", 0) == 0 and stats.get("updated", 0) == 0
    assert stats["compound"] == len(DEMO_COMPOUNDS)


def test_manual_address_inside_compound_gets_it(client, engine, registry):
    """A house number created by hand at a point inside a compound carries that compound."""
    laoshan = _compound(engine, "崂山三村")
    with engine.connect() as conn:
        road = conn.execute(
            text("""SELECT code FROM standard_address WHERE level = 'road' AND valid_to IS NULL
            AND components->>'road' = '崂山路'""")
        ).scalar_one()
    r = client.post(
        "/addresses",
        json={
            "level": "house_number",
            "parent_code": road,
            "components": {"house_number": "9998号"},
            "lon": laoshan["lon"],
            "lat": laoshan["lat"],
            "changed_by": "test",
            "reason": "compound membership",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["compound_code"] == laoshan["code"] and body["components"]["compound"] == "崂山三村"
    top = client.get("/geocode", params={"q": "崂山三村9998号"}).json()["results"][0]
    assert top["address_code"] == body["address_code"]
    retired = client.post(
        f"/addresses/{body['address_code']}/retire", json={"changed_by": "test", "reason": "cleanup"}
    )
    assert retired.status_code == 200


def test_merge_compounds_pure():
    a = Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    b = Polygon([(1, 0), (2, 0), (2, 1), (1, 1)])
    far_label = Point(5, 5)
    merged = merge_compounds(
        [
            LanduseIn(1, "residential", "甲村", MultiPolygon([a])),
            LanduseIn(2, "residential", "甲村", b, far_label),
            LanduseIn(3, "commercial", "乙大厦", a),
            LanduseIn(4, "residential", " ", a),
        ]
    )
    assert [m[0] for m in merged] == ["甲村"]
    name, area, label = merged[0]
    assert shapely.equals(area, shapely.union(a, b)) and area.contains(label)  # the far label is not used
    assert compound_variant("崂山三村") == "崂山3村" and compound_variant("上港小区") is None
    assert compound_variant("梅园十二街坊") == "梅园12街坊"


def test_compound_code_scheme():
    district = codes.district_code("310115")
    c = codes.child_code(district, "compound", 7)
    assert c[:-1] == "3101150007" and codes.level_of(c) == "compound" and codes.parent_of(c) == district
    road = codes.child_code(district, "road", 7)
    assert codes.level_of(road) == "road"
    with pytest.raises(codes.CodeError):
        codes.child_code(road, "compound", 1)
    with pytest.raises(codes.CodeError):
        codes.child_code(c, "house_number", 1)
    with pytest.raises(codes.CodeError):
        codes.child_code(district, "compound", 10_000)
