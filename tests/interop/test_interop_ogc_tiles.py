"""OGC API - Tiles: the tilesets lists, tileset metadata and tile matrix set a client reads, followed by links
only, down to a tile it decodes; the WebMercatorQuad definition agrees with the server's own tile arithmetic."""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest

from tiles.tms import MAX_ZOOM, tile_for_lonlat

BUND = (121.4903, 31.2397)
TILES_CONF = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"
REL_TILESETS = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
REL_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"


def _link(doc: dict, rel: str) -> dict:
    links = [lk for lk in doc["links"] if lk["rel"] == rel]
    assert links, f"no {rel} link in {doc.get('title') or doc}"
    return links[0]


def _get(client, href: str, base: str = "http://testserver") -> dict:
    r = client.get(href.removeprefix(base))
    assert r.status_code == 200, (href, r.text)
    return r.json()


def test_conformance_declares_tiles_and_tms(client):
    conf = set(client.get("/conformance").json()["conformsTo"])
    for cls in ("core", "tileset", "tilesets-list", "geodata-tilesets", "dataset-tilesets", "mvt"):
        assert TILES_CONF + cls in conf
    assert "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset" in conf


def test_tile_matrix_set_agrees_with_the_server_tiles(client):
    listing = client.get("/tileMatrixSets").json()["tileMatrixSets"]
    assert [t["id"] for t in listing] == ["WebMercatorQuad"]
    tms = _get(client, listing[0]["links"][0]["href"])
    assert tms["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    assert [m["id"] for m in tms["tileMatrices"]] == [str(z) for z in range(MAX_ZOOM + 1)]
    for z in (0, 14, 17):
        m = tms["tileMatrices"][z]
        tile = tile_for_lonlat(*BUND, z)
        # the tile's west / north edge from the definition, in EPSG:3857 metres → degrees
        span = m["cellSize"] * m["tileWidth"]
        west = m["pointOfOrigin"][0] + tile.x * span
        north = m["pointOfOrigin"][1] - tile.y * span
        lon = math.degrees(west / 6378137.0)
        lat = math.degrees(2 * math.atan(math.exp(north / 6378137.0)) - math.pi / 2)
        w, _, _, n = tile.bounds_lonlat()
        assert abs(lon - w) < 1e-9 and abs(lat - n) < 1e-9
        assert m["matrixWidth"] == m["matrixHeight"] == 2**z
    assert client.get("/tileMatrixSets/WorldCRS84Quad").status_code == 404


@pytest.mark.parametrize("layer", ["poi", "building"])
def test_a_client_follows_links_from_the_collection_to_a_tile(client, layer):
    coll = client.get(f"/collections/{layer}").json()
    tilesets = _get(client, _link(coll, REL_TILESETS)["href"])
    entry = tilesets["tilesets"][0]
    assert entry["dataType"] == "vector" and entry["crs"].endswith("/3857")
    assert _get(client, _link(entry, REL_SCHEME)["href"])["id"] == "WebMercatorQuad"
    meta = _get(client, _link(entry, "self")["href"])
    assert meta["tileMatrixSetURI"].endswith("/WebMercatorQuad")
    assert meta["layers"][0]["id"] == layer
    item = _link(meta, "item")
    assert item["templated"] and item["type"] == "application/vnd.mapbox-vector-tile"
    z = 16
    t = tile_for_lonlat(*BUND, z)
    assert meta["boundingBox"]["lowerLeft"][0] < BUND[0] < meta["boundingBox"]["upperRight"][0]
    limits = {lim["tileMatrix"]: lim for lim in meta["tileMatrixSetLimits"]}
    assert limits[str(z)]["maxTileCol"] >= t.x
    href = item["href"].format(tileMatrix=z, tileRow=t.y, tileCol=t.x).removeprefix("http://testserver")
    r = client.get(href)
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert len(mapbox_vector_tile.decode(r.content)[layer]["features"]) > 0


def test_dataset_tileset_is_the_basemap(client, anon_client):
    landing = client.get("/?f=json").json()
    tiles = _get(client, _link(landing, REL_TILESETS)["href"])
    meta = _get(client, _link(tiles["tilesets"][0], "self")["href"])
    ids = {lyr["id"] for lyr in meta["layers"]}
    assert {"road", "building", "water"} <= ids
    t = tile_for_lonlat(*BUND, 15)
    href = _link(meta, "item")["href"].format(tileMatrix=15, tileRow=t.y, tileCol=t.x)
    decoded = mapbox_vector_tile.decode(client.get(href.removeprefix("http://testserver")).content)
    assert {"road", "building"} <= set(decoded)
    # the public basemap tileset lists only public layers
    public = anon_client.get("/tiles/WebMercatorQuad").json()
    assert all(lyr["id"] in ids for lyr in public["layers"])
    assert client.get("/tiles/NoSuchTms").status_code == 404


def test_staff_layer_tilesets_need_staff(anon_client, role_headers):
    assert anon_client.get("/collections/street_block/tiles/WebMercatorQuad").status_code == 401
    ok = anon_client.get("/collections/street_block/tiles/WebMercatorQuad", headers=role_headers["planner"])
    assert ok.status_code == 200 and ok.json()["layers"][0]["id"] == "street_block"

