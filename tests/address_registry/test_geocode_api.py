"""GET /geocode, GET /reverse, POST /geocode/batch on the real registry."""

import math

import pytest
from sqlalchemy import text

from geo.crs import wgs84_to_gcj02


def _dist_m(lon1, lat1, lon2, lat2):
    kx = 111_320 * math.cos(math.radians(lat1))
    return math.hypot((lon2 - lon1) * kx, (lat2 - lat1) * 110_574)


def test_exact_and_variant_forms(client, registry):
    r = client.get("/geocode", params={"q": "上海市浦东新区世纪大道1号"})
    assert r.status_code == 200
    best = r.json()["results"][0]
    assert set(best) >= {"address_code", "formatted", "components", "lon", "lat", "level", "score"}
    assert best["formatted"].endswith("世纪大道1号") and best["level"] == "house_number"
    assert best["components"]["road"] == "世纪大道" and best["components"]["district"] == "浦东新区"
    for q in ("世纪大道一号", "浦东 世纪大道 １号 联系人王先生 13912345678", "东方明珠电视塔", "世纪大到1号"):
        got = client.get("/geocode", params={"q": q}).json()["results"]
        assert got and got[0]["address_code"] == best["address_code"], q


def test_levels_road_and_building(client, registry, engine):
    road = client.get("/geocode", params={"q": "黄浦区九江路"}).json()["results"][0]
    assert road["level"] == "road" and road["formatted"] == "上海市黄浦区九江路"
    # a road with a numeral in its name, typed with a digit (generated variant alias)
    one = client.get("/geocode", params={"q": "中山东一路"}).json()["results"][0]
    digit = client.get("/geocode", params={"q": "中山东1路"}).json()["results"][0]
    assert one["level"] == "road" and digit["address_code"] == one["address_code"] and digit["score"] == 1.0
    with engine.connect() as conn:
        b = conn.execute(text("""SELECT code, full_text FROM standard_address WHERE level = 'building'
            AND valid_to IS NULL ORDER BY code LIMIT 1""")).first()
    got = client.get("/geocode", params={"q": b.full_text.replace("幢", "号楼")}).json()["results"][0]
    assert got["address_code"] == b.code and got["level"] == "building"


def test_interpolated_house_number(client, registry, geocoder):
    # a road with real (OSM) numbers of one parity around a missing number of that parity
    found = None
    for code, numbering in sorted(geocoder.numbering.items()):
        numbers = sorted({a.number for a in numbering.anchors if a.real})
        gaps = [(a, b) for a, b in zip(numbers, numbers[1:], strict=False)
                if b - a >= 4 and a % 2 == b % 2 and (code, f"{a + 2}号") not in geocoder.below]
        if gaps:
            found = (code, *gaps[0])
            break
    if found is None:
        pytest.fail("no road with a gap in its numbers")
    road_code, a, b = found
    missing = a + 2
    road = geocoder.by_code[road_code]
    q = f"{road.components['district']}{road.components['road']}{missing}号"
    res = client.get("/geocode", params={"q": q}).json()["results"]
    best = res[0]
    assert best["level"] == "house_number_interpolated" and best["accuracy"] == "interpolated"
    assert best["components"]["house_number"] == f"{missing}号" and best["source"] is None
    assert best["radius_m"] > 0 and best["anchors"]
    assert best["address_code"] == road_code
    lo = geocoder.by_code[geocoder.below[(road_code, f"{a}号")]]
    hi = geocoder.by_code[geocoder.below[(road_code, f"{b}号")]]
    span = _dist_m(lo.lon, lo.lat, hi.lon, hi.lat)
    assert _dist_m(lo.lon, lo.lat, best["lon"], best["lat"]) <= span + 30
    assert _dist_m(hi.lon, hi.lat, best["lon"], best["lat"]) <= span + 30


def test_crs_out_gcj02(client, registry):
    w = client.get("/geocode", params={"q": "世纪大道1号", "limit": 1}).json()["results"][0]
    g = client.get("/geocode", params={"q": "世纪大道1号", "limit": 1, "crs": "gcj02"}).json()["results"][0]
    exp = wgs84_to_gcj02(w["lon"], w["lat"])
    assert abs(g["lon"] - exp[0]) < 1e-6 and abs(g["lat"] - exp[1]) < 1e-6
    assert 300 < _dist_m(w["lon"], w["lat"], g["lon"], g["lat"]) < 800  # the GCJ-02 offset in Shanghai
    assert client.get("/geocode", params={"q": "世纪大道1号", "crs": "bd09"}).status_code == 422


