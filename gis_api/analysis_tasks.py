"""The long analyses of the planner routes, as functions of (connection, validated request, caller).

These are the bodies the routes ran inside the request until issue 15; now `gis_api.offload` runs them in
an analysis worker process, on a connection of that process (one transaction, committed when the function
returns), and the routes only wait for the answer. Each returns a JSON-able dict (answered 200), or a
:class:`Answer` for another status or content type. Domain errors are raised as before and turned into the
error table's answer by the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from gis_api.errors import InvalidInput
from gis_api.schemas.workbench import ScenarioRequest

MEDIA = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8", "gpkg": "application/geopackage+sqlite3"}


@dataclass(frozen=True)
class Answer:
    """A non-default answer of an analysis: its status, and either JSON content or bytes with a media type."""

    status: int = 200
    content: Any = None
    body: bytes | None = None
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _file(data: bytes, fmt: str, name: str) -> Answer:
    return Answer(body=data, media_type=MEDIA[fmt],
                  headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


def coverage(conn: Connection, req: Any, actor: str) -> dict:
    """``POST /analysis/coverage``."""
    from siting import service, store

    res = service.coverage_analysis(conn, req.facility_type, distance=req.distance, radius_m=req.radius_m,
                                    community_code=req.community_code, include_buildings=req.include_buildings,
                                    area_geojson=req.area)
    if req.save:
        res["summary"]["result_id"] = store.save_result(conn, "coverage", req.model_dump(), res["summary"])
        if req.area is None:  # the map page's layer holds city / admin-area results, not drawn areas
            store.replace_coverage_gap(conn, res["summary"], res["layers"]["uncovered_area"])
    return res


def isochrones(conn: Connection, req: Any, actor: str) -> dict:
    """``POST /analysis/isochrones``."""
    from siting import service

    return service.isochrone_analysis(conn, req.facility_type, minutes=tuple(req.minutes),
                                      speed_m_per_min=req.speed_m_per_min, buffer_m=req.buffer_m,
                                      community_code=req.community_code)


def siting(conn: Connection, req: Any, actor: str) -> dict:
    """``POST /analysis/siting`` (the route checked ``siting:save`` before a saving request was queued)."""
    from siting import service, store

    if req.inline:
        return _inline(conn, req)
    if not req.facility_type:
        raise InvalidInput("需要 facility_type（数据库模式）或 demand + sites（内联模式）")
    res = service.siting_analysis(
        conn, req.facility_type, model=req.model, new_sites=req.new_sites, p=req.p, distance=req.distance,
        radius_m=req.radius_m, candidates=tuple(req.candidates), community_code=req.community_code,
        keep_existing=req.keep_existing, method=req.method, time_limit_s=req.time_limit_s)
    if req.save:  # the new sites become planned facilities of the type (replacing the previous plan)
        res["summary"]["saved_planned_facilities"] = service.save_planned_sites(conn, res)
        res["summary"]["result_id"] = store.save_result(conn, "siting", req.model_dump(), res["summary"])
    return res


def _inline(conn: Connection, req: Any) -> dict:
    """Inline mode: the request's own demand and site points; the sites layer keeps their given coordinates."""
    import numpy as np

    from geo.geojson import feature, feature_collection
    from gis_api.schemas.analysis import points_wgs84
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


def cameras(conn: Connection, req: Any, actor: str) -> dict:
    """``POST /analysis/cameras``."""
    from siting import service

    return service.camera_plan(conn, req.community_code, model=req.model, headings=req.headings,
                               pole_spacing_m=req.pole_spacing_m, k=req.k, method=req.method,
                               time_limit_s=req.time_limit_s, building_corners=req.building_corners)


def coverage_report(conn: Connection, req: Any, actor: str, fmt: str) -> Answer:
    """``POST /analysis/coverage/report.{fmt}``: PDF, buildings CSV or GeoPackage of a coverage."""
    from siting import documents, service

    res = service.coverage_analysis(conn, req.facility_type, distance=req.distance, radius_m=req.radius_m,
                                    community_code=req.community_code, include_buildings=True,
                                    area_geojson=req.area)
    name = f"coverage-{res['summary']['type_code']}"
    if fmt == "csv":
        return _file(documents.csv_bytes(res["layers"]["buildings"]["features"],
                                         ["id", "name", "households", "covered", "distance_m", "facility_id"]), fmt, name)
    if fmt == "gpkg":
        return _file(documents.gpkg_bytes(res["layers"]), fmt, name)
    return _file(documents.coverage_pdf(res), fmt, name)


def scenario_params(conn: Connection, req: ScenarioRequest, actor: str) -> dict:
    """The scenario's parameters ready to solve: candidate points (list or CSV) checked and in WGS84.
    Raises a 4xx domain error (bad CSV, wrong CRS, unknown area) before anything is queued or saved."""
    import numpy as np

    from geo.crs import check_in_china, to_wgs84
    from siting import candidates, store
    from siting.errors import SitingNotFound

    p = req.model_dump(exclude={"points_csv", "crs"})
    if req.area_code and store.area_by_code(conn, req.area_code) is None:
        raise SitingNotFound(f"行政区划 {req.area_code} 不存在或没有边界 (no admin unit with this code and a boundary)")
    ll = None
    if req.points_csv:
        _ids, ll = candidates.parse_csv(req.points_csv, req.crs)
    elif req.points:
        arr = np.asarray(req.points, dtype=float)
        for x, y in arr:
            check_in_china(x, y)
        lon, lat = to_wgs84(arr[:, 0], arr[:, 1], req.crs)
        ll = np.column_stack([lon, lat])
    if ll is not None:
        candidates.check_near(ll, store.data_extent(conn))
        p["points"] = ll.round(7).tolist()
    p["created_by"] = actor
    return p


def save_scenario(conn: Connection, req: Any, actor: str) -> Answer:
    """``POST /analysis/scenarios``: solved and saved in one transaction (201)."""
    from siting import scenarios

    return Answer(status=201, content=scenarios.run_and_save(conn, scenario_params(conn, req, actor)))


#: what an analysis worker may run, by name
TASKS: dict[str, Callable[..., Any]] = {
    "coverage": coverage, "isochrones": isochrones, "siting": siting, "cameras": cameras,
    "coverage_report": coverage_report, "save_scenario": save_scenario,
}
