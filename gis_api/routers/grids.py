"""Grids: communities, grids and micro-grids as GeoJSON; stats; which units a point falls in.

`/grids/locate` is declared before `/grids/{code}` so that "locate" is never read as a code."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from shapely.geometry import mapping
from sqlalchemy.engine import Connection, Engine

from geo.crs import check_in_china, to_wgs84
from gis_api.deps import api_key, db_conn, db_engine
from gis_api.errors import BadRequest, Conflict, NotFound

router = APIRouter(prefix="/grids", tags=["grids 网格"], dependencies=[Depends(api_key)])

PROPS = (
    "code",
    "name",
    "level",
    "parent_code",
    "community_code",
    "households",
    "buildings",
    "area_m2",
    "compactness",
    "contiguous",
    "flags",
    "version",
    "valid_from",
    "valid_to",
    "source",
    "building_units",
)


def _feature(row: dict) -> dict:
    props = {k: row[k] for k in PROPS if k in row}
    for k in ("area_m2", "compactness"):
        if props.get(k) is not None:
            props[k] = round(float(props[k]), 4 if k == "compactness" else 1)
    return {
        "type": "Feature",
        "id": row["code"],
        "properties": props,
        "geometry": mapping(row["geom"]) if row.get("geom") is not None else None,
    }


def _level_of(conn: Connection, code: str) -> tuple[str, dict]:
    from grid_builder import store

    row = store.get_grid(conn, code)
    if row is not None:
        return row["level"], row
    for r in store.community_rows(conn, None):
        if r["code"] == code:
            return "community", r
    raise NotFound(f"没有编码为 {code} 的社区、网格或微网格 (no community/grid/micro-grid {code})")


@router.get("", summary="社区 / 网格 / 微网格 GeoJSON FeatureCollection")
def list_grids(
    level: str = Query("grid", description="community | grid | microgrid"),
    parent: str | None = Query(
        None, description="上级编码：街道（社区）、社区（网格）、网格或社区（微网格）"
    ),
    conn: Connection = Depends(db_conn),
):
    from grid_builder import store

    if level not in ("community", "grid", "microgrid"):
        raise BadRequest(f"level 须为 community、grid 或 microgrid (got {level!r})")
    if parent is not None and not parent.isdigit():
        raise BadRequest(f"parent 须为数字编码 (got {parent!r})")
    rows = (
        store.community_rows(conn, parent) if level == "community" else store.list_grids(conn, level, parent)
    )
    return {"type": "FeatureCollection", "features": [_feature(r) for r in rows], "numberReturned": len(rows)}


@router.get("/locate", summary="点所在的微网格、网格、社区、街道、区县")
def locate(
    lon: float = Query(..., description="经度"),
    lat: float = Query(..., description="纬度"),
    crs: str = Query("wgs84", description="wgs84 | cgcs2000 | gcj02"),
    conn: Connection = Depends(db_conn),
):
    from grid_builder import store

    try:
        check_in_china(lon, lat)
        x, y = to_wgs84(lon, lat, crs)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    found = store.locate(conn, float(x), float(y))
    return {"lon": float(x), "lat": float(y), **found}


@router.get("/{code}", summary="一个社区 / 网格 / 微网格 (GeoJSON Feature)")
def get_grid(code: str, conn: Connection = Depends(db_conn)):
    _level, row = _level_of(conn, code)
    return _feature(row)


@router.get("/{code}/stats", summary="统计：建筑、户数、兴趣点、地址、下级、网格员")
def grid_stats(code: str, conn: Connection = Depends(db_conn)):
    from grid_builder import store

    level, row = _level_of(conn, code)
    stats = store.grid_stats(conn, code, level)
    return {
        "code": code,
        "name": row["name"],
        "level": level,
        "parent_code": row.get("parent_code"),
        "area_m2": round(float(row["area_m2"]), 1),
        "compactness": round(float(row["compactness"]), 4),
        "flags": row.get("flags", []),
        **stats,
    }


class StaffIn(BaseModel):
    person_ref: str = Field(..., description="人员引用（人员表上线前为不透明字符串，如 person:123）")
    role: str = Field(
        ..., description="网格员 | 网格长 | 专职网格员 | 兼职网格员（网格）；微网格长（微网格）"
    )
    valid_from: datetime | None = Field(None, description="任职开始（带时区），缺省为当前时间")


def _raise(exc) -> None:
    if exc.status == 404:
        raise NotFound(exc.message) from exc
    if exc.status == 409:
        raise Conflict(exc.message) from exc
    raise BadRequest(exc.message) from exc


@router.put("/{code}/staff", summary="任命网格员 / 微网格长（前任的 valid_to 记为新任开始时间，历史保留）")
def put_staff(code: str, body: StaffIn, engine: Engine = Depends(db_engine)):
    from grid_builder.service import GridError, assign_grid_staff

    try:
        return {"code": code, **assign_grid_staff(engine, code, body.person_ref, body.role, body.valid_from)}
    except GridError as exc:
        _raise(exc)


@router.get("/{code}/staff", summary="网格 / 微网格的人员及任职历史")
def get_staff(
    code: str, current: bool = Query(False, description="只列现任"), engine: Engine = Depends(db_engine)
):
    from grid_builder.service import GridError, grid_staff

    try:
        rows = grid_staff(engine, code, current)
    except GridError as exc:
        _raise(exc)
    return {"code": code, "staff": rows, "numberReturned": len(rows)}
