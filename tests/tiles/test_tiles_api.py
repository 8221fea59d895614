"""Vector tiles on the real demo data: content, TileJSON, ETag/304, bad input, exact cache invalidation."""

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from layers import registry
from tiles.sql import envelope_lonlat
from tiles.store import get_tile
from tiles.tms import Tile, tile_for_lonlat

BUND = (121.4905, 31.2400)  # Peace Hotel area on the Bund
LUJIAZUI = (121.5065, 31.2380)  # across the river


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data) if data else {}


def ids_in_tile(engine, table: str, tile: Tile, where: str = "true") -> set[int]:
    x0, y0, x1, y1 = envelope_lonlat(tile)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT id FROM {table} t WHERE geom && ST_MakeEnvelope(:a, :b, :c, :d, 4326) "
                f"AND ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326)) AND {where}"
            ),
            {"a": x0, "b": y0, "c": x1, "d": y1},
        ).all()
    return {r[0] for r in rows}


@pytest.fixture(autouse=True)
def _fresh_cache(engine):
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM tile_cache"))


def test_tilejson_template_serves_tiles(client):
    tj = client.get("/collections/building/tiles/WebMercatorQuad/tilejson.json").json()
    assert tj["tilejson"] == "3.0.0" and tj["vector_layers"][0]["id"] == "building"
    assert "height_m" in tj["vector_layers"][0]["fields"]
    t = tile_for_lonlat(*BUND, 16)
    url = tj["tiles"][0].format(z=t.z, x=t.x, y=t.y).replace("http://testserver", "")
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert decode(r.content)["building"]["features"]


def test_point_tile_holds_exactly_the_points_of_the_tile(client, engine):
    t = tile_for_lonlat(*BUND, 16)
    data = client.get(f"/collections/poi/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}").content
    got = {f["id"] for f in decode(data)["poi"]["features"]}
    assert got == ids_in_tile(engine, "poi", t) and got


def test_building_tile_matches_the_table_and_hides_private_columns(client, engine):
    t = tile_for_lonlat(*BUND, 16)
    layer = decode(client.get(f"/collections/building/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}").content)[
        "building"
    ]
    got = {f["id"]: f["properties"] for f in layer["features"]}
    expected = ids_in_tile(engine, "building", t)
    # ST_AsMVTGeom may drop a sliver that rounds to nothing at the tile edge, never add one
    assert set(got) <= expected and len(got) >= 0.95 * len(expected)
    with engine.connect() as conn:
        fid = next(iter(got))
        name, height = conn.execute(
            text("SELECT name, height_m FROM building WHERE id = :i"), {"i": fid}
        ).one()
    assert got[fid].get("name") == name and got[fid].get("height_m") == pytest.approx(height)
    assert not any("tags" in p for p in got.values())


def test_basemap_tile_has_roads_buildings_water_admin(client):
    t = tile_for_lonlat(*BUND, 14)
    r = client.get(f"/tiles/basemap/{t.z}/{t.x}/{t.y}.mvt")
    layers = decode(r.content)
    assert {"road", "building", "water", "admin_district"} <= set(layers)
    tj = client.get("/tiles/basemap/tilejson.json").json()
    assert {"road", "building"} <= {v["id"] for v in tj["vector_layers"]}


def test_low_zoom_thins_minor_roads_and_small_buildings(client, engine):
    t12 = tile_for_lonlat(*BUND, 12)
    roads12 = decode(client.get(f"/collections/road/tiles/WebMercatorQuad/12/{t12.x}/{t12.y}").content)[
        "road"
    ]
    kinds = {f["properties"]["kind"] for f in roads12["features"]}
    assert kinds <= set(registry.MAJOR_ROAD_KINDS) and "residential" not in kinds
    assert len(roads12["features"]) < len(ids_in_tile(engine, "road", t12))
    t13 = tile_for_lonlat(*BUND, 13)
    b13 = decode(client.get(f"/collections/building/tiles/WebMercatorQuad/13/{t13.x}/{t13.y}").content)
    assert len(b13["building"]["features"]) < len(ids_in_tile(engine, "building", t13))


def test_outside_zoom_range_is_an_empty_tile(client):
    r = client.get("/collections/poi/tiles/WebMercatorQuad/5/26/13")  # poi starts at z14
    assert r.status_code == 200 and r.content == b""


