"""Geocoding: GET /geocode (forward), GET /reverse, POST /geocode/batch. Thin over address_registry."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from address_registry.geocoder_cache import cache_for, geocoder_for
from address_registry.reverse import locate, locate_in_memory
from geo.crs import from_wgs84, normalize_crs, point_to_wgs84
from gis_api.auth import roles as r
from gis_api.auth.deps import current_principal, requires
from gis_api.deps import db_engine
from gis_api.errors import BadRequest, PayloadTooLarge, ServiceUnavailable, Unprocessable
from gis_api.params import CrsQuery
from gis_api.uploads import upload_route

router = APIRouter(tags=["geocoding 地理编码"], dependencies=[Depends(requires("geocode"))])
#: unit / floor / room addresses identify homes: only staff get them (public geocoding stops at the house)
ROOM_LEVELS = frozenset({"unit", "floor", "room"})


def _visible(geocoder, results: list[dict[str, Any]], principal: r.Principal) -> list[dict[str, Any]]:
    """The results the caller may see: without staff rights, a unit / floor / room becomes its building."""
    if r.can(principal, "addresses:read_internal"):
        return results
    return geocoder.coarsen(results, ROOM_LEVELS)

MAX_BATCH = 10_000
MAX_QUERY_CHARS = 200
# request body cap, checked before the body is read: 10,000 addresses of 200 CJK characters fit
MAX_BATCH_BYTES = 16 * 1024 * 1024
CRS_HELP = "坐标系 wgs84 | cgcs2000 | gcj02"


def _json(body: dict) -> Response:
    """A JSON response serialised with orjson (fast path)."""
    return Response(orjson.dumps(body), media_type="application/json")


def _geocoder(engine: Engine, geocoder=None):
    """The database's geocoder (503 while the registry is empty)."""
    geocoder = geocoder if geocoder is not None else geocoder_for(engine)
    if len(geocoder) == 0:
        # an empty index may just be younger than the registry's first write (made through another worker,
        # inside the stamp period; a worker that starts from a snapshot is ready early): look once more
        cache_for(engine).invalidate()
        geocoder = geocoder_for(engine)
    if len(geocoder) == 0:
        raise ServiceUnavailable("标准地址库为空 the address registry is empty: run `shequ address build`")
    return geocoder


def _out(result: dict[str, Any], crs: str) -> dict[str, Any]:
    """A result with its point in ``crs``, rounded to 7 decimals."""
    if result.get("lon") is not None and crs != "wgs84":
        lon, lat = from_wgs84(result["lon"], result["lat"], crs)
        result = {**result, "lon": float(lon), "lat": float(lat)}
    if result.get("lon") is not None:
        result["lon"], result["lat"] = round(result["lon"], 7), round(result["lat"], 7)
    return result


@router.get("/geocode", summary="地址 → 坐标 forward geocoding (fuzzy, best first)", response_class=Response)
async def geocode(
    request: Request,
    q: str = Query(..., min_length=1, max_length=MAX_QUERY_CHARS, description="地址文本 address text"),
    limit: int = Query(5, ge=1, le=20),
    crs: str = Query("wgs84", description=CRS_HELP),
    principal: r.Principal = Depends(current_principal),
):
    """Candidate standard addresses for a free-text address, best first, with score and point in ``crs``.
    Anonymous callers and systems without the internal scope get results down to house numbers.

    Each result also carries ``accuracy`` (surveyed | named | generated | interpolated | extrapolated |
    road_stretch | road | compound | community | township | district), ``radius_m`` (metres around the
    point that should hold the true place) and ``source`` (osm | generated | import | manual; null for an
    estimated place or an admin unit); an estimated number adds ``anchors`` (the known numbers it was
    placed from) and ``evidence_m`` (docs/address-registry.md, "Accuracy radius")."""
    # CPU-only and ~0.1 ms: answered on the event loop; the index check (a DB query at most every 2 s)
    # and a rebuild after a registry change run in the thread pool. `crs` is normalised here rather than
    # by the shared `CrsQuery` dependency, a plain function that FastAPI would run in the thread pool.
    crs = normalize_crs(crs)
    engine = request.app.state.engine
    geocoder = cache_for(engine).peek() or await run_in_threadpool(geocoder_for, engine)
    geocoder = _geocoder(engine, geocoder)
    results = _visible(geocoder, geocoder.geocode(q, limit=limit), principal)
    return _json({"query": q, "crs": crs, "results": [_out(r, crs) for r in results]})


