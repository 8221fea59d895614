"""POST /analysis/coverage, POST /analysis/siting, GET /analysis/facility-types: thin adapters over siting."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from gis_api.deps import api_key, db_conn
from gis_api.errors import BadRequest, NotFound, Unprocessable

router = APIRouter(prefix="/analysis", tags=["analysis 分析"], dependencies=[Depends(api_key)])

MAX_INLINE_POINTS = 200_000


class CoverageRequest(BaseModel):
    facility_type: str = Field(..., description="设施类型名称或代码，如 幼儿园 / kindergarten")
    distance: Literal["walk", "line"] | None = Field(None, description="默认取设施类型的距离类型（步行）")
    radius_m: float | None = Field(None, gt=0, le=20_000, description="覆盖 GB 50180-2018 默认服务半径")
    community_code: str | None = Field(None, max_length=12)
    include_buildings: bool = Field(True, description="false: only uncovered buildings in the layers")
    save: bool = False


class InlinePoint(BaseModel):
    id: str | int
    lon: float
    lat: float
    weight: float = Field(1.0, ge=0)
    capacity: float | None = Field(None, ge=0)


class SitingRequest(BaseModel):
    model: Literal["lscp", "mclp", "pmedian"] = "mclp"
    # database mode
    facility_type: str | None = Field(None, description="DB mode: demand = households, sites = existing + candidates")
    new_sites: int | None = Field(None, ge=0, le=10_000)
    candidates: list[Literal["buildings", "intersections"]] = ["buildings"]
    community_code: str | None = Field(None, max_length=12)
    keep_existing: bool = True
    # inline mode
    demand: list[InlinePoint] | None = Field(None, description="inline mode: lon/lat points (crs)")
    sites: list[InlinePoint] | None = None
    fixed: list[str | int] = []
    crs: str = "wgs84"
    # both
    p: int | None = Field(None, ge=1)
    distance: Literal["walk", "line"] | None = None
    radius_m: float | None = Field(None, gt=0, le=20_000)
    method: Literal["auto", "exact", "heuristic"] = "auto"
    time_limit_s: float = Field(60.0, gt=0, le=300)
    save: bool = Field(False, description="DB mode: store the new sites as planned facilities (replacing the previous plan)")


def _errors():
    from siting.service import SitingInputError, SitingNotFound

    return SitingInputError, SitingNotFound


@router.get("/facility-types")
def facility_types() -> list[dict]:
    """设施类型及 GB 50180-2018 默认服务半径 facility types with their default radius and clause."""
    from siting.standards import FACILITY_TYPES

    return [t.as_dict() for t in FACILITY_TYPES]


@router.post("/coverage")
def coverage(req: CoverageRequest, conn: Connection = Depends(db_conn)) -> dict:
    """服务半径覆盖分析 coverage of households by a facility type: summary + GeoJSON layers (WGS84)."""
    from siting import service, store

    bad, missing = _errors()
    try:
        res = service.coverage_analysis(conn, req.facility_type, distance=req.distance, radius_m=req.radius_m,
                                        community_code=req.community_code, include_buildings=req.include_buildings)
    except bad as exc:
        raise BadRequest(str(exc)) from None
    except missing as exc:
        raise NotFound(str(exc)) from None
    if req.save:
        res["summary"]["result_id"] = store.save_result(conn, "coverage", req.model_dump(), res["summary"])
    return res


@router.post("/siting")
def siting(req: SitingRequest, conn: Connection = Depends(db_conn)) -> dict:
    """设施选址 LSCP / MCLP / p-median, on the DB (facility_type) or on inline lon/lat points."""
    from siting import service, store

    bad, missing = _errors()
    if req.demand is not None or req.sites is not None:
        return _inline(req, conn)
    if not req.facility_type:
        raise Unprocessable("需要 facility_type（数据库模式）或 demand + sites（内联模式）")
    try:
        res = service.siting_analysis(
            conn, req.facility_type, model=req.model, new_sites=req.new_sites, p=req.p, distance=req.distance,
            radius_m=req.radius_m, candidates=tuple(req.candidates), community_code=req.community_code,
            keep_existing=req.keep_existing, method=req.method, time_limit_s=req.time_limit_s)
    except bad as exc:
        raise BadRequest(str(exc)) from None
    except missing as exc:
        raise NotFound(str(exc)) from None
    if req.save:  # the new sites become planned facilities of the type (replacing the previous plan)
        res["summary"]["saved_planned_facilities"] = service.save_planned_sites(conn, res)
        res["summary"]["result_id"] = store.save_result(conn, "siting", req.model_dump(), res["summary"])
    return res


def _inline(req: SitingRequest, conn) -> dict:
    import numpy as np
    from pyproj import Transformer

    from geo.crs import check_in_china, to_wgs84
    from siting import service
    from siting.models import MODELS, SitingError

    bad, _ = _errors()
    if not req.demand:
        raise BadRequest("需求点为空 (empty demand)")
    if not req.sites:
        raise BadRequest("候选点为空 (no sites)")
    if len(req.demand) + len(req.sites) > MAX_INLINE_POINTS:
        raise BadRequest(f"点数超过 {MAX_INLINE_POINTS} (too many inline points)")
    if req.radius_m is None:
        raise BadRequest("内联模式需要 radius_m (radius_m is required)")
    if req.model != "lscp" and req.p is None:
        raise BadRequest(f"{req.model} 需要 p")
    to_m = Transformer.from_crs(4326, 32651, always_xy=True)

    def project(points):
        lon = np.array([q.lon for q in points], dtype=float)
        lat = np.array([q.lat for q in points], dtype=float)
        lon, lat = to_wgs84(lon, lat, req.crs)
        for x, y in zip(lon, lat, strict=True):
            check_in_china(x, y)
        return np.column_stack(to_m.transform(lon, lat))

    d_xy, s_xy = project(req.demand), project(req.sites)
    site_ids = [q.id for q in req.sites]
    index = {str(i): k for k, i in enumerate(site_ids)}
    unknown = [f for f in req.fixed if str(f) not in index]
    if unknown:
        raise BadRequest(f"fixed 中的 id 不在 sites 中 (unknown fixed ids): {unknown[:10]}")
    caps = [q.capacity for q in req.sites]
    capacity = None if all(c is None for c in caps) else np.array([np.inf if c is None else c for c in caps])
    try:
        cov = service.compute_coverage(conn, d_xy, s_xy, req.radius_m, req.distance or "line", max_snap_m=250.0)
        kw = {"weights": np.array([q.weight for q in req.demand]), "fixed": [index[str(f)] for f in req.fixed],
              "capacity": capacity}
        m = MODELS[req.model](cov, **kw) if req.model == "lscp" else MODELS[req.model](cov, req.p, **kw)
        res = m.solve(method=req.method, time_limit=req.time_limit_s)
    except (bad, SitingError) as exc:
        raise BadRequest(str(exc)) from None
    out = res.as_dict(site_ids=site_ids)
    out["method"] = res.method
    out["status"] = res.status
    feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [req.sites[j].lon, req.sites[j].lat]},
              "properties": {"id": site_ids[j], "fixed": str(site_ids[j]) in {str(f) for f in req.fixed}}}
             for j in res.sites]
    return service.jsonable({"summary": out, "layers": {"sites": {"type": "FeatureCollection", "features": feats}}})


class CameraRequest(BaseModel):
    community_code: str | None = Field(None, max_length=12, description="默认第一个社区；无社区时用区的演示窗口")
    model: Literal["bullet-4mm", "bullet-6mm", "bullet-12mm", "dome-360"] = "bullet-6mm"
    headings: int = Field(8, ge=1, le=36)
    pole_spacing_m: float = Field(30.0, ge=5, le=500)
    building_corners: bool = Field(False, description="also building corners (wall mounts) as candidates")
    k: int | None = Field(None, ge=1, le=5000, description="best k new cameras (MCLP); default fewest (LSCP)")
    method: Literal["auto", "exact", "heuristic"] = "auto"
    time_limit_s: float = Field(60.0, gt=0, le=300)


@router.post("/cameras")
def cameras(req: CameraRequest, conn: Connection = Depends(db_conn)) -> dict:
    """摄像机布设 camera plan: positions + headings, view sectors and blind spots as GeoJSON layers."""
    from siting import service

    bad, missing = _errors()
    try:
        return service.camera_plan(conn, req.community_code, model=req.model, headings=req.headings,
                                   pole_spacing_m=req.pole_spacing_m, k=req.k, method=req.method,
                                   time_limit_s=req.time_limit_s, building_corners=req.building_corners)
    except bad as exc:
        raise BadRequest(str(exc)) from None
    except missing as exc:
        raise NotFound(str(exc)) from None