def test_reverse_nearest_with_admin_units(client, registry):
    w = client.get("/geocode", params={"q": "世纪大道1号", "limit": 1}).json()["results"][0]
    r = client.get("/reverse", params={"lon": w["lon"] + 0.0001, "lat": w["lat"]})
    assert r.status_code == 200
    body = r.json()
    assert body["address"]["address_code"] == w["address_code"]
    # 9 m east of the tower's point: inside its footprint (the footprint's address), or 5–15 m from its point
    a = body["address"]
    assert (a["match"] == "footprint" and a["distance_m"] < 5) or (a["match"] == "nearest" and 5 < a["distance_m"] < 15)
    assert a["source"] == "osm" and a["accuracy"] == "surveyed" and a["radius_m"] >= 10
    assert body["district"]["code"] == "310115"
    assert "township" in body and "community" in body
    # township / community / grid: whatever polygons hold the point now (the grids feature may have run)
    from sqlalchemy import text as sql

    engine = client.app.state.engine
    with engine.connect() as conn:
        community = conn.execute(sql("""SELECT code FROM admin_unit WHERE level = 'community'
            AND (valid_to IS NULL OR valid_to > now()) AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) ORDER BY code LIMIT 1"""),
                                 {"x": w["lon"] + 0.0001, "y": w["lat"]}).scalar()
        has_grid = conn.execute(sql("SELECT to_regclass('public.grid') IS NOT NULL")).scalar()
        grid = conn.execute(sql("""SELECT code FROM grid WHERE valid_to IS NULL AND level = 'grid'
            AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) ORDER BY code LIMIT 1"""),
                            {"x": w["lon"] + 0.0001, "y": w["lat"]}).scalar() if has_grid else None
    assert (body["community"] or {}).get("code") == community
    assert (body["grid"] or {}).get("code") == grid
    assert all(a["level"] in ("house_number", "building") for a in
               client.get("/reverse", params={"lon": w["lon"], "lat": w["lat"], "limit": 10}).json()["nearby"])
    # the same point given in GCJ-02 finds the same address
    glon, glat = wgs84_to_gcj02(w["lon"] + 0.0001, w["lat"])
    g = client.get("/reverse", params={"lon": glon, "lat": glat, "crs": "gcj02"}).json()
    assert g["address"]["address_code"] == w["address_code"]
    assert abs(g["address"]["distance_m"] - body["address"]["distance_m"]) < 0.5


@pytest.mark.parametrize("params", [
    {"lon": 2.35, "lat": 48.85},          # Paris
    {"lon": "abc", "lat": 31.2},          # malformed
    {"lon": 121.5, "lat": 95},            # out of range
    {"lon": 121.5},                       # missing lat
])
def test_reverse_rejects_bad_coordinates(client, registry, params):
    r = client.get("/reverse", params=params)
    assert r.status_code == 422
    assert r.json()["message"]


def test_batch_in_input_order_and_limits(client, registry):
    qs = ["世纪大道1号", "黄浦区九江路", "", "不存在的地方xyz", "东方明珠电视塔"]
    r = client.post("/geocode/batch", json={"addresses": qs})
    assert r.status_code == 200
    out = r.json()["results"]
    assert [o["query"] for o in out] == qs and [o["index"] for o in out] == list(range(5))
    assert out[0]["results"][0]["address_code"] == out[4]["results"][0]["address_code"]
    assert out[1]["results"][0]["level"] == "road"
    assert out[2]["results"] == []
    # a bare list works too
    assert client.post("/geocode/batch", json=qs).json()["count"] == 5
    big = client.post("/geocode/batch", json={"addresses": ["世纪大道1号"] * 10_001})
    assert big.status_code == 413
    ok = client.post("/geocode/batch", json={"addresses": ["世纪大道1号"] * 10_000})
    assert ok.status_code == 200 and ok.json()["count"] == 10_000
    assert client.post("/geocode/batch", json={"addresses": [1, 2]}).status_code == 422
    assert client.post("/geocode/batch", json={"nope": 1}).status_code == 422
