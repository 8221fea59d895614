"""POST /analysis/coverage, POST /analysis/siting, POST /analysis/cameras, POST /analysis/isochrones,
GET /analysis/facility-types.

Thin adapters over `siting.service`; the request models are in `gis_api.schemas.analysis`, and siting's
domain errors become JSON errors by `gis_api.errors.ERROR_TABLE`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.engine import Connection

from gis_api.auth import roles as r
from gis_api.auth.deps import current_principal, requires
from gis_api.deps import db_conn
from gis_api.errors import InvalidInput
from gis_api.schemas.analysis import CameraRequest, CoverageRequest, SitingRequest, points_wgs84
from gis_api.schemas.workbench import IsochroneRequest

router = APIRouter(prefix="/analysis", tags=["analysis 分析"], dependencies=[Depends(requires("siting:run"))])


@router.get("/facility-types")
def facility_types() -> list[dict]:
    """设施类型及 GB 50180-2018 默认服务半径 facility types with their default radius and clause."""
    from siting.standards import FACILITY_TYPES

    return [t.as_dict() for t in FACILITY_TYPES]


@router.post("/coverage")
def coverage(req: CoverageRequest, conn: Connection = Depends(db_conn, scope="function")) -> dict:
    """服务半径覆盖分析 coverage of households by a facility type: summary + GeoJSON layers (WGS84)."""
    from siting import service, store

    res = service.coverage_analysis(conn, req.facility_type, distance=req.distance, radius_m=req.radius_m,
                                    community_code=req.community_code, include_buildings=req.include_buildings,
                                    area_geojson=req.area)
    if req.save:
        res["summary"]["result_id"] = store.save_result(conn, "coverage", req.model_dump(), res["summary"])
        if req.area is None:  # the map page's layer holds city / admin-area results, not drawn areas
            store.replace_coverage_gap(conn, res["summary"], res["layers"]["uncovered_area"])
    return res


@router.post("/isochrones")
def isochrones(req: IsochroneRequest, conn: Connection = Depends(db_conn, scope="function")) -> dict:
    """步行等时圈 5 / 10 / 15-minute walking isochrones (network buffers) of the facilities of a type."""
    from siting import service

    return service.isochrone_analysis(conn, req.facility_type, minutes=tuple(req.minutes),
                                      speed_m_per_min=req.speed_m_per_min, buffer_m=req.buffer_m,
                                      community_code=req.community_code)


@router.post("/siting")
def siting(req: SitingRequest, conn: Connection = Depends(db_conn, scope="function"),
           principal: r.Principal = Depends(current_principal)) -> dict:
    """设施选址 LSCP / MCLP / p-median, on the DB (facility_type) or on inline lon/lat points."""
    from siting import service, store

    if req.inline:
        return _inline(req, conn)
    if not req.facility_type:
        raise InvalidInput("需要 facility_type（数据库模式）或 demand + sites（内联模式）")
    res = service.siting_analysis(
        conn, req.facility_type, model=req.model, new_sites=req.new_sites, p=req.p, distance=req.distance,
        radius_m=req.radius_m, candidates=tuple(req.candidates), community_code=req.community_code,
        keep_existing=req.keep_existing, method=req.method, time_limit_s=req.time_limit_s)
    if req.save:
        r.require(principal, "siting:save")
    if req.save:  # the new sites become planned facilities of the type (replacing the previous plan)
        res["summary"]["saved_planned_facilities"] = service.save_planned_sites(conn, res)
        res["summary"]["result_id"] = store.save_result(conn, "siting", req.model_dump(), res["summary"])
    return res


def _inline(req: SitingRequest, conn) -> dict:
    """Inline mode: the request's own demand and site points; the sites layer keeps their given coordinates."""
    import numpy as np

    from geo.geojson import feature, feature_collection
    from siting import service

    req.check_inline()
    assert req.demand is not None and req.sites is not None and req.radius_m is not None
    demand_ll = np.column_stack(points_wgs84(req.demand, req.crs))
    site_ll = np.column_stack(points_wgs84(req.sites, req.crs))
    res = service.solve_points(
        conn, req.model, demand_ll, site_ll, req.radius_m, req.distance or "line", p=req.p,
        weights=np.array([q.weight for q in req.demand]), fixed=req.fixed_indices(),
        capacity=req.site_capacity(), method=req.method, time_limit_s=req.time_limit_s)
    site_ids = [q.id for q in req.sites]
    out = res.as_dict(site_ids=site_ids)
    out["method"] = res.method
    out["status"] = res.status
    fixed = {str(f) for f in req.fixed}
    feats = [feature({"type": "Point", "coordinates": [req.sites[j].lon, req.sites[j].lat]},
                     {"id": site_ids[j], "fixed": str(site_ids[j]) in fixed})
             for j in res.sites]
    return service.jsonable({"summary": out, "layers": {"sites": feature_collection(feats)}})


@router.post("/cameras")
def cameras(req: CameraRequest, conn: Connection = Depends(db_conn, scope="function")) -> dict:
    """摄像机布设 camera plan: positions + headings, view sectors and blind spots as GeoJSON layers."""
    from siting import service

    return service.camera_plan(conn, req.community_code, model=req.model, headings=req.headings,
                               pole_spacing_m=req.pole_spacing_m, k=req.k, method=req.method,
                               time_limit_s=req.time_limit_s, building_corners=req.building_corners)
