"""OGC API Features on the real demo data in a real PostGIS."""

import pytest
import shapely
from shapely.geometry import box, shape
from sqlalchemy import text

from geo.crs import gcj02_to_wgs84
from layers import ogc

BASE_LAYERS = ["water", "admin_district", "building", "railway", "road", "poi", "demo_address_point"]
BUND_BBOX = (121.484, 31.235, 121.492, 31.242)  # the Bund, Nanjing East Road end


def test_landing_json_and_conformance(client):
    r = client.get("/?f=json")
    assert r.status_code == 200
    rels = {link["rel"] for link in r.json()["links"]}
    assert {"self", "conformance", "data", "service-desc"} <= rels
    r2 = client.get("/", headers={"Accept": "application/json"})
    assert r2.json()["title"] == r.json()["title"]
    conf = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conf


def test_collections_list_every_base_layer_with_extent(client):
    body = client.get("/collections").json()
    by_id = {c["id"]: c for c in body["collections"]}
    assert set(BASE_LAYERS) <= set(by_id)
    b = by_id["building"]["extent"]["spatial"]["bbox"][0]
    # the demo buildings lie in the Bund / Lujiazui area (data README bbox)
    assert 121.47 < b[0] < b[2] < 121.53 and 31.22 < b[1] < b[3] < 31.26
    assert "temporal" in by_id["admin_district"]["extent"]
    for c in body["collections"]:
        assert any(link["rel"] == "items" for link in c["links"])


@pytest.mark.parametrize("layer_id", BASE_LAYERS)
def test_items_of_every_layer_are_rfc7946_and_counted(client, engine, layer_id):
    r = client.get(f"/collections/{layer_id}/items", params={"limit": 3})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    assert fc["numberReturned"] == len(fc["features"]) <= 3
    table = {"admin_district": "admin_unit WHERE level = 'district' AND geom IS NOT NULL"}.get(layer_id, layer_id)
    with engine.connect() as conn:
        expected = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    assert fc["numberMatched"] == expected > 0
    for f in fc["features"]:
        assert f["type"] == "Feature" and isinstance(f["id"], int)
        geom = shape(f["geometry"])
        assert geom.is_valid or geom.buffer(0).is_valid
        for poly in getattr(geom, "geoms", [geom]) if geom.geom_type.endswith("Polygon") else []:
            assert poly.exterior.is_ccw  # RFC 7946 right-hand rule
        assert "tags" not in f["properties"] and "node_ids" not in f["properties"]


def test_paging_follows_next_links_to_every_feature(client, engine):
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM poi")).scalar_one()
    url, seen, pages = "/collections/poi/items?limit=150", [], 0
    while url:
        fc = client.get(url).json()
        assert fc["numberMatched"] == total
        seen += [f["id"] for f in fc["features"]]
        nxt = [link["href"] for link in fc["links"] if link["rel"] == "next"]
        url = nxt[0].replace("http://testserver", "") if nxt else None
        pages += 1
    assert len(seen) == len(set(seen)) == total
    assert pages == -(-total // 150)


def test_bbox_and_property_filter(client, engine):
    bbox = ",".join(map(str, BUND_BBOX))
    fc = client.get("/collections/building/items", params={"bbox": bbox, "limit": 1000}).json()
    env = box(*BUND_BBOX)
    assert fc["numberMatched"] == len(fc["features"]) > 10
    assert all(shape(f["geometry"]).intersects(env) for f in fc["features"])
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM building WHERE ST_Intersects(geom, "
                              "ST_MakeEnvelope(:a, :b, :c, :d, 4326))"), dict(zip("abcd", BUND_BBOX, strict=True))).scalar_one()
    assert fc["numberMatched"] == n

    fc = client.get("/collections/road/items", params={"kind": "primary", "limit": 50}).json()
    assert fc["numberMatched"] > 0 and all(f["properties"]["kind"] == "primary" for f in fc["features"])
    named = fc["features"][0]["properties"]["name"]
    fc2 = client.get("/collections/road/items", params={"name": named, "kind": "primary"}).json()
    assert fc2["features"] and all(f["properties"]["name"] == named for f in fc2["features"])


def test_datetime_on_valid_time_layer(client, engine):
    with engine.connect() as conn:
        first = conn.execute(text("SELECT min(valid_from) FROM admin_unit WHERE level = 'district'")).scalar_one()
    before = (first.year - 1)
    fc_before = client.get("/collections/admin_district/items", params={"datetime": f"{before}-01-01T00:00:00Z"}).json()
    assert fc_before["numberMatched"] == 0
    fc_now = client.get("/collections/admin_district/items", params={"datetime": "../.."}).json()
    assert fc_now["numberMatched"] > 0
    fc_open = client.get("/collections/admin_district/items",
                         params={"datetime": f"{before}-01-01T00:00:00Z/.."}).json()
    assert fc_open["numberMatched"] == fc_now["numberMatched"]


