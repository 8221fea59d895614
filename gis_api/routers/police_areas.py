"""派出所辖区 police-station areas: the jurisdiction of police accounts, imported by an admin as GeoJSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request
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
