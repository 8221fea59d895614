"""Registering a compound (小区) through `POST /addresses` and correcting its polygon with `PATCH`, on the
real demo data: a polygon drawn around a few real buildings of 黄浦区 (310101, where the demo has no
compound). Every test that writes runs inside a transaction that is rolled back (the API's connection
is that transaction), so the registry the other test directories see is unchanged."""

from __future__ import annotations

import json

import pytest
import shapely
from shapely.geometry import Point, mapping, shape
from sqlalchemy import text

from address_registry import codes, service, store
from address_registry.geocoder import Geocoder
from geo.crs import geometry_from_wgs84
from gis_api.deps import db_conn, read_conn

WHO = "网格员 王芳"
# through the API, changed_by is the authenticated caller (the `client` fixture's admin), never a body field
CALLER = "m-client-admin"
WHY = "新建小区登记 test_compound_create"
NAME = "外滩测试三村"  # digit variant: 外滩测试3村
DISTRICT = "310101"

# the apartment block of 黄浦区 with the lowest building id, and the 3 footprints nearest to it; the
# polygon is their convex hull grown by 2 m
SITE_SQL = """
WITH seed AS (
    SELECT b.id, b.geom FROM building b
    JOIN standard_address s ON s.building_id = b.id AND s.valid_to IS NULL AND s.status = 'active'
     AND s.level = 'building' AND s.district_code = :d
    ORDER BY b.id LIMIT 1),
near AS (SELECT b.id, b.geom FROM building b, seed ORDER BY b.geom <-> ST_Centroid(seed.geom) LIMIT 4)
SELECT (SELECT id FROM seed) AS seed_id, (SELECT array_agg(id ORDER BY id) FROM near) AS ids,
       ST_AsGeoJSON(ST_Buffer(ST_ConvexHull(ST_Collect(geom))::geography, 2)::geometry) AS area,
       ST_AsGeoJSON(ST_Buffer((SELECT geom FROM seed)::geography, 1)::geometry) AS seed_area
FROM near"""

# what the build's rule gives, computed by PostGIS alone: addresses whose building has at least half its
# footprint inside, and house numbers without a footprint whose point is inside
MEMBERS_SQL = """
WITH g AS (SELECT ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326) AS g)
SELECT s.code FROM standard_address s, g
WHERE s.valid_to IS NULL AND s.status = 'active' AND s.level NOT IN ('road', 'compound')
  AND ((s.building_id IS NOT NULL AND s.building_id IN (
            SELECT b.id FROM building b WHERE ST_Intersects(b.geom, g.g)
              AND ST_Area(ST_Intersection(b.geom, g.g)) >= 0.5 * ST_Area(b.geom)))
       OR (s.building_id IS NULL AND ST_Intersects(s.geom, g.g)))"""


@pytest.fixture(scope="module")
def site(engine, registry) -> dict:
    with engine.connect() as conn:
        row = conn.execute(text(SITE_SQL), {"d": DISTRICT}).one()
        area = json.loads(row.area)
        members = set(conn.execute(text(MEMBERS_SQL), {"g": row.area}).scalars())
        seed_members = set(conn.execute(text(MEMBERS_SQL), {"g": row.seed_area}).scalars())
        compounds_here = conn.execute(
            text("""SELECT count(*) FROM standard_address WHERE level = 'compound' AND district_code = :d"""),
            {"d": DISTRICT},
        ).scalar_one()
    assert compounds_here == 0  # the demo has no compound in 黄浦区: these tests add the first
    assert len(row.ids) == 4
    assert len(members) >= 10  # the four footprints' house numbers, buildings, units, floors, rooms
    assert seed_members and seed_members < members
    return {
        "area": area,
        "seed_area": json.loads(row.seed_area),
        "members": members,
        "seed_members": seed_members,
        "building_ids": list(row.ids),
    }