def test_etag_and_304(client):
    t = tile_for_lonlat(*BUND, 15)
    url = f"/collections/building/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
    r1 = client.get(url)
    assert r1.headers["x-tile-cache"] == "miss" and r1.headers["etag"].startswith('"')
    assert "no-cache" in r1.headers["cache-control"]
    r2 = client.get(url)
    assert r2.headers["x-tile-cache"] == "hit" and r2.content == r1.content
    r3 = client.get(url, headers={"If-None-Match": r1.headers["etag"]})
    assert r3.status_code == 304 and r3.content == b""


@pytest.mark.parametrize(
    "url",
    [
        "/collections/road/tiles/WebMercatorQuad/3/8/0",
        "/collections/road/tiles/WebMercatorQuad/3/0/-1",
        "/collections/road/tiles/WebMercatorQuad/23/0/0",
        "/collections/road/tiles/WebMercatorQuad/a/b/c",
        "/tiles/basemap/99/1/1.mvt",
    ],
)
def test_bad_tile_address_is_400(client, url):
    r = client.get(url)
    assert r.status_code == 400 and r.json()["message"]


def test_unknown_layer_or_matrix_set_is_404(client):
    assert client.get("/collections/nope/tiles/WebMercatorQuad/14/1/1").status_code == 404
    assert client.get("/collections/road/tiles/WorldCRS84Quad/14/1/1").status_code == 404


def _tile_names(client, tile: Tile) -> tuple[str, set[str]]:
    r = client.get(f"/collections/building/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}")
    names = {f["properties"].get("name") for f in decode(r.content).get("building", {}).get("features", [])}
    return r.headers["x-tile-cache"], names


def test_edit_invalidates_exactly_the_affected_tiles(client, engine):
    here, there = tile_for_lonlat(*BUND, 16), tile_for_lonlat(*LUJIAZUI, 16)
    assert here != there
    base_here = tile_for_lonlat(*BUND, 15)
    ids = ids_in_tile(engine, "building", here) - ids_in_tile(engine, "building", there)
    with engine.connect() as conn:
        fid, old = conn.execute(
            text(
                "SELECT id, name FROM building WHERE id = ANY(:ids) "
                "AND ST_Within(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326)) ORDER BY id LIMIT 1"
            ),
            {
                "ids": list(ids),
                "a": here.bounds_lonlat()[0],
                "b": here.bounds_lonlat()[1],
                "c": here.bounds_lonlat()[2],
                "d": here.bounds_lonlat()[3],
            },
        ).one()
    for t in (here, there):
        _tile_names(client, t)
        assert _tile_names(client, t)[0] == "hit"
    basemap_url = f"/tiles/basemap/{base_here.z}/{base_here.x}/{base_here.y}.mvt"
    client.get(basemap_url)
    assert client.get(basemap_url).headers["x-tile-cache"] == "hit"

    new = "测试改名大楼"
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE building SET name = :n WHERE id = :i"), {"n": new, "i": fid})
        status, names = _tile_names(client, here)
        assert status == "miss" and new in names  # the very next request shows the edit
        assert _tile_names(client, there)[0] == "hit"  # a tile away from the edit keeps its cache
        r = client.get(basemap_url)
        assert r.headers["x-tile-cache"] == "miss"
        assert new in {f["properties"].get("name") for f in decode(r.content)["building"]["features"]}
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE building SET name = :n WHERE id = :i"), {"n": old, "i": fid})
    status, names = _tile_names(client, here)
    assert status == "miss" and new not in names
    with engine.connect() as conn:
        logged = conn.execute(
            text("SELECT op, n_rows FROM layer_change WHERE table_name = 'building' ORDER BY id DESC LIMIT 1")
        ).one()
    assert tuple(logged) == ("UPDATE", 1)


def test_insert_and_delete_invalidate(client, engine):
    t = tile_for_lonlat(*BUND, 16)
    url = f"/collections/poi/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
    before = {f["id"] for f in decode(client.get(url).content)["poi"]["features"]}
    lon0, lat0, lon1, lat1 = t.bounds_lonlat()
    try:
        with engine.begin() as conn:
            new_id = conn.execute(
                text(
                    "INSERT INTO poi (id, osm_id, kind, name, geom) VALUES ((SELECT max(id) + 1 FROM poi), -424242, "
                    "'test', '测试点', ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"
                ),
                {"x": (lon0 + lon1) / 2, "y": (lat0 + lat1) / 2},
            ).scalar_one()
        r = client.get(url)
        assert r.headers["x-tile-cache"] == "miss"
        assert {f["id"] for f in decode(r.content)["poi"]["features"]} == before | {new_id}
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM poi WHERE osm_id = -424242"))
    assert {f["id"] for f in decode(client.get(url).content)["poi"]["features"]} == before


