"""Request parsing of the OGC API Features and tile routes, as reusable FastAPI dependencies.

Each dependency reads one parameter and checks it with the pure parsers of `layers.ogc`, which raise
`layers.ogc.QueryError` (a `geo.errors.BadRequest`: 400 with ``detail.parameter``, as the OGC spec
wants). `items_params` puts them together into an `ItemsParams`. FastAPI solves a route's dependencies
in the order they are declared, so the checks run in a fixed order: the collection (404 / 401) first,
then repeated or unknown parameters, limit, offset, crs, bbox-crs, bbox, datetime and property filters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.engine import Connection

from geo.errors import BadRequest, NotFound
from gis_api.auth.deps import principal_of
from gis_api.auth.roles import can, require
from gis_api.deps import db_conn
from gis_api.params import MAX_OFFSET
from layers import cql2, ogc
from layers.registry import Layer
from layers.store import available_layers

BBox = tuple[float, float, float, float]
INTERNAL_LAYERS = "features:read_internal"


def base_url(request: Request) -> str:
    """The API root URL as the client called it, without a trailing slash (for links)."""
    return str(request.base_url).rstrip("/")


def resolve_layer(request: Request, conn: Connection, collection_id: str) -> Layer:
    """The registered, present layer ``collection_id`` the caller may read (else 404 / 401)."""
    layers = available_layers(conn)
    layer = layers.get(collection_id)
    if layer is None:
        raise NotFound(f"未知图层 unknown collection '{collection_id}'",
                       detail={"collections": sorted(layers)})
    if layer.read_role != "public":
        # internal layers (数据分类分级 内部): staff, or a system key with the features scope
        require(principal_of(request), INTERNAL_LAYERS)
    return layer


def readable_layers(request: Request, conn: Connection) -> list[Layer]:
    """The layers present in this database that the caller may read (internal layers: staff only)."""
    staff = can(principal_of(request), INTERNAL_LAYERS)
    return [layer for layer in available_layers(conn).values() if layer.read_role == "public" or staff]


def collection_layer(collection_id: str, request: Request, conn: Connection = Depends(db_conn, scope="function")) -> Layer:
    """Dependency: the layer of the ``{collection_id}`` path parameter (404 unknown, 401 / 403 for an internal layer)."""
    return resolve_layer(request, conn, collection_id)


#: the layer named by the path: ``layer: CollectionLayer``
CollectionLayer = Annotated[Layer, Depends(collection_layer)]


def checked_items_params(request: Request, layer: CollectionLayer) -> dict[str, str]:
    """Dependency: every query parameter by name; none repeated, none unknown, ``f`` json/geojson."""
    return ogc.check_items_params(layer, request.query_params.multi_items())


def limit_query(
    limit: str | None = Query(None, description=f"每页数量，默认 {ogc.DEFAULT_LIMIT}，最多 {ogc.MAX_LIMIT}"),
) -> int:
    """Dependency: the page size ``limit`` (given empty: 400, the schema declares an integer)."""
    if limit == "":
        raise ogc.QueryError("limit 不能为空 limit must not be empty", "limit")
    return ogc.parse_limit(limit)


def offset_query(offset: str | None = Query(None, description=f"跳过的要素数（≤ {MAX_OFFSET}）")) -> int:
    """Dependency: the number of features to skip, ``offset`` (0…MAX_OFFSET: deeper overflowed in SQL)."""
    if offset == "":
        raise ogc.QueryError("offset 不能为空 offset must not be empty", "offset")
    n = ogc.parse_offset(offset)
    if n > MAX_OFFSET:
        raise ogc.QueryError(f"offset 不能超过 {MAX_OFFSET} offset must be at most {MAX_OFFSET}", "offset")
    return n


def output_crs(crs: str | None = Query(None, description="输出坐标系 URI 或 wgs84 / cgcs2000 / gcj02")) -> ogc.Crs:
    """Dependency: the output CRS ``crs`` (CRS84 by default)."""
    return ogc.parse_crs(crs, "crs")


def bbox_crs_query(
    bbox_crs: str | None = Query(None, alias="bbox-crs", description="bbox 的坐标系"),
) -> ogc.Crs | None:
    """Dependency: the CRS of the ``bbox`` parameter, ``bbox-crs`` (None when not given)."""
    return None if bbox_crs is None else ogc.parse_crs(bbox_crs, "bbox-crs")


def bbox_query(
    bbox_crs: ogc.Crs | None = Depends(bbox_crs_query),
    bbox: str | None = Query(None, description="minx,miny,maxx,maxy（按 bbox-crs 的轴序）"),
) -> BBox | None:
    """Dependency: the ``bbox`` parameter as a WGS84 lon/lat box (axis order and GCJ-02 undone)."""
    crs = bbox_crs or ogc.parse_crs(None)
    return ogc.bbox_to_wgs84(ogc.parse_bbox_query(bbox, crs, bbox_crs_given=bbox_crs is not None), crs)


def datetime_query(
    layer: CollectionLayer,
    datetime: str | None = Query(None, description="时刻或区间（a/b、../b、a/..），仅对有有效期的图层"),
) -> tuple[dt.datetime | None, dt.datetime | None] | None:
    """Dependency: the ``datetime`` instant or interval (checked always, used on layers with valid time)."""
    return ogc.parse_layer_datetime(layer, datetime)


def filter_query(layer: CollectionLayer, seen: dict[str, str] = Depends(checked_items_params)) -> cql2.SqlFilter | None:
    """Dependency: the CQL2 ``filter`` (``filter-lang`` cql2-text / cql2-json / cql-text, ``filter-crs``) as SQL."""
    return cql2.parse_filter_params(layer, seen)


@dataclass
class ItemsParams:
    """A checked ``/collections/{id}/items`` request: the layer, the query, and the parameters as given."""

    layer: Layer
    query: ogc.ItemsQuery
    params: list[tuple[str, str]]  # as given, kept in the paging links


def items_params(
    request: Request,
    layer: CollectionLayer,
    seen: dict[str, str] = Depends(checked_items_params),
    limit: int = Depends(limit_query),
    offset: int = Depends(offset_query),
    crs: ogc.Crs = Depends(output_crs),
    bbox_crs: ogc.Crs | None = Depends(bbox_crs_query),
    bbox: BBox | None = Depends(bbox_query),
    datetime: tuple[dt.datetime | None, dt.datetime | None] | None = Depends(datetime_query),
    cql: cql2.SqlFilter | None = Depends(filter_query),
) -> ItemsParams:
    """Dependency: the whole items query; the remaining parameters are property filters (``name=value``)."""
    query = ogc.ItemsQuery(
        limit=limit,
        offset=offset,
        bbox=bbox,
        bbox_crs=bbox_crs or ogc.parse_crs(None),
        crs=crs,
        datetime=datetime,
        filters=ogc.parse_filters(layer, seen),
        cql=cql,
    )
    return ItemsParams(layer, query, request.query_params.multi_items())


def only_crs_and_f(request: Request) -> None:
    """Dependency: a single-feature request takes no parameter but ``crs`` and ``f``."""
    extra = [k for k in request.query_params if k not in ("crs", "f")]
    if extra:
        raise BadRequest(f"未知参数 {', '.join(extra)}")


def feature_key(fid: str, layer: CollectionLayer) -> int | str:
    """Dependency: the ``{fid}`` path parameter as the layer's key type (404 when it cannot exist)."""
    if layer.id_is_text:
        if len(fid) > 200:
            raise NotFound("要素编号过长")
        return fid
    try:
        key = int(fid)
    except ValueError:
        raise NotFound(f"要素 {fid!r} 不存在（要素编号为整数）") from None
    if not -(2**63) <= key < 2**63:
        raise NotFound(f"要素 {fid} 不存在")
    return key


#: what both JSON Schema documents answer: application/schema+json, or application/json to a client that
#: asks for JSON but not JSON Schema (found by the contract's stateful phase: only the first was declared)
SCHEMA_RESPONSES: dict[int | str, dict] = {200: {
    "description": "JSON Schema", "content": {"application/schema+json": {"schema": {"type": "object"}},
                                              "application/json": {"schema": {"type": "object"}}}}}
