"""OGC API Features, the pure part: parse and check query parameters, build documents and links.

No database and no web framework here: plain values in, plain values (or :class:`QueryError`, a
`geo.errors.BadRequest`: 400, as the OGC spec wants for a bad parameter) out.
Specs: OGC API - Features - Part 1: Core (17-069r4) and Part 2: Coordinate Reference Systems by
Reference (18-058r1); GeoJSON per RFC 7946.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from geo.errors import BadRequest
from layers.registry import Layer

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
# GCJ-02 (the Chinese "Mars" obfuscation used by Amap/Tencent) has no registered CRS URI.
GCJ02 = "urn:shequ:def:crs:gcj02"  # as geo.crs.ogc_crs_uri("gcj02")

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
]  # + layers.cql2.CONFORMANCE and tiles.ogc_tiles.CONFORMANCE (the /conformance route)

GEOJSON = "application/geo+json"


class QueryError(BadRequest, ValueError):
    """A bad request parameter; the message is safe to show to the caller.

    ``param`` names the parameter; it is also the error's ``detail`` (``{"parameter": …}``).
    """

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message, detail={"parameter": param} if param else None)
        self.param = param


@dataclass(frozen=True)
class Crs:
    """An output / bbox CRS the server supports.

    ``gcj02``: coordinates are GCJ-02 (converted from the stored WGS84 at the edge).
    ``lat_first``: axis order latitude, longitude (EPSG:4326 / EPSG:4490 by their definition).
    """

    uri: str
    gcj02: bool = False
    lat_first: bool = False
    header: bool = True  # report it in ``Content-Crs``


_CRS_BY_NAME: dict[str, Crs] = {
    CRS84: Crs(CRS84),
    EPSG4326: Crs(EPSG4326, lat_first=True),
    EPSG4490: Crs(EPSG4490, lat_first=True),
    GCJ02: Crs(GCJ02, gcj02=True),
    # House short names (lon/lat order everywhere, as in the rest of the Shequ API).
    "wgs84": Crs(CRS84),
    "cgcs2000": Crs(EPSG4490, header=False),
    "gcj02": Crs(GCJ02, gcj02=True),
    "EPSG:4326": Crs(EPSG4326, lat_first=True),
    "EPSG:4490": Crs(EPSG4490, lat_first=True),
    "OGC:CRS84": Crs(CRS84),
}

SUPPORTED_CRS = [CRS84, EPSG4326, EPSG4490, GCJ02]


def parse_crs(value: str | None, param: str = "crs") -> Crs:
    """The supported CRS named by a URI or a house short name (CRS84 when absent)."""
    if value is None or value == "":
        return _CRS_BY_NAME[CRS84]
    key = value.strip().strip("[]<>")
    crs = _CRS_BY_NAME.get(key) or _CRS_BY_NAME.get(key.lower())
    if crs is None:
        raise QueryError(
            f"不支持的坐标参考系 {param}={value!r}；可用：{', '.join(SUPPORTED_CRS)}，或简称 wgs84 / cgcs2000 / gcj02",
            param,
        )
    return crs


def parse_bbox(value: str | None) -> tuple[float, float, float, float] | None:
    """``minx,miny,maxx,maxy`` (or 6 numbers with heights, which are ignored), in the order given."""
    if value is None or value == "":
        return None
    parts = value.split(",")
    if len(parts) not in (4, 6):
        raise QueryError(f"bbox 需要 4 个（或 6 个）逗号分隔的数字，收到 {len(parts)} 个：{value!r}", "bbox")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise QueryError(f"bbox 含有非数字：{value!r}", "bbox") from None
    if not all(math.isfinite(n) for n in nums):
        raise QueryError(f"bbox 含有非有限数字：{value!r}", "bbox")
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    return nums[0], nums[1], nums[2], nums[3]


def bbox_to_lonlat(bbox: tuple[float, float, float, float], crs: Crs) -> tuple[float, float, float, float]:
    """Put a bbox given in ``crs`` into lon/lat order and check its ranges (still in that datum)."""
    a, b, c, d = bbox
    minx, miny, maxx, maxy = (b, a, d, c) if crs.lat_first else (a, b, c, d)
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        raise QueryError("bbox 超出经纬度范围（经度 −180…180，纬度 −90…90；注意坐标轴顺序）", "bbox")
    if miny > maxy:
        raise QueryError("bbox 的最小纬度大于最大纬度", "bbox")
    if minx > maxx:
        raise QueryError("bbox 的最小经度大于最大经度（不支持跨越 180° 经线的范围）", "bbox")
    return minx, miny, maxx, maxy


def parse_limit(value: str | None, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """The page size: an integer from 1 to ``maximum`` (``default`` when absent)."""
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise QueryError(f"limit 必须是整数：{value!r}", "limit") from None
    if n < 1:
        raise QueryError("limit 至少为 1", "limit")
    if n > maximum:
        raise QueryError(f"limit 超过上限 {maximum}：{n}", "limit")
    return n


def parse_offset(value: str | None) -> int:
    """The number of features to skip: a non-negative integer (0 when absent)."""
    if value is None or value == "":
        return 0
    try:
        n = int(value)
    except ValueError:
        raise QueryError(f"offset 必须是整数：{value!r}", "offset") from None
    if n < 0:
        raise QueryError("offset 不能为负", "offset")
    return n


def _parse_instant(text: str) -> dt.datetime | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        if len(text) == 10:
            d = dt.date.fromisoformat(text)
            return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
        value = dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"datetime 不是 RFC 3339 日期/时间：{text!r}", "datetime") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def parse_datetime(value: str | None) -> tuple[dt.datetime | None, dt.datetime | None] | None:
    """An instant ``t`` → (t, t); an interval ``a/b`` with open ends ``..`` → (a|None, b|None)."""
    if value is None or value == "":
        return None
    if "/" in value:
        parts = value.split("/")
        if len(parts) != 2:
            raise QueryError(f"datetime 区间格式应为 开始/结束：{value!r}", "datetime")
        start, end = _parse_instant(parts[0]), _parse_instant(parts[1])
        if start is not None and end is not None and start > end:
            raise QueryError("datetime 区间的开始晚于结束", "datetime")
        return start, end
    instant = _parse_instant(value)
    if instant is None:
        raise QueryError(f"datetime 不是 RFC 3339 日期/时间：{value!r}", "datetime")
    return instant, instant


def parse_property_value(layer: Layer, name: str, raw: str):
    """Convert a property filter value to the property's type (so SQL compares like with like)."""
    prop = layer.prop(name)
    if prop is None:  # pragma: no cover - callers check first
        raise QueryError(f"未知属性 {name}", name)
    try:
        if prop.type == "integer":
            return int(raw)
        if prop.type == "number":
            v = float(raw)
            if not math.isfinite(v):
                raise ValueError
            return v
        if prop.type == "boolean":
            low = raw.lower()
            if low in ("true", "1", "t", "yes"):
                return True
            if low in ("false", "0", "f", "no"):
                return False
            raise ValueError
        if prop.type == "date":
            return dt.date.fromisoformat(raw)
        if prop.type == "datetime":
            return _parse_instant(raw)
    except ValueError:
        raise QueryError(f"属性 {name} 的值 {raw!r} 不是 {prop.type} 类型", name) from None
    return raw


