"""Mapbox vector tiles of any layer, and the multi-layer basemap, with TileJSON, ETag and a cache."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection
from starlette.background import BackgroundTask

from gis_api.deps import db_conn
from gis_api.errors import BadRequest, NotFound
from gis_api.routers.ogc import base_url, readable_layers, resolve_layer
from layers.registry import BASEMAP_ID, Layer
from tiles.store import CacheKeeper, get_tile, tileset_version
from tiles.tms import MAX_ZOOM, TileError, parse_tile

router = APIRouter(tags=["矢量瓦片 vector tiles"])

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
    try:
        tile = parse_tile(z, x, y)
    except TileError as exc:
        raise BadRequest(str(exc)) from None
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
def tilesets(collection_id: str, request: Request, conn: Connection = Depends(db_conn)):
    layer = resolve_layer(request, conn, collection_id)
    base = base_url(request)
    href = f"{base}/collections/{layer.id}/tiles/{TMS}"
    return {
        "tilesets": [
            {
                "title": f"{layer.title_zh}矢量瓦片",
                "dataType": "vector",
                "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
                "tileMatrixSetURI": "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad",
                "links": [
                    {"rel": "self", "type": "application/json", "href": f"{href}/tilejson.json"},
                    {"rel": "item", "type": MVT, "templated": True, "href": f"{href}/{{z}}/{{x}}/{{y}}"},
                ],
            }
        ]
    }


@router.get("/collections/{collection_id}/tiles/{tms}/tilejson.json", summary="TileJSON of one layer")
def layer_tilejson(collection_id: str, tms: str, request: Request, conn: Connection = Depends(db_conn)):
    layer = resolve_layer(request, conn, collection_id)
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
    collection_id: str,
    tms: str,
    z: str,
    x: str,
    y: str,
    request: Request,
    conn: Connection = Depends(db_conn),
):
    layer = resolve_layer(request, conn, collection_id)
    if tms != TMS:
        raise NotFound(f"不支持的瓦片矩阵集 {tms!r}；仅支持 {TMS}")
    return _tile_response(request, conn, layer.id, [layer], z, x, y)


def _basemap_layers(request: Request, conn: Connection) -> list[Layer]:
    return [layer for layer in readable_layers(request, conn) if layer.basemap]


@router.get("/tiles/basemap/tilejson.json", summary="底图 TileJSON (roads, buildings, water, admin, grids)")
def basemap_tilejson(request: Request, conn: Connection = Depends(db_conn)):
    template = f"{base_url(request)}/tiles/{BASEMAP_ID}/{{z}}/{{x}}/{{y}}.mvt"
    return _tilejson(BASEMAP_ID, "社区 GIS 矢量底图", template, _basemap_layers(request, conn))


@router.get(
    "/tiles/basemap/{z}/{x}/{y}",
    summary="多图层矢量底图瓦片 basemap MVT tile",
    response_class=Response,
    responses={200: {"content": {MVT: {}}}, 304: {"description": "未修改"}},
)
def basemap_tile(z: str, x: str, y: str, request: Request, conn: Connection = Depends(db_conn)):
    return _tile_response(request, conn, BASEMAP_ID, _basemap_layers(request, conn), z, x, y)