@pytest.fixture
def api(client, tx):
    """The test client with every request on the rolled-back test transaction."""

    def on_tx():
        yield tx

    # read-only routes take read_conn (issue 14): on the same transaction too, or they miss its rows
    client.app.dependency_overrides[db_conn] = on_tx
    client.app.dependency_overrides[read_conn] = on_tx
    try:
        yield client
    finally:
        client.app.dependency_overrides.pop(db_conn, None)
        client.app.dependency_overrides.pop(read_conn, None)


def _body(area: dict, name: str = NAME, **more) -> dict:
    return (
        {"level": "compound", "components": {"compound": name}, "area": area}
        | {
            "changed_by": WHO,
            "reason": WHY,
        }
        | more
    )


def _current(conn, codes_in) -> dict[str, dict]:
    rows = conn.execute(
        text("""SELECT code, version, compound_code, components->>'compound' AS compound, full_text,
            normalized_text, changed_by, change_reason FROM standard_address
        WHERE code = ANY(:c) AND valid_to IS NULL"""),
        {"c": list(codes_in)},
    ).all()
    return {r.code: dict(r._mapping) for r in rows}


def _shifted(area: dict, dlon: float) -> dict:
    return mapping(shapely.affinity.translate(shape(area), xoff=dlon))


def test_create_compound_over_real_buildings(api, tx, site):
    before = _current(tx, site["members"])
    assert all(m["compound_code"] is None for m in before.values())

    r = api.post("/addresses", json=_body(site["area"]))
    assert r.status_code == 201, r.text
    out = r.json()
    code = out["address_code"]

    # code: district 310101 + compound serial 0001 (the first in the district) + the MOD 11,10 check digit
    assert len(code) == 11 and code[:10] == DISTRICT + "0001"
    assert code[-1] == codes.check_digit(code[:-1]) and codes.is_valid(code)
    assert codes.level_of(code) == "compound" and out["parent_code"] == codes.district_code(DISTRICT)
    assert out["level"] == "compound" and out["version"] == 1 and out["source"] == "manual"
    assert out["components"]["compound"] == NAME and out["formatted"].endswith(NAME)
    assert out["changed_by"] == CALLER and out["change_reason"] == WHY
    # the label point (none given) lies inside the polygon; the polygon is stored as drawn
    area = shape(out["area"])
    assert area.geom_type == "MultiPolygon" and area.contains(Point(out["lon"], out["lat"]))
    assert shapely.equals_exact(
        shapely.normalize(area), shapely.normalize(shapely.MultiPolygon([shape(site["area"])])), 1e-9
    )
    assert {(a["alias"], a["kind"]) for a in out["aliases"]} >= {
        (NAME, "compound"),
        ("外滩测试3村", "variant"),
    }

    # the members: exactly the addresses the build's rule puts inside, each with a new version
    assert set(out["members"]["joined"]) == site["members"] and out["members"]["left"] == []
    after = _current(tx, site["members"])
    for c, m in after.items():
        assert m["compound_code"] == code and m["compound"] == NAME
        assert m["version"] == before[c]["version"] + 1
        assert m["changed_by"] == CALLER and WHY in m["change_reason"] and code in m["change_reason"]
        assert NAME in m["full_text"] and NAME not in before[c]["full_text"]
        assert m["normalized_text"] == before[c]["normalized_text"]
    one = sorted(after)[0]
    hist = store.history(tx, one)
    assert hist[-2].compound_code is None and hist[-2].extra["valid_to"] is not None
    # nothing outside joined
    assert (
        tx.execute(
            text("SELECT count(*) FROM standard_address WHERE valid_to IS NULL AND compound_code = :c"),
            {"c": code},
        ).scalar_one()
        == len(site["members"]) + 1
    )  # the compound carries its own code too

    # GET and the listing agree
    got = api.get(f"/addresses/{code}").json()
    assert got["members_total"] == out["members_total"] == len(site["members"]) + 1

    # geocoding the name (and its digit variant) answers the compound at level compound
    geocoder = Geocoder(**store.load_geocoder_inputs(tx))
    for q in (NAME, "外滩测试3村", "上海市黄浦区" + NAME):
        top = geocoder.geocode(q)[0]
        assert top["address_code"] == code and top["level"] == "compound", q


