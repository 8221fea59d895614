"""OGC API Features over the layer registry: /conformance, /collections, items, one item.

Thin: request parsing lives in gis_api.ogc_params (dependencies over the pure layers.ogc), SQL in
layers.store / layers.sql. The landing page ``/`` is served by gis_api.routers.web (HTML map for
browsers, this API's landing JSON otherwise).
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.engine import Connection

from geo.geojson import feature_collection_text
from gis_api.auth.deps import requires
from gis_api.deps import read_conn
from gis_api.errors import NotFound
from gis_api.ogc_params import (
    SCHEMA_RESPONSES,
    CollectionLayer,
    ItemsParams,
    base_url,
    feature_key,
    items_params,
    only_crs_and_f,
    output_crs,
    readable_layers,
)
from gis_api.openapi_ogc import FILTER_PARAMETERS
from layers import cql2, ogc
from layers.store import fetch_item, fetch_items, layer_extent
from tiles import ogc_tiles

router = APIRouter(dependencies=[Depends(requires("features:read"))], tags=["OGC API Features 要素服务"])


@router.get("/conformance", summary="符合性声明 conformance classes")
def conformance():
    """本服务符合的 OGC API 标准类别。The OGC API conformance classes this service implements
    (Features Core, GeoJSON, CRS by reference, Part 3 CQL2 filtering, Common collections, Tiles)."""
    return {"conformsTo": [*ogc.CONFORMANCE, *cql2.CONFORMANCE, *ogc_tiles.CONFORMANCE]}


@router.get("/collections", summary="图层集合 all collections (layers)")
def collections(request: Request, conn: Connection = Depends(read_conn, scope="function")):
    """本库中调用者可读的全部图层，含空间与时间范围。Every layer present in this database that the caller may
    read (staff layers need `X-API-Key`), with its spatial and temporal extent and links to items and tiles."""
    base = base_url(request)
    docs = []
    for layer in readable_layers(request, conn):
        bbox, temporal = layer_extent(conn, layer)
        docs.append(ogc.collection_doc(layer, base, extent=bbox, temporal=temporal))
    return {
        "links": [
            {"rel": "self", "type": "application/json", "title": "图层集合", "href": f"{base}/collections"},
            {"rel": "root", "type": "application/json", "title": "服务首页", "href": f"{base}/?f=json"},
        ],
        "collections": docs,
        "crs": ogc.SUPPORTED_CRS,
    }


@router.get("/collections/{collection_id}", summary="单个图层 one collection")
def collection(request: Request, layer: CollectionLayer, conn: Connection = Depends(read_conn, scope="function")):
    """一个图层的说明、范围与链接（未知图层 404）。One layer's description, extent and links
    (404 for an unknown collection, 401 for a staff layer without a valid `X-API-Key`)."""
    bbox, temporal = layer_extent(conn, layer)
    return ogc.collection_doc(layer, base_url(request), extent=bbox, temporal=temporal)


@router.get("/collections/{collection_id}/queryables", summary="可查询属性 queryable properties",
            responses=SCHEMA_RESPONSES)
def queryables(request: Request, layer: CollectionLayer):
    """可用于过滤的属性（JSON Schema）。The properties of a layer that items can be filtered by
    (`name=value`), as a JSON Schema."""
    accept = request.headers.get("accept", "")
    # a client asking for JSON but not JSON Schema (GDAL's OAPIF driver) gets the same document as JSON
    media = "application/json" if "json" in accept and "schema+json" not in accept else "application/schema+json"
    return JSONResponse(ogc.queryables_doc(layer, base_url(request)), media_type=media)


def _content_crs(crs: ogc.Crs) -> dict:
    return {"Content-Crs": f"<{crs.uri}>"} if crs.header else {}


@router.get(
    "/collections/{collection_id}/items",
    summary="图层要素 features of a collection (GeoJSON)",
    description="bbox、limit/offset 分页、属性等值过滤（属性名=值）、datetime（有效期图层）、"
                "crs / bbox-crs：CRS84（默认）、EPSG:4326 / EPSG:4490（纬度在前）、GCJ-02；"
                "filter：CQL2 文本或 JSON（OGC API Features Part 3）。",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
    openapi_extra={"parameters": FILTER_PARAMETERS},
)
def items(request: Request, p: ItemsParams = Depends(items_params), conn: Connection = Depends(read_conn, scope="function")):
    """One page of a layer's features as a GeoJSON FeatureCollection with paging links (400 for a bad parameter)."""
    layer, q = p.layer, p.query
    features, matched = fetch_items(conn, layer, q)
    base = base_url(request)
    links = ogc.page_links(f"{base}/collections/{layer.id}/items", p.params, offset=q.offset, limit=q.limit,
                           number_matched=matched, number_returned=len(features))
    links.append({"rel": "collection", "type": "application/json", "title": layer.title_zh,
                  "href": f"{base}/collections/{layer.id}"})
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    body = feature_collection_text(features, number_matched=matched, links=links, time_stamp=stamp)
    return Response(body, media_type=ogc.GEOJSON, headers=_content_crs(q.crs))


@router.get(
    "/collections/{collection_id}/items/{fid}",
    summary="单个要素 one feature (GeoJSON)",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def item(
    fid: str,
    request: Request,
    layer: CollectionLayer,
    _only: None = Depends(only_crs_and_f),
    out_crs: ogc.Crs = Depends(output_crs),
    key: int | str = Depends(feature_key),
    conn: Connection = Depends(read_conn, scope="function"),
):
    """按编号取一个要素（GeoJSON Feature），可选输出坐标系 `crs`。One feature by its id, as a GeoJSON Feature
    in the output CRS `crs` (404 when the layer has no such feature)."""
    feature = fetch_item(conn, layer, key, lat_first=out_crs.lat_first, gcj02=out_crs.gcj02)
    if feature is None:
        raise NotFound(f"图层 {layer.id} 中没有要素 {fid}")
    base = base_url(request)
    links = [
        {"rel": "self", "type": ogc.GEOJSON, "href": f"{base}/collections/{layer.id}/items/{quote(str(key))}"},
        {"rel": "collection", "type": "application/json", "href": f"{base}/collections/{layer.id}"},
    ]
    body = feature.encode()[:-1] + b',"links":' + orjson.dumps(links) + b"}"
    return Response(body, media_type=ogc.GEOJSON, headers=_content_crs(out_crs))
