"""``/analysis/scenarios``: named siting scenarios (save, list, read, compare) and planner reports
(PDF, CSV, GeoPackage) of a scenario or of a coverage result. Thin adapters over :mod:`siting.scenarios`
and :mod:`siting.documents`; long scenarios go through ``POST /analysis/jobs`` (kind ``scenario``).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from gis_api import offload
from gis_api.analysis_tasks import MEDIA
from gis_api.auth import roles as r
from gis_api.auth.deps import requires
from gis_api.deps import db_conn
from gis_api.params import RowIdPath, row_id_query
from gis_api.schemas.analysis import CoverageRequest
from gis_api.schemas.workbench import ScenarioRequest

router = APIRouter(prefix="/analysis", tags=["analysis scenarios 选址方案"])

SITE_COLUMNS = ["site", "status", "kind", "id", "name", "new_households_covered"]


def _file(data: bytes, fmt: str, name: str) -> Response:
    return Response(data, media_type=MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


@router.post("/scenarios", status_code=201, summary="求解并保存选址方案 solve and save a named scenario",
             response_class=Response, responses={201: {"description": "已保存的方案 the saved scenario", "content": {
                 "application/json": {"schema": {"type": "object", "additionalProperties": True}}}}})
async def save_scenario(req: ScenarioRequest, request: Request,
                        principal: r.Principal = Depends(requires("scenarios:write"))) -> Response:
    """LSCP / MCLP / p-median（现有设施固定）求解并保存为该名称在该范围内的下一版本；从不删除其他方案。
    Solved and saved in one transaction (in an analysis worker process, issue 15): bad input (no demand, p
    above the candidates, a bad CSV) saves nothing."""
    return await offload.answer(request, "save_scenario", req, principal.actor)


@router.get("/scenarios", summary="选址方案列表 saved scenarios")
def list_scenarios(area_code: str | None = Query(None, max_length=12), name: str | None = Query(None, max_length=100),
                   conn: Connection = Depends(db_conn, scope="function"),
                   _p: r.Principal = Depends(requires("scenarios:read"))) -> list[dict]:
    """已保存的方案（最新在前），可按范围、名称筛选。"""
    from siting import scenarios

    return scenarios.listing(conn, area_code, name)


@router.get("/scenarios/compare", summary="比较两个方案 compare two scenarios")
def compare(a: int = row_id_query("方案 A 编号"), b: int = row_id_query("方案 B 编号"),
            conn: Connection = Depends(db_conn, scope="function"),
            _p: r.Principal = Depends(requires("scenarios:read"))) -> dict:
    """并排比较：覆盖住户、覆盖率、新增设施、成本（B − A），及两方案的设施图层。"""
    from siting import scenarios

    return scenarios.compare(conn, a, b)


@router.get("/scenarios/{scenario_id:int}", summary="一个选址方案 one scenario")
def get_scenario(scenario_id: RowIdPath, conn: Connection = Depends(db_conn, scope="function"),
                 _p: r.Principal = Depends(requires("scenarios:read"))) -> dict:
    """方案参数、汇总与设施图层（GeoJSON）。"""
    from siting import scenarios

    return scenarios.get(conn, scenario_id)


@router.get("/scenarios/{scenario_id:int}/report.{fmt}", summary="方案报告 scenario report (pdf, csv, gpkg)",
            response_class=Response, responses={200: {"content": {m: {} for m in MEDIA.values()}}})
def scenario_report(scenario_id: RowIdPath, fmt: Literal["pdf", "csv", "gpkg"],
                    conn: Connection = Depends(db_conn, scope="function"),
                    _p: r.Principal = Depends(requires("scenarios:read"))) -> Response:
    """PDF（地图 + 表格，嵌入中文字体）、设施 CSV 或 GeoPackage。"""
    from siting import documents, scenarios, store

    sc = scenarios.get(conn, scenario_id)
    name = f"scenario-{sc['id']}-v{sc['version']}"
    if fmt == "csv":
        return _file(documents.csv_bytes(sc["sites"]["features"], SITE_COLUMNS), fmt, name)
    if fmt == "gpkg":
        return _file(documents.gpkg_bytes({"sites": sc["sites"]}), fmt, name)
    area = store.area_by_code(conn, sc["area_code"]) if sc["area_code"] else None
    _pts, footprints = store.residential_buildings(conn, area.geom_ll.wkt if area else None)
    context = [{"geometry": fp_ll.__geo_interface__, "properties": {}} for _fp, fp_ll in footprints]
    return _file(documents.scenario_pdf(sc, context), fmt, name)


@router.post("/coverage/report.{fmt}", summary="覆盖分析报告 coverage report (pdf, csv, gpkg)",
             response_class=Response, responses={200: {"content": {m: {} for m in MEDIA.values()}}})
async def coverage_report(req: CoverageRequest, fmt: Literal["pdf", "csv", "gpkg"], request: Request,
                          principal: r.Principal = Depends(requires("siting:run"))) -> Response:
    """与 ``POST /analysis/coverage`` 相同的参数；PDF（地图 + 按区域、网格的表格）、建筑 CSV 或 GeoPackage。"""
    return await offload.answer(request, "coverage_report", req, principal.actor, fmt)
