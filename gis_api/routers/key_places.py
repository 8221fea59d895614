"""Key places (重点场所) on the standard address: ``/key-places/…`` and the ``key_place`` map layer.

Staff read the registry, the category table and counts per grid or community (``key_places:read``); office
staff add and correct key places within their jurisdiction (``key_places:write``, audited). The map layer
is registered in the layer registry (staff only), so the OGC API, vector tiles and the web map serve it.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from geo.errors import NotFound
from gis_api.auth import roles as r
from gis_api.auth import targets
from gis_api.auth.audited import audited, note_records
from gis_api.auth.deps import requires
from gis_api.deps import db_conn
from gis_api.params import OffsetQuery
from layers import registry
from layers.registry import Layer, Prop, Style
from residents import key_places as kp

router = APIRouter(prefix="/key-places", tags=["key places 重点场所"])

LAYER = Layer(
    id="key_place", title_zh="重点场所", title_en="Key places", table="key_place", geometry_type="Point",
    properties=(Prop("name", "string", "名称"), Prop("category", "string", "类别代码"),
                Prop("category_name", "string", "类别"), Prop("risk_level", "integer", "风险等级"),
                Prop("address_code", "string", "标准地址编码"), Prop("community_code", "string", "社区代码"),
                Prop("status", "string", "状态")),
    style=Style(color="#7a0177", fill_color="#dd3497", radius=5, fill_opacity=0.9, icon="key_place",
                label_field="name"),
    where="t.status = 'active'", min_zoom=13, order=85, read_role="staff",
    description_zh="学校、医院、养老机构、市场、加油站等重点场所（演示数据由 OSM 兴趣点按类别映射生成）；仅限工作人员",
)
if registry.get(LAYER.id) is None:
    registry.register(LAYER)


class KeyPlaceIn(BaseModel):
    """A key place at a standard address (house number, building or compound)."""

    name: str = Field(..., min_length=1, max_length=200)
    category: str = Field(..., max_length=40, description="类别代码，见 GET /key-places/categories")
    address_code: str = Field(..., max_length=32, description="标准地址编码")
    note: str | None = Field(None, max_length=500)


class KeyPlacePatch(BaseModel):
    """Corrections to a key place."""

    name: str | None = Field(None, min_length=1, max_length=200)
    category: str | None = Field(None, max_length=40)
    address_code: str | None = Field(None, max_length=32)
    status: Literal["active", "closed"] | None = None
    note: str | None = Field(None, max_length=500)


def _place_target(place_id: str, conn: Connection = Depends(db_conn, scope="function")) -> dict:
    """Dependency: the jurisdiction of the key place in the path (its address, else its community)."""
    if not (place_id.isascii() and place_id.isdigit()) or len(place_id) > 18:
        return {}
    try:
        p = kp.get(conn, int(place_id))
    except NotFound:
        return {}
    if p["address_code"]:
        return targets.address_target(conn, p["address_code"])
    return targets.community_target(conn, p["community_code"], p["lon"], p["lat"])


@router.get("/categories", dependencies=[Depends(requires("key_places:read"))],
            summary="重点场所类别（风险等级、巡查周期、责任部门、权重） the category table")
def list_categories(conn: Connection = Depends(db_conn, scope="function")):
    """Every category: code, name, risk level, inspection interval (days), department, weight, OSM kinds."""
    return {"categories": kp.categories(conn)}


@router.get("", dependencies=[Depends(requires("key_places:read"))], summary="重点场所 the key-place registry")
def list_places(community: str | None = Query(None, max_length=12), category: str | None = Query(None, max_length=40),
                status: Literal["active", "closed"] | None = Query("active"),
                limit: int = Query(500, ge=1, le=5000), offset: OffsetQuery = 0,
                conn: Connection = Depends(db_conn, scope="function")):
    """Key places by community / category / status, each with its standard address and point."""
    total, rows = kp.list_places(conn, community, category, status, limit, offset)
    return {"total": total, "limit": limit, "offset": offset, "key_places": rows}


@router.get("/counts", dependencies=[Depends(requires("key_places:read"))],
            summary="按网格或社区统计重点场所 counts per grid or community")
def place_counts(by: Literal["grid", "community"] = Query("community"),
                 conn: Connection = Depends(db_conn, scope="function")):
    """Active key places per grid (the grid-level cell holding each point) or per community, by category."""
    return {"by": by, "units": kp.counts(conn, by)}


@router.post("", status_code=201, summary="登记重点场所 add a key place", dependencies=[audited("key_place.create")])
def create_place(body: KeyPlaceIn, request: Request, conn: Connection = Depends(db_conn, scope="function"),
                 principal: r.Principal = Depends(requires("key_places:write"))):
    """A key place on a standard address within the caller's jurisdiction (404 unknown address, 422 retired
    or not a house number / building / compound, unknown category)."""
    r.require(principal, "key_places:write", targets.address_target(conn, body.address_code))
    out = kp.create(conn, body.model_dump(), principal.actor)
    note_records(request, f"key_place:{out['id']}", body.address_code)
    return out


@router.patch("/{place_id}", summary="更正重点场所 correct a key place",
              dependencies=[audited("key_place.update")])
def update_place(place_id: str, body: KeyPlacePatch, request: Request,
                 conn: Connection = Depends(db_conn, scope="function"),
                 principal: r.Principal = Depends(requires("key_places:write", target=_place_target))):
    """Name, category, status (closed), note, or the address (within your jurisdiction too)."""
    if not (place_id.isascii() and place_id.isdigit()) or len(place_id) > 18:
        raise NotFound(f"重点场所不存在 no key place {place_id}")
    changes = body.model_dump(exclude_unset=True)
    if changes.get("address_code"):
        r.require(principal, "key_places:write", targets.address_target(conn, changes["address_code"]))
    out = kp.update(conn, int(place_id), changes, principal.actor)
    note_records(request, f"key_place:{place_id}")
    return out