ITEMS_PARAMS = {"bbox", "bbox-crs", "limit", "offset", "datetime", "crs", "f",
                "filter", "filter-lang", "filter-crs"}  # CQL2 filter: layers.cql2


@dataclass
class ItemsQuery:
    """A checked ``/collections/{id}/items`` query, ready for `layers.sql`."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None  # lon/lat order, in ``bbox_crs``'s datum
    bbox_crs: Crs = field(default_factory=lambda: _CRS_BY_NAME[CRS84])
    crs: Crs = field(default_factory=lambda: _CRS_BY_NAME[CRS84])
    datetime: tuple[dt.datetime | None, dt.datetime | None] | None = None
    filters: dict[str, object] = field(default_factory=dict)
    cql: Any = None  # a layers.cql2.SqlFilter (CQL2 ``filter``), None when not given


def check_items_params(layer: Layer, params: list[tuple[str, str]]) -> dict[str, str]:
    """The query parameters of an items request by name: none repeated, none unknown, ``f`` json/geojson."""
    seen: dict[str, str] = {}
    for key, value in params:
        if key in seen:
            raise QueryError(f"参数 {key} 重复出现", key)
        seen[key] = value
    unknown = [k for k in seen if k not in ITEMS_PARAMS and layer.prop(k) is None]
    if unknown:
        names = ", ".join(p.name for p in layer.properties)
        raise QueryError(f"未知参数 {', '.join(unknown)}；可按属性过滤：{names}", unknown[0])
    f = seen.get("f")
    if f not in (None, "", "json", "geojson"):
        raise QueryError(f"不支持的格式 f={f!r}（可用 json / geojson）", "f")
    return seen


def parse_bbox_query(
    value: str | None, bbox_crs: Crs, *, bbox_crs_given: bool = False
) -> tuple[float, float, float, float] | None:
    """The ``bbox`` parameter in lon/lat order (still in ``bbox_crs``'s datum); ``bbox-crs`` needs a bbox."""
    if bbox_crs_given and value is None:
        raise QueryError("给了 bbox-crs 却没有 bbox", "bbox-crs")
    raw_bbox = parse_bbox(value)
    return None if raw_bbox is None else bbox_to_lonlat(raw_bbox, bbox_crs)


def bbox_to_wgs84(
    bbox: tuple[float, float, float, float] | None, crs: Crs
) -> tuple[float, float, float, float] | None:
    """A lon/lat bbox in ``crs``'s datum as WGS84 (GCJ-02 corners converted; other CRSs are WGS84 already)."""
    if bbox is None or not crs.gcj02:
        return bbox
    from geo.crs import gcj02_to_wgs84

    (x0, x1), (y0, y1) = gcj02_to_wgs84([bbox[0], bbox[2]], [bbox[1], bbox[3]])
    return float(min(x0, x1)), float(min(y0, y1)), float(max(x0, x1)), float(max(y0, y1))


def parse_layer_datetime(layer: Layer, value: str | None) -> tuple[dt.datetime | None, dt.datetime | None] | None:
    """The ``datetime`` parameter for ``layer``; always checked, but ignored on a layer without valid time."""
    # Ignoring it is what the spec allows (clients send it blindly).
    interval = parse_datetime(value)
    return interval if layer.has_time else None


def parse_filters(layer: Layer, params: dict[str, str]) -> dict[str, object]:
    """The property filters (``name=value``, every parameter that is not a standard one), typed."""
    return {key: parse_property_value(layer, key, value) for key, value in params.items() if key not in ITEMS_PARAMS}


def parse_items_query(layer: Layer, params: list[tuple[str, str]], *, max_limit: int = MAX_LIMIT) -> ItemsQuery:
    """Check every query parameter of ``/collections/{id}/items`` (unknown ones are an error)."""
    seen = check_items_params(layer, params)
    q = ItemsQuery(
        limit=parse_limit(seen.get("limit"), maximum=max_limit),
        offset=parse_offset(seen.get("offset")),
        crs=parse_crs(seen.get("crs"), "crs"),
        bbox_crs=parse_crs(seen.get("bbox-crs"), "bbox-crs"),
    )
    q.bbox = parse_bbox_query(seen.get("bbox"), q.bbox_crs, bbox_crs_given="bbox-crs" in seen)
    q.datetime = parse_layer_datetime(layer, seen.get("datetime"))
    q.filters = parse_filters(layer, seen)
    return q


def page_links(base_url: str, params: list[tuple[str, str]], *, offset: int, limit: int,
               number_matched: int, number_returned: int) -> list[dict]:
    """self / next / prev links of an items page; other parameters are kept as given."""
    kept = [(k, v) for k, v in params if k not in ("offset", "limit")]

    def url(off: int) -> str:
        return base_url + "?" + urlencode([*kept, ("limit", str(limit)), ("offset", str(off))])

    links = [{"rel": "self", "type": GEOJSON, "title": "本页", "href": url(offset)}]
    if offset + number_returned < number_matched:
        links.append({"rel": "next", "type": GEOJSON, "title": "下一页", "href": url(offset + limit)})
    if offset > 0:
        links.append({"rel": "prev", "type": GEOJSON, "title": "上一页", "href": url(max(0, offset - limit))})
    return links


def collection_doc(layer: Layer, base: str, *, extent: tuple[float, float, float, float] | None,
                   temporal: tuple[str | None, str | None] | None = None) -> dict:
    """``/collections/{id}`` document. ``base`` is the API root URL without a trailing slash."""
    href = f"{base}/collections/{layer.id}"
    extent_doc: dict[str, Any] = {}
    doc = {
        "id": layer.id,
        "title": layer.title_zh,
        "description": layer.description_zh or f"{layer.title_zh}（{layer.title_en}）",
        "keywords": [layer.title_en],
        "itemType": "feature",
        "crs": SUPPORTED_CRS,
        "storageCrs": CRS84,
        "links": [
            {"rel": "self", "type": "application/json", "title": layer.title_zh, "href": href},
            {"rel": "items", "type": GEOJSON, "title": f"{layer.title_zh}要素", "href": f"{href}/items"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", "type": "application/json",
             "title": "矢量瓦片集 vector tilesets", "href": f"{href}/tiles"},
            {"rel": "alternate", "type": "application/json", "title": "矢量瓦片 TileJSON",
             "href": f"{href}/tiles/WebMercatorQuad/tilejson.json"},
            {"rel": "describedby", "type": "application/schema+json", "title": "要素结构 feature schema",
             "href": f"{href}/schema"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables", "type": "application/schema+json",
             "title": "可查询属性（CQL2 filter）", "href": f"{href}/queryables"},
            {"rel": "queryables", "type": "application/schema+json",  # the draft's rel, which GDAL reads
             "title": "可查询属性", "href": f"{href}/queryables"},
        ],
        "extent": extent_doc,
        "shequ:geometryType": layer.geometry_type,
        "shequ:readRole": layer.read_role,
        "shequ:minZoom": layer.min_zoom,
        "shequ:maxZoom": layer.max_zoom,
    }
    if extent is not None:
        extent_doc["spatial"] = {"bbox": [list(extent)], "crs": CRS84}
    else:
        extent_doc["spatial"] = {"bbox": [[-180.0, -90.0, 180.0, 90.0]], "crs": CRS84}
    if layer.has_time:
        extent_doc["temporal"] = {
            "interval": [list(temporal) if temporal else [None, None]],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    return doc


_JSON_SCHEMA_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
                      "date": "string", "datetime": "string"}


def queryables_doc(layer: Layer, base: str) -> dict:
    """``/collections/{id}/queryables``: the layer's filterable properties as a JSON Schema."""
    props = {}
    for p in layer.properties:
        s: dict = {"title": p.title_zh or p.name, "type": _JSON_SCHEMA_TYPES[p.type]}
        if p.type in ("date", "datetime"):
            s["format"] = "date" if p.type == "date" else "date-time"
        props[p.name] = s
    props["geometry"] = {"format": f"geometry-{layer.geometry_family.lower()}", "x-ogc-role": "primary-geometry"}
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": f"{base}/collections/{layer.id}/queryables",
        "type": "object",
        "title": layer.title_zh,
        "properties": props,
    }