def test_community_is_the_one_holding_most_of_the_area(api, tx, site):
    """Two communities (drawn in the rolled-back transaction) split the polygon 70 / 30 from west to
    east: the compound's community is the 70 % one, its township that community's parent."""
    minx, miny, maxx, maxy = shape(site["area"]).bounds
    cut = minx + 0.7 * (maxx - minx)
    tx.execute(
        text("""INSERT INTO admin_unit (code, name, level, parent_code, source, geom) VALUES
        ('310101990', '测试街道', 'township', '310101', 'test',
         ST_Multi(ST_MakeEnvelope(:x0 - 0.01, :y0 - 0.01, :x1 + 0.01, :y1 + 0.01, 4326))),
        ('310101990001', '西测试社区', 'community', '310101990', 'test',
         ST_Multi(ST_MakeEnvelope(:x0 - 0.01, :y0 - 0.01, :cut, :y1 + 0.01, 4326))),
        ('310101990002', '东测试社区', 'community', '310101990', 'test',
         ST_Multi(ST_MakeEnvelope(:cut, :y0 - 0.01, :x1 + 0.01, :y1 + 0.01, 4326)))"""),
        {"x0": minx, "y0": miny, "x1": maxx, "y1": maxy, "cut": cut},
    )
    # a label point given in the east community does not decide: the area does
    east = shape(site["area"]).intersection(shapely.box(cut, miny, maxx, maxy)).representative_point()
    r = api.post("/addresses", json=_body(site["area"], lon=east.x, lat=east.y))
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["lon"], out["lat"]) == pytest.approx((east.x, east.y))
    west_share = (
        shape(site["area"]).intersection(shapely.box(minx, miny, cut, maxy)).area / shape(site["area"]).area
    )
    assert west_share > 0.5
    assert out["community_code"] == "310101990001" and out["components"]["community"] == "西测试社区"
    assert out["township_code"] == "310101990" and out["components"]["township"] == "测试街道"


def test_second_compound_takes_the_next_serial_and_a_rebuild_keeps_both(api, tx, site):
    first = api.post("/addresses", json=_body(site["area"])).json()["address_code"]
    far = _shifted(site["area"], -0.01)  # ~1 km west, still in 黄浦区
    r = api.post("/addresses", json=_body(far, "外滩测试四村", parent_code=DISTRICT))
    assert r.status_code == 201, r.text
    second = r.json()["address_code"]
    assert codes.serial_of(first) == 1 and codes.serial_of(second) == 2

    # a later `shequ address build` (same allocator) neither reuses nor renumbers them, and leaves
    # the members (now changed by a person) in the compound
    service.build_registry(tx)
    rows = tx.execute(
        text("""SELECT code, version, status, components->>'compound' AS name FROM standard_address
        WHERE level = 'compound' AND district_code = :d AND valid_to IS NULL ORDER BY code"""),
        {"d": DISTRICT},
    ).all()
    assert [(r.code, r.version, r.status, r.name) for r in rows] == [
        (first, 1, "active", NAME),
        (second, 1, "active", "外滩测试四村"),
    ]
    assert all(m["compound_code"] == first for m in _current(tx, site["members"]).values())
    # the build's compounds of 浦东新区 keep their own numbering (0001… there)
    assert (
        tx.execute(
            text("""SELECT count(*) FROM (SELECT code FROM standard_address WHERE valid_to IS NULL
        GROUP BY code HAVING count(*) > 1) d""")
        ).scalar_one()
        == 0
    )