@upload_route(
    router,
    "/geocode/batch",
    max_bytes=MAX_BATCH_BYTES,
    summary="批量地理编码 batch geocoding, ≤ 10,000 addresses, results in input order",
)
def geocode_batch(
    payload: Any = Body(..., examples=[{"addresses": ["黄浦区中山东一路3号", "世纪大道1号"], "limit": 1}]),
    crs: CrsQuery = "wgs84",
    engine: Engine = Depends(db_engine),
    principal: r.Principal = Depends(current_principal),
):
    """Geocode a list of addresses (or ``{"addresses": [...], "limit": n, "crs": ...}``), results in input order."""
    limit = 1
    if isinstance(payload, dict):
        addresses = payload.get("addresses")
        limit = payload.get("limit", 1)
        crs = payload.get("crs", crs)
    else:
        addresses = payload
    if not isinstance(addresses, list):
        raise Unprocessable(
            '请求体应为地址数组或 {"addresses": [...]} body must be a list of strings or {"addresses": [...]}'
        )
    if len(addresses) > MAX_BATCH:
        raise PayloadTooLarge(
            f"一次最多 {MAX_BATCH} 条地址 at most {MAX_BATCH} addresses per batch (got {len(addresses)})",
            {"max": MAX_BATCH, "got": len(addresses)},
        )
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 5:
        raise Unprocessable("limit 应为 1..5 的整数 limit must be an integer in 1..5")
    bad = [i for i, a in enumerate(addresses) if not isinstance(a, str) or len(a) > MAX_QUERY_CHARS]
    if bad:
        raise Unprocessable(
            f"第 {bad[0]} 条不是有效的地址文本 item {bad[0]} is not a string of ≤ {MAX_QUERY_CHARS} characters",
            {"bad_indexes": bad[:100]},
        )
    crs = normalize_crs(crs)
    geocoder = _geocoder(engine)
    out = []
    for i, text in enumerate(addresses):
        res = _visible(geocoder, geocoder.geocode(text, limit=limit), principal)
        out.append({"index": i, "query": text, "results": [_out(r, crs) for r in res]})
    return _json({"crs": crs, "count": len(out), "results": out})


def reverse_answer(engine: Engine, lon: float, lat: float, crs: str, limit: int, reverse_cache=None,
                   index=None) -> dict[str, Any]:
    """The body of a /reverse answer: from the in-memory reverse index (``index``, or the one of
    ``reverse_cache`` after its stamp checks: address_registry/reverse_cache.py) when there is one, else by
    one statement on a connection of the look-up engine (`gis_api.db.get_lookup_engine`)."""
    wlon, wlat = point_to_wgs84(lon, lat, crs)
    assert wlon is not None and wlat is not None  # both were given (required query parameters)
    if index is None and reverse_cache is not None:
        index = reverse_cache.get()
    if index is not None:
        found = locate_in_memory(index, wlon, wlat, k=limit)
    else:
        with engine.connect() as conn:
            found = locate(conn, wlon, wlat, k=limit)
    if not found["nearby"]:
        raise ServiceUnavailable("标准地址库为空 the address registry is empty: run `shequ address build`")
    items = [_out(item, crs) for item in found["nearby"]]
    return {"lon": lon, "lat": lat, "crs": crs, "address": items[0], "nearby": items,
            **{key: found[key] for key in ("district", "township", "community", "grid", "compound")}}


@router.get("/reverse", summary="坐标 → 所在建筑 / 最近标准地址 reverse geocoding", response_class=Response)
async def reverse(
    request: Request,
    lon: float = Query(..., description="经度 longitude"),
    lat: float = Query(..., description="纬度 latitude"),
    crs: str = Query("wgs84", description=CRS_HELP),
    limit: int = Query(1, ge=1, le=10),
):
    """The standard address at a point — the building footprint holding it (or one within 5 m), else the
    nearest address points — with its accuracy kind, radius (m) and source, and the point's district,
    township, community, grid and compound."""
    # from memory (issue 14), on the event loop like /geocode, while the index needs no check (no I/O);
    # else one hop to the thread pool: the index's stamp checks (and a delta or a reload), or, without an
    # index, the one statement (`address_registry.reverse.locate`). `crs` is normalised here, on the event
    # loop (the shared `CrsQuery` dependency and the engine dependency are plain functions that FastAPI would
    # run in the thread pool, a hop each)
    crs = normalize_crs(crs)
    state = request.app.state
    reverse_cache = state.reverse_cache
    index = reverse_cache.peek() if reverse_cache is not None else None
    if index is not None:
        return _json(reverse_answer(state.lookup_engine, lon, lat, crs, limit, index=index))
    body = await run_in_threadpool(reverse_answer, state.lookup_engine, lon, lat, crs, limit, reverse_cache)
    return _json(body)


__all__ = ["router", "BadRequest"]
