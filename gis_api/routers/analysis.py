"""POST /analysis/coverage, POST /analysis/siting, POST /analysis/cameras, POST /analysis/isochrones,
GET /analysis/facility-types.

Thin adapters: the analyses (`gis_api.analysis_tasks`, over `siting.service`) run in an analysis worker
process (`gis_api.offload`, issue 15) while the route waits holding no thread, no pooled connection and no
general admission slot; the request models are in `gis_api.schemas.analysis`, and siting's domain errors
become JSON errors by `gis_api.errors.ERROR_TABLE` (in the worker).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gis_api import offload
from gis_api.auth import roles as r
from gis_api.auth.deps import current_principal, requires
from gis_api.schemas.analysis import CameraRequest, CoverageRequest, SitingRequest
from gis_api.schemas.workbench import IsochroneRequest

router = APIRouter(prefix="/analysis", tags=["analysis 分析"], dependencies=[Depends(requires("siting:run"))])

#: what the document says a 200 of these routes is (the routes answer the worker's bytes, not a model)
JSON_OBJECT: dict[int | str, dict[str, Any]] = {
    200: {"description": "分析结果 the analysis result", "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": True}}}}}


@router.get("/facility-types")
def facility_types() -> list[dict]:
    """设施类型及 GB 50180-2018 默认服务半径 facility types with their default radius and clause."""
    from siting.standards import FACILITY_TYPES

    return [t.as_dict() for t in FACILITY_TYPES]


@router.post("/coverage", response_class=Response, responses=JSON_OBJECT)
async def coverage(req: CoverageRequest, request: Request,
                   principal: r.Principal = Depends(current_principal)) -> Response:
    """服务半径覆盖分析 coverage of households by a facility type: summary + GeoJSON layers (WGS84)."""
    return await offload.answer(request, "coverage", req, principal.actor)


@router.post("/isochrones", response_class=Response, responses=JSON_OBJECT)
async def isochrones(req: IsochroneRequest, request: Request,
                     principal: r.Principal = Depends(current_principal)) -> Response:
    """步行等时圈 5 / 10 / 15-minute walking isochrones (network buffers) of the facilities of a type."""
    return await offload.answer(request, "isochrones", req, principal.actor)


@router.post("/siting", response_class=Response, responses=JSON_OBJECT)
async def siting(req: SitingRequest, request: Request,
                 principal: r.Principal = Depends(current_principal)) -> Response:
    """设施选址 LSCP / MCLP / p-median, on the DB (facility_type) or on inline lon/lat points."""
    if req.save and not req.inline:
        r.require(principal, "siting:save")
    return await offload.answer(request, "siting", req, principal.actor)


@router.post("/cameras", response_class=Response, responses=JSON_OBJECT)
async def cameras(req: CameraRequest, request: Request,
                  principal: r.Principal = Depends(current_principal)) -> Response:
    """摄像机布设 camera plan: positions + headings, view sectors and blind spots as GeoJSON layers."""
    return await offload.answer(request, "cameras", req, principal.actor)
