"""Grids: communities, grids and micro-grids as GeoJSON; stats; which units a point falls in.

`/grids/locate` is declared before `/grids/{code}` so that "locate" is never read as a code. Domain errors
(`grid_builder.errors`) reach the client through the shared error table (`gis_api.errors`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from geo.geojson import feature, feature_collection
from gis_api.auth import roles as r
from gis_api.auth import targets
from gis_api.auth.audited import audited
from gis_api.auth.deps import current_principal, requires
from gis_api.deps import db_conn, db_engine, read_conn
from gis_api.errors import BadRequest, NotFound
from gis_api.params import OffsetQuery, WgsPoint, check_etag, if_match, wgs_point

router = APIRouter(prefix="/grids", tags=["grids 网格"])
READ = [Depends(requires("grids:read"))]


def _grid_target(code: str, conn: Connection = Depends(db_conn, scope="function")) -> dict[str, Any]:
    """Dependency: the jurisdiction of the grid / micro-grid in the path."""
    return targets.grid_target(conn, code)


def _staff_etag(staff: list[dict[str, Any]]) -> str:
    """A short tag of the current holders (changes whenever someone is appointed)."""
    blob = json.dumps(sorted((x["role"], x["person_ref"]) for x in staff), ensure_ascii=False)
    return hashlib.blake2b(blob.encode(), digest_size=6).hexdigest()


def _read_staff(conn: Connection, params: dict[str, str]) -> Any:
    """The audited record of a staff change: the grid's current staff."""
    from grid_builder import store

    return [{"person_ref": x["person_ref"], "role": x["role"]} for x in store.staff_of(conn, params["code"], True)]

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
    """A stored community / grid / micro-grid row as a GeoJSON Feature (id = its code)."""
    props = {k: row[k] for k in PROPS if k in row}
    for k in ("area_m2", "compactness"):
        if props.get(k) is not None:
            props[k] = round(float(props[k]), 4 if k == "compactness" else 1)
    return feature(row.get("geom"), props, id=row["code"])


def _level_of(conn: Connection, code: str) -> tuple[str, dict]:
    from grid_builder import store

    row = store.get_grid(conn, code)
    if row is not None:
        return row["level"], row
    for unit in store.community_rows(conn, None):
        if unit["code"] == code:
            return "community", unit
    raise NotFound(f"没有编码为 {code} 的社区、网格或微网格 (no community/grid/micro-grid {code})")


@router.get("", dependencies=READ, summary="社区 / 网格 / 微网格 GeoJSON FeatureCollection")
def list_grids(
    level: str = Query("grid", description="community | grid | microgrid"),
    parent: str | None = Query(
        None, description="上级编码：街道（社区）、社区（网格）、网格或社区（微网格）"
    ),
    limit: int = Query(1000, ge=1, le=5000, description="每页数量 page size"),
    offset: OffsetQuery = 0,
    conn: Connection = Depends(read_conn, scope="function"),
):
    """Current communities, grids or micro-grids, optionally under a parent code; paged by code order
    (``numberMatched`` is the total)."""
    from grid_builder import store

    if level not in ("community", "grid", "microgrid"):
        raise BadRequest(f"level 须为 community、grid 或 microgrid (got {level!r})")
    if parent is not None and not (parent.isascii() and parent.isdigit()):
        raise BadRequest(f"parent 须为数字编码 (got {parent!r})")
    rows = (
        store.community_rows(conn, parent) if level == "community" else store.list_grids(conn, level, parent)
    )
    page = rows[offset:offset + limit]
    return feature_collection((_feature(x) for x in page), numberMatched=len(rows), numberReturned=len(page))


@router.get("/locate", dependencies=READ, summary="点所在的微网格、网格、社区、街道、区县")
def locate(point: WgsPoint = Depends(wgs_point), conn: Connection = Depends(read_conn, scope="function")):
    """The micro-grid, grid, community, township and district at a point (given in ``crs``)."""
    from grid_builder import store

    found = store.locate(conn, point.lon, point.lat)
    return {"lon": point.lon, "lat": point.lat, **found}


@router.get("/{code}", dependencies=READ, summary="一个社区 / 网格 / 微网格 (GeoJSON Feature)")
def get_grid(code: str, conn: Connection = Depends(read_conn, scope="function")):
    """One community, grid or micro-grid as a GeoJSON Feature."""
    _level, row = _level_of(conn, code)
    return _feature(row)


@router.get("/{code}/stats", dependencies=READ, summary="统计：建筑、户数、兴趣点、地址、下级、网格员")
def grid_stats(code: str, conn: Connection = Depends(db_conn, scope="function"),
               principal: r.Principal = Depends(current_principal)):
    """Counts inside a community / grid / micro-grid: buildings, households, POIs, addresses, children, and
    (for staff) who holds which role."""
    from grid_builder import store

    level, row = _level_of(conn, code)
    stats = store.grid_stats(conn, code, level)
    if not r.can(principal, "grids:staff_read"):
        stats.pop("staff", None)  # people in charge are internal (数据分类分级 内部)
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
    """Body of PUT /grids/{code}/staff: who takes which role, from when."""

    person_ref: str = Field(..., description="人员引用（人员表上线前为不透明字符串，如 person:123）")
    role: str = Field(
        ..., description="网格员 | 网格长 | 专职网格员 | 兼职网格员（网格）；微网格长（微网格）"
    )
    valid_from: datetime | None = Field(None, description="任职开始（带时区），缺省为当前时间")


@router.put("/{code}/staff", summary="任命网格员 / 微网格长（前任的 valid_to 记为新任开始时间，历史保留）",
            dependencies=[Depends(requires("grids:staff", target=_grid_target)),
                          audited("grid.staff", read=_read_staff)])
def put_staff(code: str, body: StaffIn, engine: Engine = Depends(db_engine),
              conn: Connection = Depends(db_conn, scope="function"),
              expected: str | None = Depends(if_match)):
    """Assign a person to a role of a grid / micro-grid; the previous holder's term is closed. Send the
    ``ETag`` of GET …/staff as ``If-Match``: 412 when the staff changed since you read it."""
    from grid_builder.service import assign_grid_staff

    if expected is not None:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('grid_staff:' || :c))"), {"c": code})
        check_etag(_staff_etag(_read_staff(conn, {"code": code})), expected)

    return {"code": code, **assign_grid_staff(engine, code, body.person_ref, body.role, body.valid_from)}


@router.get("/{code}/staff", dependencies=[Depends(requires("grids:staff_read"))],
            summary="网格 / 微网格的人员及任职历史")
def get_staff(
    code: str, response: Response, current: bool = Query(False, description="只列现任"),
    engine: Engine = Depends(db_engine),
):
    """Staff of a grid / micro-grid with their history (or only the current holders). The ``ETag`` names
    the current holders: send it back as ``If-Match`` with PUT."""
    from grid_builder.service import grid_staff

    rows = grid_staff(engine, code, current)
    with engine.connect() as conn:
        response.headers["ETag"] = f'"{_staff_etag(_read_staff(conn, {"code": code}))}"'
    return {"code": code, "staff": rows, "numberReturned": len(rows)}
