"""Mapbox vector tiles of any layer, and the multi-layer basemap, with TileJSON, ETag and a cache."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection
from starlette.background import BackgroundTask

from gis_api.auth.deps import requires
from gis_api.deps import db_conn
from gis_api.errors import NotFound
from gis_api.ogc_params import CollectionLayer, base_url, readable_layers
from layers.registry import BASEMAP_ID, Layer
from tiles import ogc_tiles
from tiles.store import CacheKeeper, get_tile, tileset_version
from tiles.tms import MAX_ZOOM, parse_tile

router = APIRouter(dependencies=[Depends(requires("tiles:read"))], tags=["矢量瓦片 vector tiles"])

MVT = "application/vnd.mapbox-vector-tile"
TMS = "WebMercatorQuad"
# Clients must revalidate (cheap 304 with the ETag), so an edit shows on the next request.
CACHE_CONTROL = "public, no-cache"


def cache_keeper(request: Request) -> CacheKeeper:
    """The app's tile cache keeper (access times, size cap), built with the app (`gis_api.app`)."""
    return request.app.state.tile_keeper


def _tile_response(
    request: Request, conn: Connection, tileset: str, layers: list[Layer], z, x, y
) -> Response:
    y = str(y).removesuffix(".mvt").removesuffix(".pbf")
    tile = parse_tile(z, x, y)  # a bad address is a TileError: 400
    # The cache key names the exact layer definitions drawn, so a changed registry (or a layer
    # hidden from this caller) never serves another set's tiles.
    key = f"{tileset}@{tileset_version(layers)}"
    result = get_tile(conn, key, layers, tile, use_cache=getattr(request.app.state, "tile_cache", True))
    keeper = cache_keeper(request)
    # access-time writes and eviction run after the response is sent, on their own transaction
    upkeep = BackgroundTask(keeper.run) if keeper.note(key, tile, result) else None
    public = all(layer.read_role == "public" for layer in layers)
    headers = {
        "ETag": result.etag,
        "X-Tile-Cache": result.cache,
        # staff-only layers must not be kept by shared caches
        "Cache-Control": CACHE_CONTROL if public else "private, no-cache",
    }
    if public:
        headers["Access-Control-Allow-Origin"] = "*"
    inm = request.headers.get("if-none-match")
    if inm and result.etag in [t.strip() for t in inm.split(",")]:
        return Response(status_code=304, headers=headers, background=upkeep)
    return Response(result.data, media_type=MVT, headers=headers, background=upkeep)


def _vector_layer(layer: Layer) -> dict:
    types = {
        "string": "String",
        "integer": "Number",
        "number": "Number",
        "boolean": "Boolean",
        "date": "String",
        "datetime": "String",
    }
    return {
        "id": layer.id,
        "description": layer.title_zh,
        "minzoom": layer.min_zoom,
        "maxzoom": layer.max_zoom,
        "fields": {p.name: types[p.type] for p in layer.properties},
        "geometry_type": layer.geometry_family.lower(),
    }


def _tilejson(name: str, description: str, template: str, layers: list[Layer]) -> dict:
    minzoom = min((layer.min_zoom for layer in layers), default=0)
    maxzoom = min(max((layer.max_zoom for layer in layers), default=MAX_ZOOM), MAX_ZOOM)
    return {
        "tilejson": "3.0.0",
        "name": name,
        "description": description,
        "version": "1.0.0",
        "attribution": "© OpenStreetMap contributors (ODbL)",
        "scheme": "xyz",
        "tiles": [template],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        # The demo area (Shanghai Bund / Lujiazui); clients may still request any tile.
        "bounds": [121.40, 31.17, 121.56, 31.29],
        "center": [121.5005, 31.2387, 15],
        "vector_layers": [_vector_layer(layer) for layer in layers],
    }