def schema_doc(layer: Layer, base: str) -> dict:
    """``/collections/{id}/schema``: JSON Schema of one GeoJSON Feature of the layer (property types), which
    clients such as GDAL's OAPIF driver read to type their fields instead of guessing from a sample."""
    props: dict[str, Any] = {}
    for p in layer.properties:
        s: dict = {"title": p.title_zh or p.name, "type": _JSON_SCHEMA_TYPES[p.type]}
        if p.type in ("date", "datetime"):
            s["format"] = "date" if p.type == "date" else "date-time"
        props[p.name] = s
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": f"{base}/collections/{layer.id}/schema",
        "title": layer.title_zh,
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "string" if layer.id_is_text else "integer"},
            "geometry": {"format": f"geometry-{layer.geometry_family.lower()}"},
            "properties": {"type": "object", "properties": props},
        },
    }


def landing_doc(base: str) -> dict:
    """The API landing document (``/?f=json``): links to the conformance, collections and API definition."""
    return {
        "title": "社区 GIS 空间数据服务（Shequ GIS）",
        "description": "社区治理空间底座：行政区划、道路、建筑、标准地址、网格等图层的 OGC API Features 与矢量瓦片服务",
        "links": [
            {"rel": "self", "type": "application/json", "title": "本文档", "href": f"{base}/?f=json"},
            {"rel": "alternate", "type": "text/html", "title": "网页地图", "href": f"{base}/"},
            {"rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.1",
             "title": "OpenAPI 定义", "href": f"{base}/openapi.json"},
            {"rel": "service-doc", "type": "text/html", "title": "接口文档", "href": f"{base}/docs"},
            {"rel": "conformance", "type": "application/json", "title": "符合性声明",
             "href": f"{base}/conformance"},
            {"rel": "data", "type": "application/json", "title": "图层集合", "href": f"{base}/collections"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", "type": "application/json",
             "title": "矢量底图瓦片集 vector tilesets", "href": f"{base}/tiles"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes", "type": "application/json",
             "title": "瓦片矩阵集 tile matrix sets", "href": f"{base}/tileMatrixSets"},
        ],
    }