def test_allocator_is_shared_with_the_build():
    from address_registry.build import _CodeBook
    from address_registry.records import AddressRecord

    d = codes.district_code(DISTRICT)
    manual = AddressRecord(code=codes.child_code(d, "compound", 7), level="compound", components={})
    book = _CodeBook([manual])
    assert codes.serial_of(book.code_for(("compound", d, "新小区"), d, "compound")) == 8
    # roads under the same district are numbered on their own
    assert codes.serial_of(book.code_for(("road", "新路"), d, "road")) == 1
    alloc = codes.SerialAllocator([manual.code, "not-a-code"])
    assert alloc.next_code(d, "compound") == codes.child_code(d, "compound", 8)
    assert alloc.next_code(d, "compound") == codes.child_code(d, "compound", 9)


def test_same_name_in_the_district_is_409(api, tx, site):
    code = api.post("/addresses", json=_body(site["area"])).json()["address_code"]
    far = _shifted(site["area"], -0.01)
    for name in (NAME, "外滩测试3村", f" {NAME} "):
        r = api.post("/addresses", json=_body(far, name))
        assert r.status_code == 409, (name, r.text)
        assert r.json()["detail"]["existing_code"] == code and "同名" in r.json()["message"]


def test_overlapping_an_active_compound_is_422_naming_it(api, tx, site):
    code = api.post("/addresses", json=_body(site["area"])).json()["address_code"]
    r = api.post("/addresses", json=_body(_shifted(site["area"], 0.0002), "外滩测试五村"))
    assert r.status_code == 422, r.text
    assert code in r.json()["message"] and NAME in r.json()["message"]
    assert r.json()["detail"]["overlaps"][0]["code"] == code


def test_invalid_polygon_is_422_with_the_reason_and_writes_nothing(client, engine, site):
    x, y = shape(site["area"]).centroid.coords[0]
    d = 0.001
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[x - d, y - d], [x + d, y + d], [x + d, y - d], [x - d, y + d], [x - d, y - d]]],
    }
    r = client.post("/addresses", json=_body(bowtie))
    assert r.status_code == 422 and "Self-intersection" in r.json()["message"]
    for bad in (
        {"type": "Point", "coordinates": [x, y]},
        {"type": "Polygon", "coordinates": [[[x, y], [x + d]]]},
        {"type": "Polygon", "coordinates": []},
    ):
        r = client.post("/addresses", json=_body(bad))
        assert r.status_code == 422 and r.json()["message"], bad
    r = client.post("/addresses", json=_body(None))
    assert r.status_code == 422 and "area" in r.json()["message"]
    # a road with an area: refused
    r = client.post(
        "/addresses",
        json={
            "level": "road",
            "parent_code": DISTRICT,
            "components": {"road": "测试新路"},
            "lon": x,
            "lat": y,
            "area": site["area"],
            "changed_by": WHO,
            "reason": WHY,
        },
    )
    assert r.status_code == 422 and "area" in r.json()["message"]
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM standard_address WHERE level = 'compound' AND district_code = :d"),
                {"d": DISTRICT},
            ).scalar_one()
            == 0
        )


def test_outside_china_and_across_districts_are_422(client, engine, site):
    paris = {"type": "Polygon", "coordinates": [[[2.35, 48.85], [2.36, 48.85], [2.36, 48.86], [2.35, 48.85]]]}
    r = client.post("/addresses", json=_body(paris))
    assert r.status_code == 422 and "中国境内" in r.json()["message"]
    # across the Huangpu: half in 黄浦区, half in 浦东新区
    x, y = 121.4950, 31.2350
    across = {
        "type": "Polygon",
        "coordinates": [
            [[x - 0.01, y], [x + 0.01, y], [x + 0.01, y + 0.005], [x - 0.01, y + 0.005], [x - 0.01, y]]
        ],
    }
    r = client.post("/addresses", json=_body(across))
    assert r.status_code == 422 and "一个区县" in r.json()["message"]
    assert {d["code"] for d in r.json()["detail"]["districts"]} >= {"310101", "310115"}
    # a label point outside the polygon
    r = client.post("/addresses", json=_body(site["area"], lon=121.40, lat=31.20))
    assert r.status_code == 422 and "标注点" in r.json()["message"]
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM standard_address WHERE level = 'compound' AND district_code = :d"),
                {"d": DISTRICT},
            ).scalar_one()
            == 0
        )


