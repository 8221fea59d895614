"""Standard addresses: read, history, create, correct, retire, merge, split, aliases.

Every change needs `changed_by` and `reason`; old versions are kept (GET …/history)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection, Engine

from address_registry import codes, service, store
from address_registry.model import REGISTRY_LEVELS
from address_registry.textnorm import normalize_text
from geo.crs import CrsError, check_in_china, geometry_to_wgs84, in_china, normalize_crs, to_wgs84
from gis_api.deps import api_key, db_conn, db_engine
from gis_api.errors import Conflict, NotFound, Unprocessable
from gis_api.uploads import too_large, upload_route

router = APIRouter(prefix="/addresses", tags=["addresses 标准地址"], dependencies=[Depends(api_key)])

MAX_IMPORT_BYTES = 5 * 1024 * 1024  # an upload larger than this is refused with 413
# room for the multipart envelope and the form fields around the file (the request-body cap)
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class Change(BaseModel):
    changed_by: str = Field(..., min_length=1, description="修改人 who makes the change")
    reason: str = Field(..., min_length=1, description="修改原因 why")


AREA_DESCRIPTION = (
    "小区范围：GeoJSON Polygon 或 MultiPolygon（或含其一的 Feature），坐标系同 crs；须为有效面（不自动修复）、"
    "在中国境内、位于一个区县内 the compound's polygon (level compound only), in `crs`; must be valid "
    "(not repaired), inside China and inside one district"
)


class AddressIn(Change):
    level: str = Field(..., description="road | compound | house_number | building | unit | floor | room")
    parent_code: str | None = Field(
        None,
        description="上级标准地址编码（道路、小区的上级为6位区县代码；小区可省略，由范围确定）"
        " parent code (a 6-digit district code for a road or compound; a compound's comes from its area)",
    )
    components: dict[str, str] = Field(
        default_factory=dict,
        description='本级要素，如 {"house_number": "32号"} 或 {"compound": "外滩新苑"}；可带上级要素用于一致性校验',
    )
    name: str | None = Field(None, description="小区名称（level=compound 时可代替 components.compound）")
    lon: float | None = Field(
        None,
        description="经度（小区为标注点，可省略：取范围内一点） longitude; a compound's optional label point",
    )
    lat: float | None = Field(None, description="纬度 latitude")
    crs: str = Field("wgs84", description="输入坐标系 wgs84 | cgcs2000 | gcj02 (point and area)")
    area: dict[str, Any] | None = Field(None, description=AREA_DESCRIPTION)
    building_id: int | None = None
    community_code: str | None = None
    source: str = "manual"
    aliases: list[str] = []


class AddressPatch(Change):
    components: dict[str, str] | None = None
    lon: float | None = None
    lat: float | None = None
    crs: str = "wgs84"
    area: dict[str, Any] | None = Field(
        None,
        description="更正小区范围（成员随之更新） a compound's corrected polygon; members follow. "
        + AREA_DESCRIPTION,
    )
    building_id: int | None = None
    community_code: str | None = None


class AliasOut(BaseModel):
    alias: str
    kind: str = Field(..., description="former_name | poi | compound | variant")
    source: str | None = None


class MembersOut(BaseModel):
    joined: list[str] = Field(
        ..., description="成为小区成员的地址（各得新版本） addresses that joined (new versions)"
    )
    left: list[str] = Field(
        ..., description="离开小区的地址（各得新版本） addresses that left (new versions)"
    )


class AddressOut(BaseModel):
    """The current version of a standard address (fields absent from a response are not set)."""

    address_code: str
    version: int
    level: str
    parent_code: str | None = None
    formatted: str = Field(..., description="格式化全称 formatted full text")
    components: dict[str, str]
    normalized_text: str
    lon: float | None = Field(None, description="WGS84")
    lat: float | None = Field(None, description="WGS84")
    district_code: str | None = None
    township_code: str | None = None
    community_code: str | None = None
    compound_code: str | None = None
    building_id: int | None = None
    source: str
    status: str
    valid_from: str | None = None
    valid_to: str | None = None
    changed_by: str | None = None
    change_reason: str | None = None
    related_codes: list[str] = []
    area: dict[str, Any] | None = Field(
        None, description="小区范围 GeoJSON MultiPolygon, WGS84 (compounds only)"
    )
    aliases: list[AliasOut] = []
    members: MembersOut | None = Field(
        None, description="新建小区或更正其范围时：成员变化 compounds created or redrawn: membership changes"
    )
    members_total: int | None = Field(
        None,
        description="小区：GET /addresses?compound_code= 的总数（含小区本身） compounds: that listing's total",
    )


class MergeIn(Change):
    codes: list[str] = Field(..., min_length=1)
    into: str


class SplitPart(BaseModel):
    components: dict[str, str]
    lon: float | None = None
    lat: float | None = None
    building_id: int | None = None
    community_code: str | None = None


class SplitIn(Change):
    parts: list[SplitPart] = Field(..., min_length=2)
    crs: str = "wgs84"


class AliasIn(BaseModel):
    alias: str
    kind: str = "variant"
    changed_by: str = Field(..., min_length=1)


def _wgs84(lon, lat, crs: str):
    if lon is None and lat is None:
        return None, None
    if lon is None or lat is None:
        raise Unprocessable("lon 和 lat 需同时提供 give both lon and lat")
    check_in_china(lon, lat)
    wlon, wlat = to_wgs84(lon, lat, normalize_crs(crs))
    return float(wlon), float(wlat)


def _area_wgs84(area: dict[str, Any], crs: str):
    """The request's GeoJSON polygon as a shapely geometry in WGS84: every vertex inside China (422
    otherwise), then converted from `crs` (GCJ-02 → WGS84)."""
    import shapely

    geom = service.area_from_geojson(area)
    crs = normalize_crs(crs)
    coords = shapely.get_coordinates(geom)
    bad = [tuple(c) for c in coords if not (bool(in_china(c[0], c[1])) and all(map(math.isfinite, c)))]
    if bad:
        try:
            check_in_china(*bad[0])
        except CrsError as exc:
            raise Unprocessable(
                f"小区范围有 {len(bad)} 个顶点无效或不在中国境内 {len(bad)} vertex(es) of the area invalid or "
                f"outside China: {exc}",
                {"field": "area", "vertices_outside": len(bad)},
            ) from exc
    if crs == "gcj02":
        # validity is checked on the polygon as given (the user's drawing), and again after conversion
        service.check_area(geom)
    return geometry_to_wgs84(geom, crs)


def _valid_code(code: str) -> str:
    if not codes.is_valid(code):
        raise Unprocessable(
            f"标准地址编码无效（长度或校验位错误） invalid standard-address code {code!r} "
            "(wrong length or check digit)"
        )
    return code


def _json(conn: Connection, rec) -> dict[str, Any]:
    return store.record_to_json(rec) | {"aliases": store.aliases_of(conn, rec.code)}


@router.get("", summary="查询标准地址 list current addresses (filters, paged, by code)")
def list_addresses(
    parent_code: str | None = None,
    level: str | None = None,
    status: str | None = Query("active", description="active | retired | all"),
    community_code: str | None = None,
    compound_code: str | None = Query(
        None, description="小区编码：列出小区内的地址 addresses inside this compound"
    ),
    prefix: str | None = Query(
        None, description="规范化全称前缀 normalised full-text prefix, e.g. 上海市黄浦区中山东一路"
    ),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    conn: Connection = Depends(db_conn),
):
    if level is not None and level not in REGISTRY_LEVELS:
        raise Unprocessable(f"未知地址层级 unknown level {level!r}: one of {', '.join(REGISTRY_LEVELS)}")
    if status not in ("active", "retired", "all"):
        raise Unprocessable("status 应为 active、retired 或 all")
    total, page = store.search(
        conn,
        parent_code=parent_code,
        level=level,
        status=None if status == "all" else status,
        community_code=community_code,
        compound_code=compound_code,
        text_prefix=normalize_text(prefix) if prefix else None,
        limit=limit,
        offset=offset,
    )
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "addresses": [store.record_to_json(r) for r in page],
    }


@router.get("/{code}", summary="标准地址当前版本 the current version of an address")
def get_address(code: str, conn: Connection = Depends(db_conn)):
    rec = store.current(conn, _valid_code(code))
    if rec is None:
        raise NotFound(f"标准地址不存在 no address {code}")
    out = _json(conn, rec) | {"children": store.active_children(conn, code)}
    if rec.level == "compound":
        # the addresses inside a compound are not its tree children: count them, list with ?compound_code=
        out["members_total"] = _members_total(conn, code)
    return out


@router.get("/{code}/qr.svg", summary="二维码门牌 QR door plate (SVG)", response_class=Response)
def qr_plate(code: str, request: Request, conn: Connection = Depends(db_conn)):
    from address_registry.qr import plate_svg

    rec = store.current(conn, _valid_code(code))
    if rec is None:
        raise NotFound(f"标准地址不存在 no address {code}")
    if rec.status != "active":
        raise Conflict(f"地址已注销，不制作门牌 address {code} is retired")
    return Response(plate_svg(rec, str(request.base_url)), media_type="image/svg+xml")


@router.get("/{code}/history", summary="全部历史版本 every version, oldest first")
def get_history(code: str, conn: Connection = Depends(db_conn)):
    versions = store.history(conn, _valid_code(code))
    if not versions:
        raise NotFound(f"标准地址不存在 no address {code}")
    return {"address_code": code, "versions": [store.record_to_json(v) for v in versions]}


@router.post(
    "",
    status_code=201,
    response_model=AddressOut,
    response_model_exclude_unset=True,
    summary="新建标准地址（含小区） create an address, or register a compound (小区) with its polygon",
)
def create(body: AddressIn, conn: Connection = Depends(db_conn), engine: Engine = Depends(db_engine)):
    """A compound (`level: compound`): `components.compound` (or `name`), `area` (GeoJSON polygon in
    `crs`), optional label `lon`/`lat` inside it (default: a point on its surface), optional
    `parent_code` (its district). 422 for an invalid polygon (with the reason), one outside China or
    not inside one district, or one overlapping an active compound by more than 5 %; 409 for an active
    compound of the same name in the district. The addresses inside (the building at least half inside)
    get the compound as a new version in the same transaction (`members.joined`)."""
    lon, lat = _wgs84(body.lon, body.lat, body.crs)
    data = body.model_dump() | {"lon": lon, "lat": lat}
    if body.level == "compound":
        data["area"] = _area_wgs84(body.area, body.crs) if body.area is not None else None
        rec, members = service.create_compound(conn, data, body.changed_by, body.reason)
        service.invalidate(engine)
        return _json(conn, rec) | {"members": members, "members_total": _members_total(conn, rec.code)}
    if body.area is not None:
        raise Unprocessable("只有小区有范围 only a compound (level compound) has an area", {"field": "area"})
    rec = service.create_address(conn, data, body.changed_by, body.reason)
    service.invalidate(engine)
    return _json(conn, rec)


@router.patch(
    "/{code}",
    response_model=AddressOut,
    response_model_exclude_unset=True,
    summary="更正标准地址（保留旧版本） correct an address, keeping the old version",
)
def correct(
    code: str, body: AddressPatch, conn: Connection = Depends(db_conn), engine: Engine = Depends(db_engine)
):
    """A compound may get a corrected `area` (validated like a new one, same district): the addresses
    that join or leave it get new versions in the same transaction (`members`)."""
    data = body.model_dump(exclude_unset=True)
    if "lon" in data or "lat" in data:
        data["lon"], data["lat"] = _wgs84(body.lon, body.lat, body.crs)
    if data.get("area") is not None:
        data["area"] = _area_wgs84(body.area, body.crs)
    rec, members = service.correct_with_members(conn, _valid_code(code), data, body.changed_by, body.reason)
    service.invalidate(engine)
    if rec.level == "compound":
        return _json(conn, rec) | {"members": members, "members_total": _members_total(conn, rec.code)}
    return _json(conn, rec)


def _members_total(conn: Connection, code: str) -> int:
    """As in GET /addresses/{code}: the total of GET /addresses?compound_code= (the compound included)."""
    return store.search(conn, compound_code=code, limit=1)[0]


@router.post("/{code}/retire", summary="注销标准地址（不删除） retire an address (nothing is deleted)")
def retire(code: str, body: Change, conn: Connection = Depends(db_conn), engine: Engine = Depends(db_engine)):
    rec = service.retire_address(conn, _valid_code(code), body.changed_by, body.reason)
    service.invalidate(engine)
    return _json(conn, rec)


@router.post("/merge", summary="合并标准地址 merge addresses into one of them")
def merge(body: MergeIn, conn: Connection = Depends(db_conn), engine: Engine = Depends(db_engine)):
    for c in [*body.codes, body.into]:
        _valid_code(c)
    rec = service.merge_addresses(conn, body.codes, body.into, body.changed_by, body.reason)
    service.invalidate(engine)
    return _json(conn, rec)


@router.post("/{code}/split", status_code=201, summary="拆分标准地址 split an address into new ones")
def split(code: str, body: SplitIn, conn: Connection = Depends(db_conn), engine: Engine = Depends(db_engine)):
    parts = []
    for part in body.parts:
        p = part.model_dump()
        if part.lon is not None or part.lat is not None:
            p["lon"], p["lat"] = _wgs84(part.lon, part.lat, body.crs)
        else:
            p.pop("lon"), p.pop("lat")
        parts.append(p)
    created = service.split_address(conn, _valid_code(code), parts, body.changed_by, body.reason)
    service.invalidate(engine)
    return {"retired": code, "created": [_json(conn, r) for r in created]}


@router.post("/{code}/aliases", status_code=201, summary="添加别名 add an alias")
def add_alias(
    code: str, body: AliasIn, conn: Connection = Depends(db_conn), engine: Engine = Depends(db_engine)
):
    out = service.add_alias(conn, _valid_code(code), body.model_dump(), body.changed_by)
    service.invalidate(engine)
    return out


@upload_route(
    router,
    "/import",
    max_bytes=MAX_IMPORT_BYTES + MULTIPART_OVERHEAD_BYTES,
    shown_bytes=MAX_IMPORT_BYTES,
    status_code=201,
    summary="批量导入标准地址（CSV / GeoJSON，全部成功才写入） bulk import, all or nothing",
)
async def import_file(
    request: Request,
    file: UploadFile = File(..., description="CSV 或 GeoJSON 文件"),
    changed_by: str = Form(..., min_length=1, description="修改人 who imports"),
    reason: str | None = Form(None, description="原因 why (default: 批量导入 + file name)"),
    crs: str = Query("wgs84", description="文件坐标系 wgs84 | cgcs2000 | gcj02"),
    dry_run: bool = Query(False, description="只校验不写入 validate only"),
):
    """Every row is validated like `POST /addresses`; one bad row → 422 listing every bad row
    (`detail.errors`: row, field, reason) and nothing is written. The columns are in docs/address-registry.md."""
    from starlette.concurrency import run_in_threadpool

    from address_registry.importing import read_rows

    # the whole request body was capped before it was read (upload_route); the file itself too:
    data = await file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise too_large(MAX_IMPORT_BYTES)
    crs = normalize_crs(crs)
    rows = read_rows(data, file.filename)
    engine = request.app.state.engine

    def run():
        return service.import_all_or_nothing(
            engine,
            rows,
            changed_by,
            reason or f"批量导入 bulk import {file.filename or ''}".strip(),
            convert=lambda lon, lat: _wgs84(lon, lat, crs),
            dry_run=dry_run,
        )

    report = await run_in_threadpool(run)
    if report["errors"]:
        raise Unprocessable(
            f"{len(report['errors'])} 处错误，未写入任何地址 {len(report['errors'])} problem(s) in "
            f"{len({e['row'] for e in report['errors']})} row(s); nothing was imported",
            {"rows": report["rows"], "errors": report["errors"]},
        )
    if not dry_run:
        service.invalidate(engine)
    body = {
        "rows": report["rows"],
        "imported": 0 if dry_run else len(report["created"]),
        "dry_run": dry_run,
        "crs": crs,
        "addresses": report["created"],
    }
    if dry_run:
        from fastapi.responses import JSONResponse

        return JSONResponse(body, status_code=200)
    return body