@router.get("/collections/{collection_id}/tiles", summary="图层瓦片集 tilesets of a collection")
def tilesets(request: Request, layer: CollectionLayer):
    """一个图层的矢量瓦片集列表（OGC API Tiles；WebMercatorQuad）。The vector tilesets of one layer (OGC API -
    Tiles tilesets list; WebMercatorQuad only), each linking to its tileset metadata and tiling scheme."""
    base = base_url(request)
    return ogc_tiles.tilesets_list(f"{layer.title_zh}矢量瓦片", f"{base}/collections/{layer.id}/tiles/{TMS}", base)


@router.get("/collections/{collection_id}/tiles/{tms}/tilejson.json", summary="TileJSON of one layer")
def layer_tilejson(tms: str, request: Request, layer: CollectionLayer):
    """一个图层的 TileJSON 3.0（字段、缩放范围、瓦片地址）。TileJSON 3.0 of one layer: its fields, zoom range
    and tile URL template, for MapLibre, Leaflet.VectorGrid or QGIS (404 for a tile matrix set other than
    WebMercatorQuad)."""
    if tms != TMS:
        raise NotFound(f"不支持的瓦片矩阵集 {tms!r}；仅支持 {TMS}")
    template = f"{base_url(request)}/collections/{layer.id}/tiles/{TMS}/{{z}}/{{x}}/{{y}}"
    return _tilejson(layer.id, layer.title_zh, template, [layer])


@router.get(
    "/collections/{collection_id}/tiles/{tms}/{z}/{x}/{y}",
    summary="一个图层的矢量瓦片 MVT tile",
    response_class=Response,
    responses={200: {"content": {MVT: {}}}, 304: {"description": "未修改"}},
)
def layer_tile(
    tms: str,
    z: str,
    x: str,
    y: str,
    request: Request,
    layer: CollectionLayer,
    conn: Connection = Depends(db_conn, scope="function"),
):
    """一个图层的 Mapbox 矢量瓦片（MVT），带 ETag（If-None-Match 时 304）。One layer's Mapbox vector tile
    (MVT) at `{z}/{x}/{y}` (WebMercatorQuad, XYZ order); answers 304 when `If-None-Match` holds its ETag,
    400 for a tile address out of range."""
    if tms != TMS:
        raise NotFound(f"不支持的瓦片矩阵集 {tms!r}；仅支持 {TMS}")
    return _tile_response(request, conn, layer.id, [layer], z, x, y)


def _basemap_layers(request: Request, conn: Connection) -> list[Layer]:
    return [layer for layer in readable_layers(request, conn) if layer.basemap]


@router.get("/tiles/basemap/tilejson.json", summary="底图 TileJSON (roads, buildings, water, admin, grids)")
def basemap_tilejson(request: Request, conn: Connection = Depends(db_conn, scope="function")):
    """多图层矢量底图的 TileJSON 3.0（道路、建筑、水系、行政区划、网格）。TileJSON 3.0 of the multi-layer basemap
    (roads, buildings, water, admin units, grids), listing each layer's fields."""
    template = f"{base_url(request)}/tiles/{BASEMAP_ID}/{{z}}/{{x}}/{{y}}.mvt"
    return _tilejson(BASEMAP_ID, "社区 GIS 矢量底图", template, _basemap_layers(request, conn))


@router.get(
    "/tiles/basemap/{z}/{x}/{y}",
    summary="多图层矢量底图瓦片 basemap MVT tile",
    response_class=Response,
    responses={200: {"content": {MVT: {}}}, 304: {"description": "未修改"}},
)
def basemap_tile(z: str, x: str, y: str, request: Request, conn: Connection = Depends(db_conn, scope="function")):
    """多图层矢量底图的一个瓦片（MVT，可加 .mvt/.pbf 后缀）。One tile of the multi-layer basemap (MVT; `y` may end
    in `.mvt` or `.pbf`), with ETag and 304 as for single layers."""
    return _tile_response(request, conn, BASEMAP_ID, _basemap_layers(request, conn), z, x, y)