def test_gcj02_polygon_is_converted_to_wgs84(api, tx, site):
    wgs = shape(site["area"])
    gcj = geometry_from_wgs84(wgs, "gcj02")
    assert shapely.hausdorff_distance(wgs, gcj) > 0.003  # GCJ-02 is offset by some 500 m here
    r = api.post("/addresses", json=_body(mapping(gcj), crs="gcj02"))
    assert r.status_code == 201, r.text
    stored = shape(r.json()["area"])
    assert shapely.hausdorff_distance(stored, wgs) < 1e-6  # back on the WGS84 drawing (< 0.1 m)
    assert set(r.json()["members"]["joined"]) == site["members"]


def test_correcting_the_area_updates_the_members(api, tx, site):
    code = api.post("/addresses", json=_body(site["area"])).json()["address_code"]
    before = _current(tx, site["members"])

    r = api.patch(
        f"/addresses/{code}", json={"area": site["seed_area"], "changed_by": WHO, "reason": "范围缩小"}
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["version"] == 2 and shape(out["area"]).contains(Point(out["lon"], out["lat"]))
    leavers = site["members"] - site["seed_members"]
    assert set(out["members"]["left"]) == leavers and out["members"]["joined"] == []
    after = _current(tx, site["members"])
    for c in leavers:
        assert after[c]["compound_code"] is None and after[c]["compound"] is None
        assert after[c]["version"] == before[c]["version"] + 1 and after[c]["changed_by"] == CALLER
        assert "范围缩小" in after[c]["change_reason"] and NAME not in after[c]["full_text"]
    for c in site["seed_members"]:  # stayed: untouched
        assert after[c] == before[c]
    hist = api.get(f"/addresses/{code}/history").json()["versions"]
    assert [v["version"] for v in hist] == [1, 2] and shape(hist[0]["area"]).area > shape(
        hist[1]["area"]
    ).area

    # grown back: the leavers join again
    r = api.patch(f"/addresses/{code}", json={"area": site["area"], "changed_by": WHO, "reason": "范围恢复"})
    assert r.status_code == 200 and set(r.json()["members"]["joined"]) == leavers
    assert all(m["compound_code"] == code for m in _current(tx, site["members"]).values())

    # a corrected area is validated like a new one; a compound cannot move to another district
    x, y = 121.5100, 31.2400  # 浦东新区
    elsewhere = {"type": "Polygon", "coordinates": [[[x, y], [x + 0.001, y], [x + 0.001, y + 0.001], [x, y]]]}
    r = api.patch(f"/addresses/{code}", json={"area": elsewhere, "changed_by": WHO, "reason": WHY})
    assert r.status_code == 422 and "区县" in r.json()["message"]


def test_openapi_documents_the_compound_request_and_the_response(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {"area", "name", "components", "lon", "lat", "crs"} <= set(schemas["AddressIn"]["properties"])
    assert "lon" not in schemas["AddressIn"].get("required", [])
    assert "area" in schemas["AddressPatch"]["properties"]
    assert {"members", "area", "aliases", "address_code"} <= set(schemas["AddressOut"]["properties"])
    post = spec["paths"]["/addresses"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    patch = spec["paths"]["/addresses/{code}"]["patch"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]
    assert post["$ref"].endswith("/AddressOut") and patch["$ref"].endswith("/AddressOut")


def test_nothing_leaked(engine, registry, site):
    """The rolled-back tests left the registry as the build made it."""
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM standard_address WHERE level = 'compound' AND district_code = :d"),
                {"d": DISTRICT},
            ).scalar_one()
            == 0
        )
        assert all(m["compound_code"] is None for m in _current(conn, site["members"]).values())
        assert (
            conn.execute(text("SELECT count(*) FROM address_alias WHERE alias LIKE '外滩测试%'")).scalar_one()
            == 0
        )