def test_tile_rendered_before_a_concurrent_edit_is_not_cached(engine):
    """The stale-tile race: render from an old snapshot, edit commits, render must not be stored."""
    t = tile_for_lonlat(*BUND, 17)
    layer = registry.get("building")
    with engine.connect() as conn:
        fid, old = conn.execute(
            text(
                "SELECT id, name FROM building WHERE geom && ST_MakeEnvelope(:a,:b,:c,:d,4326) "
                "ORDER BY id LIMIT 1"
            ),
            dict(zip("abcd", t.bounds_lonlat(), strict=True)),
        ).one()
    reader = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    try:
        reader.begin()
        reader.execute(text("SELECT 1")).scalar_one()  # the snapshot is taken here
        with engine.begin() as writer:
            writer.execute(text("UPDATE building SET name = '并发修改' WHERE id = :i"), {"i": fid})
        result = get_tile(reader, "race-test", [layer], t)
        assert result.cache == "miss"
        reader.commit()
    finally:
        reader.close()
        with engine.begin() as conn:
            conn.execute(text("UPDATE building SET name = :n WHERE id = :i"), {"n": old, "i": fid})
    with engine.connect() as conn:
        cached = conn.execute(
            text("SELECT count(*) FROM tile_cache WHERE tileset = 'race-test'")
        ).scalar_one()
    assert cached == 0


def test_grid_edits_show_on_the_next_request(client, engine):
    """Grids come from a later migration: their invalidation triggers are installed on first use."""
    with engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('grid')")).scalar_one() is None:
            pytest.skip("grid table not migrated (0003_grids)")
    here, there = tile_for_lonlat(*BUND, 15), tile_for_lonlat(*LUJIAZUI, 15)
    assert here != there

    def codes(t):
        r = client.get(f"/collections/grid/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}")
        feats = decode(r.content).get("grid", {}).get("features", [])
        return r.headers["x-tile-cache"], {f["properties"]["code"] for f in feats}

    def square(lon, lat, d=0.0008):
        return f"SRID=4326;MULTIPOLYGON((({lon - d} {lat - d},{lon + d} {lat - d},{lon + d} {lat + d},{lon - d} {lat + d},{lon - d} {lat - d})))"

    for t in (here, there):
        codes(t)
        assert codes(t)[0] == "hit"
    code = "T9999999990001"
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO grid (code, name, level, parent_code, community_code, area_m2, compactness, contiguous, geom) "
                    "VALUES (:c, '测试网格', 'grid', 'T99999999', 'T99999999', 1, 1, true, ST_GeomFromEWKT(:g))"
                ),
                {"c": code, "g": square(*BUND)},
            )
        status, found = codes(here)
        assert status == "miss" and code in found
        assert codes(there)[0] == "hit"  # untouched area keeps its cache
        with engine.begin() as conn:  # move the grid across the river
            conn.execute(
                text("UPDATE grid SET geom = ST_GeomFromEWKT(:g) WHERE code = :c"),
                {"c": code, "g": square(*LUJIAZUI)},
            )
        assert code not in codes(here)[1]
        status, found = codes(there)
        assert status == "miss" and code in found
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM grid WHERE code = :c"), {"c": code})
    assert code not in codes(there)[1]


def test_layer_on_a_view_is_served_uncached(client, engine):
    """No invalidation trigger can be put on a view, so its tiles are never cached (never stale)."""
    from layers.registry import Layer, Prop
    from layers.store import forget_layers

    with engine.begin() as conn:
        conn.execute(text("CREATE OR REPLACE VIEW test_poi_view AS SELECT id, kind, name, geom FROM poi"))
    layer = Layer(
        id="poi_view",
        title_zh="视图图层",
        title_en="View layer",
        table="test_poi_view",
        geometry_type="Point",
        properties=(Prop("kind"), Prop("name")),
        min_zoom=14,
    )
    registry.register(layer)
    forget_layers()
    try:
        t = tile_for_lonlat(*BUND, 16)
        url = f"/collections/poi_view/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
        first, second = client.get(url), client.get(url)
        assert first.headers["x-tile-cache"] == second.headers["x-tile-cache"] == "off"
        ids = {f["id"] for f in decode(second.content)["poi_view"]["features"]}
        assert ids == ids_in_tile(engine, "poi", t)
    finally:
        registry._BY_ID.pop("poi_view", None)
        registry.LAYERS = tuple(x for x in registry.LAYERS if x.id != "poi_view")
        forget_layers()
        with engine.begin() as conn:
            conn.execute(text("DROP VIEW IF EXISTS test_poi_view"))
