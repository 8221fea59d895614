"""The 小区 (compound) layer: OGC API Features and vector tiles from the compound addresses' polygons,
on the real demo registry; edits of a compound invalidate every cached tile its polygon meets."""

from __future__ import annotations

import mapbox_vector_tile
import pytest
import shapely
from shapely.geometry import shape
from sqlalchemy import text

from layers import registry
from tiles.sql import envelope_lonlat
from tiles.tms import tile_for_lonlat

DEMO_COMPOUNDS = {
    "三航小区", "上港小区", "乳山三村", "乳山二村", "乳山四村", "崂山三村",
    "崂山二村", "崂山五村", "崂山四村", "招远小区", "梅一小区", "梅园三街坊",
}  # fmt: skip
BUND = (121.4905, 31.2400)


@pytest.fixture(scope="module")
def compounds(engine):
    """The demo registry (the build is idempotent), and name → (code, label lon, label lat)."""
    from address_registry.service import build_registry

    with engine.begin() as conn:
        build_registry(conn)
        rows = conn.execute(
            text("""SELECT components->>'compound' AS name, code, ST_X(geom) AS lon, ST_Y(geom) AS lat
            FROM standard_address WHERE level = 'compound' AND valid_to IS NULL AND status = 'active'""")
        ).all()
    return {r.name: r for r in rows}


@pytest.fixture(autouse=True)
def _fresh_cache(engine):
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM tile_cache"))


def _tile_features(client, t) -> tuple[str, list[dict]]:
    r = client.get(f"/collections/compound/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}")
    assert r.status_code == 200
    layers = mapbox_vector_tile.decode(r.content) if r.content else {}
    return r.headers["x-tile-cache"], layers.get("compound", {}).get("features", [])


def test_registered_with_a_style_and_listed(client, compounds):
    layer = registry.get("compound")
    assert layer.title_zh == "小区" and layer.geom_column == "area"
    assert {p.name for p in layer.properties} >= {"name", "code"}
    body = client.get("/collections").json()
    listed = {c["id"]: c for c in body["collections"]}
    assert listed["compound"]["title"] == "小区"
    meta = {m["id"]: m for m in client.get("/map/layers.json").json()["layers"]}
    assert meta["compound"]["style"]["leaflet"]["color"].startswith("#")


def test_collection_returns_the_demo_compounds_with_valid_polygons(client, engine, compounds):
    fc = client.get("/collections/compound/items", params={"limit": 100}).json()
    assert fc["numberMatched"] == len(DEMO_COMPOUNDS) == fc["numberReturned"]
    by_name = {f["properties"]["name"]: f for f in fc["features"]}
    assert set(by_name) == DEMO_COMPOUNDS
    for name, f in by_name.items():
        props = f["properties"]
        assert props["code"] == compounds[name].code
        assert name in props["full_text"] and "components" not in props
        geom = shape(f["geometry"])
        assert geom.geom_type == "MultiPolygon" and geom.is_valid and not geom.is_empty
        for poly in geom.geoms:
            assert poly.exterior.is_ccw  # RFC 7946 right-hand rule
        # the polygon is the compound's land use (OSM), merged per name
        with engine.connect() as conn:
            wkb = conn.execute(
                text(
                    "SELECT ST_AsBinary(ST_Union(geom)) FROM landuse WHERE kind = 'residential' AND name = :n"
                ),
                {"n": name},
            ).scalar_one()
        osm = shapely.from_wkb(bytes(wkb))
        assert geom.symmetric_difference(osm).area < 0.01 * osm.area, name
        assert geom.contains(shapely.Point(compounds[name].lon, compounds[name].lat))
    one = client.get("/collections/compound/items", params={"name": "上港小区"}).json()
    assert [f["properties"]["code"] for f in one["features"]] == [compounds["上港小区"].code]


def test_tile_over_shanggang_contains_the_layer(client, compounds):
    c = compounds["上港小区"]
    status, feats = _tile_features(client, tile_for_lonlat(c.lon, c.lat, 16))
    assert status == "miss"
    assert {"上港小区"} <= {f["properties"]["name"] for f in feats}
    assert c.code in {f["properties"]["code"] for f in feats}
    # the Bund holds no compound; the basemap is unchanged (the layer is an overlay)
    assert _tile_features(client, tile_for_lonlat(*BUND, 16))[1] == []


def test_editing_a_compound_invalidates_tiles_away_from_its_label_point(client, engine, compounds):
    """Tile invalidation covers `area`, not only the label point `geom` (migration 0008)."""
    c = compounds["上港小区"]
    with engine.connect() as conn:
        lon, lat = conn.execute(
            text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_Difference(area,
                ST_Buffer(geom::geography, 120)::geometry)) AS p
            FROM standard_address WHERE code = :c AND valid_to IS NULL) s"""),
            {"c": c.code},
        ).one()
    far = tile_for_lonlat(lon, lat, 19)
    x0, y0, x1, y1 = envelope_lonlat(far)
    assert not (x0 <= c.lon <= x1 and y0 <= c.lat <= y1)  # the label point is outside this tile
    assert _tile_features(client, far)[0] == "miss"
    status, feats = _tile_features(client, far)
    assert status == "hit" and "上港小区" in {f["properties"]["name"] for f in feats}
    rename = text("""UPDATE standard_address SET components = jsonb_set(components, '{compound}', to_jsonb(
        CAST(:n AS text))) WHERE code = :c AND valid_to IS NULL""")
    try:
        with engine.begin() as conn:
            conn.execute(rename, {"n": "测试小区", "c": c.code})
        status, feats = _tile_features(client, far)
        names = {f["properties"]["name"] for f in feats}
        assert status == "miss" and "测试小区" in names and "上港小区" not in names
    finally:
        with engine.begin() as conn:
            conn.execute(rename, {"n": "上港小区", "c": c.code})
    status, feats = _tile_features(client, far)
    assert status == "miss" and "上港小区" in {f["properties"]["name"] for f in feats}