def test_output_crs_4490_is_lat_lon_and_gcj02_is_offset(client):
    params = {"limit": 5, "bbox": ",".join(map(str, BUND_BBOX))}
    wgs = client.get("/collections/poi/items", params=params).json()["features"]
    r = client.get("/collections/poi/items", params={**params, "crs": ogc.EPSG4490})
    assert r.headers["content-crs"] == f"<{ogc.EPSG4490}>"
    cgcs = r.json()["features"]
    gcj = client.get("/collections/poi/items", params={**params, "crs": "gcj02"}).json()["features"]
    assert [f["id"] for f in wgs] == [f["id"] for f in cgcs] == [f["id"] for f in gcj]
    for a, b, c in zip(wgs, cgcs, gcj, strict=True):
        lon, lat = a["geometry"]["coordinates"]
        assert b["geometry"]["coordinates"] == [lat, lon]
        glon, glat = c["geometry"]["coordinates"]
        # GCJ-02 shifts Shanghai by roughly 0.0045° east and 0.002° south
        assert 0.003 < glon - lon < 0.006 and -0.004 < glat - lat < -0.001
        back = gcj02_to_wgs84(glon, glat)
        assert back == pytest.approx((lon, lat), abs=2e-7)


def test_bbox_crs_gcj02_selects_the_same_area(client):
    x0, y0, x1, y1 = BUND_BBOX
    from geo.crs import wgs84_to_gcj02

    gx0, gy0 = wgs84_to_gcj02(x0, y0)
    gx1, gy1 = wgs84_to_gcj02(x1, y1)
    a = client.get("/collections/building/items", params={"bbox": ",".join(map(str, BUND_BBOX)), "limit": 1}).json()
    b = client.get("/collections/building/items", params={"bbox": f"{gx0},{gy0},{gx1},{gy1}", "bbox-crs": "gcj02",
                                                           "limit": 1}).json()
    assert abs(a["numberMatched"] - b["numberMatched"]) <= 2  # corner rounding only


def test_single_item_and_its_links(client, engine):
    with engine.connect() as conn:
        fid, name = conn.execute(text("SELECT id, name FROM building WHERE name IS NOT NULL ORDER BY id LIMIT 1")).one()
    f = client.get(f"/collections/building/items/{fid}").json()
    assert f["id"] == fid and f["properties"]["name"] == name
    assert any(link["rel"] == "collection" for link in f["links"])
    g = client.get(f"/collections/building/items/{fid}", params={"crs": "EPSG:4326"}).json()
    first = shapely.get_coordinates(shape(f["geometry"]))[0]
    assert g["geometry"]["coordinates"][0][0][0] == pytest.approx([first[1], first[0]])


@pytest.mark.parametrize("url, status", [
    ("/collections/no_such_layer", 404),
    ("/collections/no_such_layer/items", 404),
    ("/collections/road/items?bbox=1,2,3", 400),
    ("/collections/road/items?bbox=121.6,31.2,121.4,31.3", 400),
    ("/collections/road/items?bbox=0,91,1,92", 400),
    ("/collections/road/items?limit=10001", 400),
    ("/collections/road/items?limit=-5", 400),
    ("/collections/road/items?offset=x", 400),
    ("/collections/road/items?crs=EPSG:3857", 400),
    ("/collections/road/items?crs=' OR 1=1 --", 400),
    ("/collections/road/items?kind=primary'; DROP TABLE road; --&limit=1", 200),
    ("/collections/road/items?tags=x", 400),
    ("/collections/road/items?datetime=not-a-date", 400),
    ("/collections/road/items/999999999999", 404),
    ("/collections/road/items/abc", 404),
    ("/collections/road/items/1?crs=EPSG:9999", 400),
    ("/?f=xml", 400),
])
def test_bad_input_is_4xx_with_message(client, engine, url, status):
    r = client.get(url)
    assert r.status_code == status, r.text
    if status >= 400:
        body = r.json()
        assert body["error"] and body["message"]
    with engine.connect() as conn:  # the injection attempt above found nothing and dropped nothing
        assert conn.execute(text("SELECT to_regclass('road') IS NOT NULL")).scalar_one()


def test_layer_whose_table_is_missing_is_skipped(client):
    from layers import registry
    from layers.registry import Layer, Prop
    from layers.store import forget_layers

    ghost = Layer(id="ghost_layer", title_zh="未建表图层", title_en="Ghost", table="no_such_table_yet",
                  geometry_type="Point", properties=(Prop("name"),))
    registry.register(ghost)
    forget_layers()
    try:
        ids = {c["id"] for c in client.get("/collections").json()["collections"]}
        assert "ghost_layer" not in ids and "building" in ids
        assert client.get("/collections/ghost_layer/items").status_code == 404
        assert client.get("/collections/ghost_layer/tiles/WebMercatorQuad/14/13721/6694").status_code == 404
        assert "ghost_layer" not in {layer["id"] for layer in client.get("/map/layers.json").json()["layers"]}
    finally:
        registry._BY_ID.pop("ghost_layer", None)
        registry.LAYERS = tuple(x for x in registry.LAYERS if x.id != "ghost_layer")
        forget_layers()


