"""派出所辖区 police-station areas: the jurisdiction of police accounts, imported by an admin as GeoJSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from sqlalchemy.engine import Connection

from gis_api.auth import store
from gis_api.auth.audited import audited, note_records
from gis_api.auth.deps import requires
from gis_api.deps import db_conn
from gis_api.params import CrsQuery

router = APIRouter(prefix="/police-areas", tags=["auth 账户与审计"])


@router.get("", dependencies=[Depends(requires("police_areas:read"))],
            summary="派出所辖区列表 police-station areas (code, name, area)")
def list_areas(conn: Connection = Depends(db_conn, scope="function")) -> dict[str, Any]:
    """Every police-station area with its code, name, source, version and area in km² (admins, police,
    street staff)."""
    rows = store.list_police_areas(conn)
    return {"police_areas": rows, "numberReturned": len(rows)}


@router.post("", dependencies=[Depends(requires("police_areas:write")), audited("police_area.import")],
             summary="导入派出所辖区（GeoJSON）import police-station areas (admins)")
def import_areas(
    request: Request,
    collection: dict[str, Any] = Body(..., description="GeoJSON FeatureCollection；每个要素有 code 与 name 属性"),
    code_field: str = Query("code", description="代码属性名 the property holding the area code"),
    name_field: str = Query("name", description="名称属性名 the property holding the name"),
    crs: CrsQuery = "wgs84",
    conn: Connection = Depends(db_conn, scope="function"),
) -> dict[str, int]:
    """Insert or replace areas by code, in one transaction (a bad feature: 422 and nothing written). The
    police accounts granted a code act on the records inside its polygon."""
    counts = store.import_police_areas(conn, collection, code_field, name_field, crs)
    note_records(request, *[str((f.get("properties") or {}).get(code_field)) for f in collection["features"]])
    return counts


@router.get("/{code}", dependencies=[Depends(requires("police_areas:read"))],
            summary="一个派出所辖区（GeoJSON，含版本）one police-station area as GeoJSON")
def get_area(code: str = Path(..., max_length=64),
             conn: Connection = Depends(db_conn, scope="function")) -> dict[str, Any]:
    """The area's outline (lon/lat), name, source and version: what the editor loads to reshape it."""
    return store.get_police_area(conn, code)


@router.put("/{code}", dependencies=[Depends(requires("police_areas:write")), audited("police_area.reshape")],
            summary="修改派出所辖区形状（管理员）reshape a police-station area (admins)")
def reshape_area(
    request: Request,
    code: str = Path(..., max_length=64),
    geometry: dict[str, Any] = Body(..., embed=True, description="新的辖区范围（GeoJSON 面）the new outline"),
    base_version: int | None = Body(None, embed=True, description="所编辑的版本；已变化时 412 the version edited"),
    crs: CrsQuery = "wgs84",
    conn: Connection = Depends(db_conn, scope="function"),
) -> dict[str, Any]:
    """A new outline for a stored area (version + 1): 422 for a bad polygon, 412 when ``base_version`` is
    no longer current, 404 for an unknown code. Police accounts granted the code act inside the new outline
    at once."""
    out = store.reshape_police_area(conn, code, geometry, base_version, crs)
    note_records(request, code)
    return out
