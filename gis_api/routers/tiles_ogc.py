"""OGC API - Tiles metadata over the existing vector tiles: tile matrix sets, tilesets lists, tileset metadata.

The tiles themselves are served by `gis_api.routers.tiles` (``…/tiles/WebMercatorQuad/{z}/{x}/{y}``); the
documents are built by `tiles.ogc_tiles`. Same access rule as the tiles: a staff layer's tileset needs a
staff caller (`CollectionLayer`), the basemap lists only the layers the caller may read.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy.engine import Connection

from gis_api.auth.deps import requires
from gis_api.deps import db_conn
from gis_api.errors import NotFound
from gis_api.ogc_params import CollectionLayer, base_url, readable_layers
from layers.registry import BASEMAP_ID
from layers.store import layer_extent
from tiles import ogc_tiles

router = APIRouter(dependencies=[Depends(requires("tiles:read"))], tags=["矢量瓦片 vector tiles"])


def _check_tms(tms: str) -> None:
    if tms != ogc_tiles.TMS_ID:
        raise NotFound(f"不支持的瓦片矩阵集 {tms!r}；仅支持 {ogc_tiles.TMS_ID} (unknown tile matrix set)")


@router.get("/tileMatrixSets", summary="瓦片矩阵集列表 tile matrix sets")
def tile_matrix_sets(request: Request):
    """本服务使用的瓦片矩阵集（仅 WebMercatorQuad）。The tile matrix sets of this service (WebMercatorQuad)."""
    return ogc_tiles.tile_matrix_sets(base_url(request))


@router.get("/tileMatrixSets/{tms}", summary="瓦片矩阵集定义 tile matrix set definition")
def tile_matrix_set(tms: str):
    """WebMercatorQuad 的完整定义（各级比例尺、原点、行列数；OGC TMS 2.0 JSON）。The full definition of a tile
    matrix set (OGC Two Dimensional Tile Matrix Set 2.0, JSON); 404 for any other id."""
    _check_tms(tms)
    return ogc_tiles.tile_matrix_set()


@router.get("/collections/{collection_id}/tiles/{tms}", summary="图层瓦片集元数据 tileset metadata of a layer")
def layer_tileset(tms: str, request: Request, layer: CollectionLayer,
                  conn: Connection = Depends(db_conn, scope="function")):
    """一个图层在 WebMercatorQuad 上的矢量瓦片集元数据（OGC API Tiles）：瓦片地址模板、各级行列范围、字段。
    Tileset metadata of one layer: the templated tile link, the tile matrix limits and the layer's fields."""
    _check_tms(tms)
    base = base_url(request)
    url = f"{base}/collections/{layer.id}/tiles/{tms}"
    bbox, _ = layer_extent(conn, layer)
    return ogc_tiles.tileset(f"{layer.title_zh}矢量瓦片", url, url + "/{z}/{x}/{y}", [layer], base,
                             f"{url}/tilejson.json", bbox)


@router.get("/tiles", summary="数据集瓦片集列表 dataset tilesets (the basemap)")
def dataset_tilesets(request: Request):
    """整个数据集的矢量瓦片集（多图层底图）。The dataset's vector tilesets: the multi-layer basemap."""
    base = base_url(request)
    return ogc_tiles.tilesets_list("社区 GIS 矢量底图", f"{base}/tiles/{ogc_tiles.TMS_ID}", base)


@router.get("/tiles/{tms}", summary="底图瓦片集元数据 basemap tileset metadata")
def dataset_tileset(tms: str, request: Request, conn: Connection = Depends(db_conn, scope="function")):
    """多图层底图的瓦片集元数据（调用者可读的图层）。Tileset metadata of the multi-layer basemap, listing the layers
    the caller may read."""
    _check_tms(tms)
    base = base_url(request)
    layers = [layer for layer in readable_layers(request, conn) if layer.basemap]
    boxes = [b for b in (layer_extent(conn, layer)[0] for layer in layers) if b is not None]
    bbox = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
            max(b[3] for b in boxes)) if boxes else None
    return ogc_tiles.tileset("社区 GIS 矢量底图", f"{base}/tiles/{tms}", f"{base}/tiles/{BASEMAP_ID}/{{z}}/{{x}}/{{y}}",
                             layers, base, f"{base}/tiles/{BASEMAP_ID}/tilejson.json", bbox)
