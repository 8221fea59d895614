"""Nominatim-compatible geocoding under ``/nominatim/`` (search, reverse, lookup, status), for clients that
already speak Nominatim (geopy, Leaflet Control Geocoder, QGIS plugins).

Thin, and deliberately decoupled from the geocoder's internals: it calls the native ``/geocode`` and
``/reverse`` route functions (so the same access rules, room-level coarsening and result fields apply) and
reformats their results with `gis_api.nominatim`. ``lookup`` reads the public ``standard_address`` layer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from geo.errors import BadRequest
from gis_api import nominatim as nm
from gis_api.auth import roles as r
from gis_api.auth.deps import current_principal, requires
from gis_api.deps import db_engine
from gis_api.routers import geocode as native
from layers.ogc import ItemsQuery
from layers.store import available_layers, fetch_items

router = APIRouter(prefix="/nominatim", tags=["Nominatim 兼容接口 Nominatim-compatible geocoding"],
                   dependencies=[Depends(requires("geocode"))])

MAX_LIMIT = 20  # the native geocoder's cap (Nominatim's is 40: larger values are clamped, as Nominatim does)
MAX_LOOKUP = 50


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json; charset=utf-8",
                    headers={"Access-Control-Allow-Origin": "*"})


def _out(places: list[dict[str, Any]], fmt: str, query: str) -> Response:
    if fmt in ("geojson", "geocodejson"):
        return _json(nm.feature_collection(places, fmt, query))
    return _json(places)


def _limit(value: str | None, default: int = 10) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"limit 必须是整数：{value!r} (limit must be an integer)", detail={"parameter": "limit"}) from None
    return max(1, min(n, MAX_LIMIT))


def _float(params: dict[str, str], name: str, lo: float, hi: float) -> float:
    try:
        v = float(params[name])
    except KeyError:
        raise BadRequest(f"缺少参数 {name} (missing parameter {name})", detail={"parameter": name}) from None
    except ValueError:
        raise BadRequest(f"{name} 必须是数字 ({name} must be a number)", detail={"parameter": name}) from None
    if not lo <= v <= hi:
        raise BadRequest(f"{name} 超出范围 {lo}…{hi} ({name} out of range)", detail={"parameter": name})
    return v


async def _native_search(request: Request, q: str, limit: int, principal: r.Principal) -> list[dict[str, Any]]:
    resp = await native.geocode(request, q=q, limit=limit, crs="wgs84", principal=principal)
    return orjson.loads(resp.body)["results"]


def _native_reverse(request: Request, engine: Engine, lon: float, lat: float) -> dict[str, Any]:
    """The native /reverse body (from the in-memory index when the app has one, else by its SQL statement)."""
    return native.reverse_answer(engine, lon, lat, "wgs84", 1, getattr(request.app.state, "reverse_cache", None))


def _query(params: dict[str, str]) -> str:
    q = params.get("q", "").strip()
    structured = {k: params[k] for k in nm.STRUCTURED if params.get(k, "").strip()}
    if q and structured:
        raise BadRequest("q 与结构化参数（street、city…）不能同时使用 (use either q or the structured fields)",
                         detail={"parameter": "q"})
    q = q or nm.structured_query(structured)
    if not q:
        raise BadRequest("需要 q 或 street/city/county/state 等结构化参数 (q or a structured field is required)",
                         detail={"parameter": "q"})
    if len(q) > native.MAX_QUERY_CHARS:
        raise BadRequest(f"查询过长（最多 {native.MAX_QUERY_CHARS} 字）(query too long)", detail={"parameter": "q"})
    return q


@router.get("/search", summary="Nominatim 搜索 search (q= or structured)", response_class=Response)
async def search(request: Request, principal: r.Principal = Depends(current_principal),
                 engine: Engine = Depends(db_engine)):
    """Nominatim 兼容的地址搜索：`q=` 或结构化参数（street、city、county、state），`format=json|jsonv2|geojson|
    geocodejson`、`limit`、`viewbox`、`bounded`、`addressdetails`（含网格）、`accept-language`（数据为中文，忽略）。
    Nominatim-compatible search over the standard-address geocoder; extra `shequ:address_code`, `shequ:level`,
    `shequ:score` (and `shequ:grid` with `addressdetails=1`)."""
    params = dict(request.query_params)
    fmt = nm.parse_format(params.get("format"))
    q = _query(params)
    limit = _limit(params.get("limit"))
    box = nm.parse_viewbox(params.get("viewbox"))
    bounded = nm.parse_flag(params.get("bounded"), "bounded")
    details = nm.parse_flag(params.get("addressdetails"), "addressdetails")
    results = await _native_search(request, q, MAX_LIMIT if box else limit, principal)
    if box is not None:
        inside = [res for res in results if nm.in_box(res, box)]
        results = inside if bounded else inside + [res for res in results if not nm.in_box(res, box)]
    results = results[:limit]
    form = "jsonv2" if fmt != "json" else "json"
    places = [nm.place(res, form, details=False) for res in results]
    if details:  # the grid holding each point, from the native reverse
        places = [nm.place(res, form, details=True,
                           grid=(await run_in_threadpool(_native_reverse, request, engine, res["lon"],
                                                           res["lat"]))["grid"])
                  for res in results]
    return _out(places, fmt, q)


@router.get("/reverse", summary="Nominatim 逆地理编码 reverse", response_class=Response)
def reverse(request: Request, engine: Engine = Depends(db_engine)):
    """Nominatim 兼容的逆地理编码：`lat`、`lon`，`format`、`addressdetails`（默认 1）；含标准地址编码与网格。
    Nominatim-compatible reverse geocoding: the nearest standard address, with its grid."""
    params = dict(request.query_params)
    fmt = nm.parse_format(params.get("format"))
    lat = _float(params, "lat", -90, 90)
    lon = _float(params, "lon", -180, 180)
    details = nm.parse_flag(params.get("addressdetails"), "addressdetails", default=True)
    body = _native_reverse(request, engine, lon, lat)
    result = dict(body["address"])
    comps = dict(result.get("components") or {})
    for key in ("district", "township", "community"):
        if body.get(key) and not comps.get(key):
            value = body[key]
            comps[key] = value.get("name") if isinstance(value, dict) else value
    result["components"] = comps
    one = nm.place(result, "jsonv2" if fmt != "json" else "json", details=details, grid=body.get("grid"))
    if fmt in ("geojson", "geocodejson"):
        return _json(nm.feature_collection([one], fmt, f"{lat},{lon}"))
    return _json(one)


@router.get("/lookup", summary="Nominatim 按编号查询 lookup by address code", response_class=Response)
async def lookup(request: Request, principal: r.Principal = Depends(current_principal),
                 engine: Engine = Depends(db_engine)):
    """按标准地址编码查询（`osm_ids=编码1,编码2`，可带 Nominatim 的 N/W/R 前缀），最多 50 个。Look addresses up
    by standard-address code (`osm_ids`), in the order given; unknown codes are left out, as Nominatim does."""
    params = dict(request.query_params)
    fmt = nm.parse_format(params.get("format"))
    details = nm.parse_flag(params.get("addressdetails"), "addressdetails")
    codes = [c.strip() for c in params.get("osm_ids", "").split(",") if c.strip()]
    if not codes:
        raise BadRequest("需要 osm_ids=地址编码,… (osm_ids is required)", detail={"parameter": "osm_ids"})
    if len(codes) > MAX_LOOKUP:
        raise BadRequest(f"一次最多 {MAX_LOOKUP} 个编号 (at most {MAX_LOOKUP} ids)", detail={"parameter": "osm_ids"})
    places = []
    for raw in codes:
        code = raw[1:] if raw[:1] in "NWRnwr" and (raw[1:].isascii() and raw[1:].isdigit()) else raw
        found = await run_in_threadpool(_address_text, engine, code)
        if found is None:
            continue
        hits = await _native_search(request, found, MAX_LIMIT, principal)
        hit = next((h for h in hits if str(h.get("address_code")) == code), None)
        if hit is not None:
            places.append(nm.place(hit, "jsonv2" if fmt != "json" else "json", details=details))
    return _out(places, fmt, ",".join(codes))


def _address_text(engine: Engine, code: str) -> str | None:
    """The full text of a current public standard address (the ``standard_address`` layer), or None."""
    with engine.connect() as conn:
        layer = available_layers(conn).get("standard_address")
        if layer is None:
            return None
        features, _ = fetch_items(conn, layer, ItemsQuery(limit=1, filters={"code": code}))
    if not features:
        return None
    return orjson.loads(features[0])["properties"].get("full_text")


@router.get("/status", summary="Nominatim 服务状态 status", response_class=Response)
def status(request: Request):
    """服务状态（`format=json` 或纯文本 OK）。Service status, as Nominatim's `/status`."""
    fmt = request.query_params.get("format", "text")
    if fmt == "json":
        now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        return _json({"status": 0, "message": "OK", "data_updated": now,
                      "software_version": "shequ-gis 0.1.0 (Nominatim API)", "database_version": "shequ"})
    if fmt != "text":
        raise BadRequest(f"不支持的格式 format={fmt!r}（json 或 text）", detail={"parameter": "format"})
    return PlainTextResponse("OK")