def test_internal_layers_need_staff_or_a_scoped_key(anon_client, role_headers):
    """数据分类分级: cameras are internal — anonymous callers get 401 and do not see them listed; staff
    accounts and a system key with the features scope read them; a key without that scope gets 403."""
    c = anon_client
    public = {x["id"] for x in c.get("/collections").json()["collections"]}
    assert "building" in public and "camera" not in public and "microgrid" not in public
    r = c.get("/collections/camera/items")
    assert r.status_code == 401 and r.json()["message"]
    assert c.get("/collections/camera/tiles/WebMercatorQuad/16/54886/26776").status_code == 401
    for role in ("grid_manager", "police", "planner", "system"):
        h = role_headers[role]
        ok = c.get("/collections/camera/items", headers=h)
        assert ok.status_code == 200, (role, ok.text)
        tile = c.get("/collections/camera/tiles/WebMercatorQuad/16/54886/26776", headers=h)
        assert tile.status_code == 200 and tile.headers["cache-control"].startswith("private")
        staff = {x["id"] for x in c.get("/collections", headers=h).json()["collections"]}
        assert {"camera", "microgrid"} <= staff
    assert c.get("/collections/camera/items", headers=role_headers["system_geocode"]).status_code == 403
    assert c.get("/collections/building/items?limit=1").status_code == 200  # public stays open


def test_layer_with_a_composite_text_id(client):
    """Layers keyed by several columns (H3 cells) get string ids in GeoJSON and an "fid" tile property."""
    import mapbox_vector_tile

    from layers import registry
    from layers.registry import Layer, Prop
    from layers.store import forget_layers
    from tiles.tms import tile_for_lonlat

    keyed = Layer(id="poi_keyed", title_zh="兴趣点（组合键）", title_en="POI by key", table="poi",
                  geometry_type="Point", properties=(Prop("kind"), Prop("name")), id_column="osm_id",
                  id_sql="t.osm_id || ':' || t.kind", min_zoom=14)
    registry.register(keyed)
    forget_layers()
    try:
        fc = client.get("/collections/poi_keyed/items", params={"limit": 3}).json()
        fid = fc["features"][0]["id"]
        assert isinstance(fid, str) and fid.endswith(":" + fc["features"][0]["properties"]["kind"])
        one = client.get(f"/collections/poi_keyed/items/{fid}").json()
        assert one["id"] == fid
        assert client.get("/collections/poi_keyed/items/0:none").status_code == 404
        lon, lat = one["geometry"]["coordinates"]
        t = tile_for_lonlat(lon, lat, 16)
        tile = mapbox_vector_tile.decode(
            client.get(f"/collections/poi_keyed/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}").content)
        assert fid in {f["properties"]["fid"] for f in tile["poi_keyed"]["features"]}
    finally:
        registry._BY_ID.pop("poi_keyed", None)
        registry.LAYERS = tuple(x for x in registry.LAYERS if x.id != "poi_keyed")
        forget_layers()


@pytest.mark.parametrize("url, status, parameter", [
    ("/collections/no_such_layer/items?bbox=1,2,3", 404, None),  # the collection is checked first
    ("/collections/road/items?limit=1&limit=2&bbox=1,2,3", 400, "limit"),  # then repeated parameters
    ("/collections/road/items?nosuch=1&limit=0", 400, "nosuch"),  # then unknown ones
    ("/collections/road/items?limit=0&offset=-1", 400, "limit"),
    ("/collections/road/items?offset=-1&crs=EPSG:3857", 400, "offset"),
    ("/collections/road/items?crs=EPSG:3857&bbox-crs=EPSG:2000&bbox=1,2,3,4", 400, "crs"),
    ("/collections/road/items?bbox-crs=EPSG:4326", 400, "bbox-crs"),
    ("/collections/road/items?bbox=1,2,3&datetime=yesterday", 400, "bbox"),
    ("/collections/road/items?datetime=yesterday&osm_id=abc", 400, "datetime"),
    ("/collections/road/items?osm_id=abc", 400, "osm_id"),
])
def test_items_parameters_are_checked_in_order(client, url, status, parameter):
    r = client.get(url)
    assert r.status_code == status, r.text
    if parameter is not None:
        assert r.json()["detail"] == {"parameter": parameter}


def test_item_checks_parameters_before_the_id(client):
    assert client.get("/collections/no_such_layer/items/1?foo=1").status_code == 404
    r = client.get("/collections/road/items/abc?foo=1&crs=EPSG:9999")
    assert r.status_code == 400 and "foo" in r.json()["message"]
    r = client.get("/collections/road/items/abc?crs=EPSG:9999")
    assert r.status_code == 400 and r.json()["detail"] == {"parameter": "crs"}
    assert client.get("/collections/road/items/abc").status_code == 404
