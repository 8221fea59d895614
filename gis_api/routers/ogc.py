"""OGC API Features over the layer registry: /conformance, /collections, items, one item.

Thin: parsing lives in layers.ogc, SQL in layers.store / layers.sql. The landing page ``/`` is
served by gis_api.routers.web (HTML map for browsers, this API's landing JSON otherwise).
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.engine import Connection

from geo.geojson import feature_collection_text
from gis_api.deps import api_key, db_conn
from gis_api.errors import BadRequest, NotFound
from layers import ogc
from layers.registry import Layer
from layers.store import available_layers, fetch_item, fetch_items, layer_extent

router = APIRouter(tags=["OGC API Features 要素服务"])


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def resolve_layer(request: Request, conn: Connection, collection_id: str) -> Layer:
    """The registered, present layer ``collection_id`` the caller may read (else 404 / 401)."""
    layers = available_layers(conn)
    layer = layers.get(collection_id)
    if layer is None:
        raise NotFound(f"未知图层 unknown collection '{collection_id}'",
                       detail={"collections": sorted(layers)})
    if layer.read_role != "public":
        # Non-public layers need an API key whenever the deployment configures keys.
        api_key(request, request.headers.get("X-API-Key"))
    return layer


def query_error(exc: ogc.QueryError) -> BadRequest:
    return BadRequest(str(exc), detail={"parameter": exc.param} if exc.param else None)


def readable_layers(request: Request, conn: Connection) -> list[Layer]:
    allowed = request.app.state.settings.api_key_set
    key_ok = not allowed or request.headers.get("X-API-Key") in allowed
    return [layer for layer in available_layers(conn).values() if layer.read_role == "public" or key_ok]


@router.get("/conformance", summary="符合性声明 conformance classes")
def conformance():
    return {"conformsTo": ogc.CONFORMANCE}


@router.get("/collections", summary="图层集合 all collections (layers)")
def collections(request: Request, conn: Connection = Depends(db_conn)):
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
def collection(collection_id: str, request: Request, conn: Connection = Depends(db_conn)):
    layer = resolve_layer(request, conn, collection_id)
    bbox, temporal = layer_extent(conn, layer)
    return ogc.collection_doc(layer, base_url(request), extent=bbox, temporal=temporal)


@router.get("/collections/{collection_id}/queryables", summary="可查询属性 queryable properties")
def queryables(collection_id: str, request: Request, conn: Connection = Depends(db_conn)):
    layer = resolve_layer(request, conn, collection_id)
    return JSONResponse(ogc.queryables_doc(layer, base_url(request)), media_type="application/schema+json")


def _content_crs(crs: ogc.Crs) -> dict:
    return {"Content-Crs": f"<{crs.uri}>"} if crs.header else {}


@router.get(
    "/collections/{collection_id}/items",
    summary="图层要素 features of a collection (GeoJSON)",
    description="bbox、limit/offset 分页、属性等值过滤（属性名=值）、datetime（有效期图层）、"
                "crs / bbox-crs：CRS84（默认）、EPSG:4326 / EPSG:4490（纬度在前）、GCJ-02。",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def items(
    collection_id: str,
    request: Request,
    conn: Connection = Depends(db_conn),
    bbox: str | None = Query(None, description="minx,miny,maxx,maxy（按 bbox-crs 的轴序）"),
    limit: str | None = Query(None, description=f"每页数量，默认 {ogc.DEFAULT_LIMIT}，最多 {ogc.MAX_LIMIT}"),
    offset: str | None = Query(None, description="跳过的要素数"),
    datetime: str | None = Query(None, description="时刻或区间（a/b、../b、a/..），仅对有有效期的图层"),
    crs: str | None = Query(None, description="输出坐标系 URI 或 wgs84 / cgcs2000 / gcj02"),
    bbox_crs: str | None = Query(None, alias="bbox-crs", description="bbox 的坐标系"),
):
    layer = resolve_layer(request, conn, collection_id)
    params = request.query_params.multi_items()
    try:
        q = ogc.parse_items_query(layer, params)
    except ogc.QueryError as exc:
        raise query_error(exc) from None
    if q.bbox is not None and q.bbox_crs.gcj02:
        from geo.crs import gcj02_to_wgs84

        (x0, x1), (y0, y1) = gcj02_to_wgs84([q.bbox[0], q.bbox[2]], [q.bbox[1], q.bbox[3]])
        q.bbox = (float(min(x0, x1)), float(min(y0, y1)), float(max(x0, x1)), float(max(y0, y1)))
    features, matched = fetch_items(conn, layer, q)
    base = base_url(request)
    links = ogc.page_links(f"{base}/collections/{layer.id}/items", params, offset=q.offset, limit=q.limit,
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
def item(collection_id: str, fid: str, request: Request, conn: Connection = Depends(db_conn),
         crs: str | None = Query(None, description="输出坐标系")):
    layer = resolve_layer(request, conn, collection_id)
    extra = [k for k in request.query_params if k not in ("crs", "f")]
    if extra:
        raise BadRequest(f"未知参数 {', '.join(extra)}")
    try:
        out_crs = ogc.parse_crs(crs)
    except ogc.QueryError as exc:
        raise query_error(exc) from None
    key: int | str
    if layer.id_is_text:
        if len(fid) > 200:
            raise NotFound("要素编号过长")
        key = fid
    else:
        try:
            key = int(fid)
        except ValueError:
            raise NotFound(f"要素 {fid!r} 不存在（要素编号为整数）") from None
        if not -(2**63) <= key < 2**63:
            raise NotFound(f"要素 {fid} 不存在")
    feature = fetch_item(conn, layer, key, lat_first=out_crs.lat_first, gcj02=out_crs.gcj02)
    if feature is None:
        raise NotFound(f"图层 {layer.id} 中没有要素 {fid}")
    base = base_url(request)
    links = [
        {"rel": "self", "type": ogc.GEOJSON, "href": f"{base}/collections/{layer.id}/items/{quote(str(key))}"},
        {"rel": "collection", "type": "application/json", "href": f"{base}/collections/{layer.id}"},
    ]
    import orjson

    body = feature.encode()[:-1] + b',"links":' + orjson.dumps(links) + b"}"
    return Response(body, media_type=ogc.GEOJSON, headers=_content_crs(out_crs))
