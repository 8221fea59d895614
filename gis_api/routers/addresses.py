"""Standard addresses: read, history, create, correct, retire, merge, split, aliases.

Reading down to house numbers and buildings is public; unit / floor / room addresses (户/室) are internal.
Writes need an office role (admin, street, community) or a key with ``addresses:write``, within the
caller's jurisdiction; ``changed_by`` is the authenticated caller and every write is audited. Every change
needs a ``reason``; old versions are kept (GET …/history)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from address_registry import codes, service, store
from address_registry.records import REGISTRY_LEVELS
from address_registry.textnorm import normalize_text
from geo.crs import point_to_wgs84
from gis_api.auth import roles as r
from gis_api.auth import targets
from gis_api.auth.audited import audited, note_records
from gis_api.auth.deps import current_principal, requires
from gis_api.deps import db_conn, read_conn
from gis_api.errors import Conflict, NotFound, Unprocessable
from gis_api.params import CrsQuery, OffsetQuery, check_etag, if_match
from gis_api.schemas.addresses import AddressIn, AddressOut, AddressPatch, AliasIn, Change, MergeIn, SplitIn
from gis_api.uploads import too_large, upload_route

router = APIRouter(prefix="/addresses", tags=["addresses 标准地址"])

#: unit / floor / room addresses identify homes: internal (数据分类分级 内部)
ROOM_LEVELS = ("unit", "floor", "room")
PUBLIC_LEVELS = tuple(x for x in REGISTRY_LEVELS if x not in ROOM_LEVELS)
READ = [Depends(requires("addresses:read"))]


def _address_target(code: str, conn: Connection = Depends(db_conn, scope="function")) -> dict[str, Any]:
    """Dependency: the jurisdiction of the address in the path."""
    return targets.address_target(conn, code)


def _read_address(conn: Connection, params: dict[str, str]) -> Any:
    """The audited record of a write on ``{code}``: its current version."""
    rec = store.current(conn, params["code"]) if codes.is_valid(params.get("code", "")) else None
    return store.record_to_json(rec) if rec is not None else None


def _write(action: str) -> list[Any]:
    """A write on the address in the path: office roles within their jurisdiction, audited."""
    return [Depends(requires("addresses:write", target=_address_target)), audited(action, read=_read_address)]


def _check_version(conn: Connection, code: str, expected: str | None, body_version: int | None) -> None:
    """Optimistic concurrency: lock the current version and answer 412 when the caller edited another one."""
    rec = store.current(conn, _valid_code(code), lock=True)
    if rec is None:
        return  # the service answers 404
    check_etag(str(rec.version), expected if expected is not None else
               (str(body_version) if body_version is not None else None))


def _check_room_level(principal: r.Principal, level: str) -> None:
    """Room-level addresses need ``addresses:read_internal`` (staff)."""
    if level in ROOM_LEVELS:
        r.require(principal, "addresses:read_internal")

MAX_IMPORT_BYTES = 5 * 1024 * 1024  # an upload larger than this is refused with 413
# room for the multipart envelope and the form fields around the file (the request-body cap)
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def _valid_code(code: str) -> str:
    """``code`` when it is a well-formed standard-address code (length and check digit), else 422."""
    if not codes.is_valid(code):
        raise Unprocessable(
            f"标准地址编码无效（长度或校验位错误） invalid standard-address code {code!r} "
            "(wrong length or check digit)"
        )
    return code


def _json(conn: Connection, rec) -> dict[str, Any]:
    """An address as JSON with its aliases."""
    return store.record_to_json(rec) | {"aliases": store.aliases_of(conn, rec.code)}


@router.get("", dependencies=READ, summary="查询标准地址 list current addresses (filters, paged, by code)")
def list_addresses(
    parent_code: str | None = None,
    level: Literal[REGISTRY_LEVELS] | None = None,  # type: ignore[valid-type]
    status: Literal["active", "retired", "all"] = Query("active", description="active | retired | all"),
    community_code: str | None = None,
    compound_code: str | None = Query(
        None, description="小区编码：列出小区内的地址 addresses inside this compound"
    ),
    prefix: str | None = Query(
        None, description="规范化全称前缀 normalised full-text prefix, e.g. 上海市黄浦区中山东一路"
    ),
    limit: int = Query(50, ge=1, le=1000),
    offset: OffsetQuery = 0,
    conn: Connection = Depends(read_conn, scope="function"),
    principal: r.Principal = Depends(current_principal),
):
    """Current addresses filtered by parent, level, status, community, compound or text prefix; paged.
    Without staff rights, unit / floor / room addresses are left out."""
    internal = r.can(principal, "addresses:read_internal")
    if level is not None and not internal:
        _check_room_level(principal, level)
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
        levels=None if internal else PUBLIC_LEVELS,
        limit=limit,
        offset=offset,
    )
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "addresses": [store.record_to_json(r) for r in page],
    }


@router.get("/{code}", dependencies=READ, summary="标准地址当前版本 the current version of an address")
def get_address(code: str, response: Response, conn: Connection = Depends(read_conn, scope="function"),
                principal: r.Principal = Depends(current_principal)):
    """The current version with aliases and active children (a compound: its members' total). The
    ``ETag`` is the version: send it back as ``If-Match`` when editing."""
    rec = store.current(conn, _valid_code(code))
    if rec is None:
        raise NotFound(f"标准地址不存在 no address {code}")
    response.headers["ETag"] = f'"{rec.version}"'
    _check_room_level(principal, rec.level)
    children = store.active_children(conn, code)
    if not r.can(principal, "addresses:read_internal") and rec.level in ("building", "house_number"):
        children = [c for c in children if (store.current(conn, c) or rec).level not in ROOM_LEVELS]
    out = _json(conn, rec) | {"children": children}
    if rec.level == "compound":
        # the addresses inside a compound are not its tree children: count them, list with ?compound_code=
        out["members_total"] = _members_total(conn, code)
    return out


@router.get("/{code}/qr.svg", dependencies=READ, summary="二维码门牌 QR door plate (SVG)",
            response_class=Response)
def qr_plate(code: str, request: Request, conn: Connection = Depends(db_conn, scope="function"),
             principal: r.Principal = Depends(current_principal)):
    """A door plate with a QR code holding the signed scan link ``/p/{code}?c={check}`` (active addresses
    only; see docs/address-registry.md). The link is built from the configured public base URL
    (``SHEQU_PUBLIC_BASE_URL``), never from the request's Host header."""
    from address_registry.qr import plate_svg
    from gis_api.plates import plate_key

    rec = store.current(conn, _valid_code(code))
    if rec is None:
        raise NotFound(f"标准地址不存在 no address {code}")
    _check_room_level(principal, rec.level)
    if rec.status != "active":
        raise Conflict(f"地址已注销，不制作门牌 address {code} is retired")
    base = request.app.state.settings.public_base_url.rstrip("/") + "/"
    return Response(plate_svg(rec, base, key=plate_key(request)), media_type="image/svg+xml")


@router.get("/{code}/history", dependencies=READ, summary="全部历史版本 every version, oldest first")
def get_history(code: str, conn: Connection = Depends(read_conn, scope="function"),
                principal: r.Principal = Depends(current_principal)):
    """Every version of the address, oldest first."""
    versions = store.history(conn, _valid_code(code))
    if not versions:
        raise NotFound(f"标准地址不存在 no address {code}")
    _check_room_level(principal, versions[-1].level)
    return {"address_code": code, "versions": [store.record_to_json(v) for v in versions]}


@router.post(
    "",
    status_code=201,
    response_model=AddressOut,
    response_model_exclude_unset=True,
    summary="新建标准地址（含小区） create an address, or register a compound (小区) with its polygon",
    dependencies=[Depends(requires("addresses:write")), audited("address.create")],
)
def create(body: AddressIn, request: Request, conn: Connection = Depends(db_conn, scope="function"),
           principal: r.Principal = Depends(current_principal)):
    """A compound (`level: compound`): `components.compound` (or `name`), `area` (GeoJSON polygon in
    `crs`), optional label `lon`/`lat` inside it (default: a point on its surface), optional
    `parent_code` (its district). 422 for an invalid polygon (with the reason), one outside China or
    not inside one district, or one overlapping an active compound by more than 5 %; 409 for an active
    compound of the same name in the district. The addresses inside (the building at least half inside)
    get the compound as a new version in the same transaction (`members.joined`)."""
    lon, lat = point_to_wgs84(body.lon, body.lat, body.crs)
    data = body.model_dump(exclude={"version"}) | {"lon": lon, "lat": lat}
    if body.level == "compound":
        data["area"] = service.area_wgs84(body.area, body.crs) if body.area is not None else None
        area = data["area"]
        if lon is None and area is not None and area.is_valid and not area.is_empty:
            lon, lat = area.representative_point().coords[0]
        r.require(principal, "addresses:write", targets.community_target(conn, body.community_code, lon, lat))
        rec, members = service.create_compound(conn, data, principal.actor, body.reason)
        note_records(request, rec.code)
        return _json(conn, rec) | {"members": members, "members_total": _members_total(conn, rec.code)}
    if body.area is not None:
        raise Unprocessable("只有小区有范围 only a compound (level compound) has an area", {"field": "area"})
    where = (targets.address_target(conn, body.parent_code) if body.parent_code and len(body.parent_code) > 6
             else targets.community_target(conn, body.community_code, lon, lat))
    r.require(principal, "addresses:write", where)
    rec = service.create_address(conn, data, principal.actor, body.reason)
    note_records(request, rec.code)
    return _json(conn, rec)


@router.patch(
    "/{code}",
    response_model=AddressOut,
    response_model_exclude_unset=True,
    summary="更正标准地址（保留旧版本） correct an address, keeping the old version",
    dependencies=_write("address.correct"),
)
def correct(code: str, body: AddressPatch, conn: Connection = Depends(db_conn, scope="function"),
            expected: str | None = Depends(if_match),
            principal: r.Principal = Depends(current_principal)):
    """A compound may get a corrected `area` (validated like a new one, same district): the addresses
    that join or leave it get new versions in the same transaction (`members`)."""
    _check_version(conn, code, expected, body.version)
    data = body.model_dump(exclude_unset=True, exclude={"version"})
    if "lon" in data or "lat" in data:
        data["lon"], data["lat"] = point_to_wgs84(body.lon, body.lat, body.crs)
    if body.area is not None:
        data["area"] = service.area_wgs84(body.area, body.crs)
    rec, members = service.correct_with_members(conn, _valid_code(code), data, principal.actor, body.reason)
    if rec.level == "compound":
        return _json(conn, rec) | {"members": members, "members_total": _members_total(conn, rec.code)}
    return _json(conn, rec)


def _audit_import(conn: Connection, request: Request, principal: r.Principal, report: dict,
                  filename: str | None) -> None:
    """The audit entry of a bulk import, in the import's own transaction (it commits with the addresses)."""
    from gis_api.auth import audit
    from gis_api.auth.deps import audit_fields

    codes_ = [a.get("address_code") for a in report["created"] if isinstance(a, dict)]
    audit.append(conn, audit.AuditEntry.of(principal, "address.import", record_ids=[c for c in codes_ if c],
                                           after={"rows": report["rows"], "file": filename},
                                           **audit_fields(request)))


def _members_total(conn: Connection, code: str) -> int:
    """As in GET /addresses/{code}: the total of GET /addresses?compound_code= (the compound included)."""
    return store.search(conn, compound_code=code, limit=1)[0]


@router.post("/{code}/retire", dependencies=_write("address.retire"),
             summary="注销标准地址（不删除） retire an address (nothing is deleted)")
def retire(code: str, body: Change, conn: Connection = Depends(db_conn, scope="function"),
           expected: str | None = Depends(if_match),
           principal: r.Principal = Depends(current_principal)):
    """The address gets a new, retired version; it must have no active children."""
    _check_version(conn, code, expected, body.version)
    rec = service.retire_address(conn, _valid_code(code), principal.actor, body.reason)
    return _json(conn, rec)


@router.post("/merge", dependencies=[Depends(requires("addresses:write")), audited("address.merge")],
             summary="合并标准地址 merge addresses into one of them")
def merge(body: MergeIn, request: Request, conn: Connection = Depends(db_conn, scope="function"),
          principal: r.Principal = Depends(current_principal)):
    """The other addresses are retired pointing at ``into``; nothing is lost. Every address involved must
    lie in the caller's jurisdiction."""
    for c in [*body.codes, body.into]:
        r.require(principal, "addresses:write", targets.address_target(conn, _valid_code(c)))
    _check_version(conn, body.into, None, body.version)
    note_records(request, body.into, *body.codes)
    rec = service.merge_addresses(conn, body.codes, body.into, principal.actor, body.reason)
    return _json(conn, rec)


@router.post("/{code}/split", status_code=201, dependencies=_write("address.split"),
             summary="拆分标准地址 split an address into new ones")
def split(code: str, body: SplitIn, conn: Connection = Depends(db_conn, scope="function"),
          expected: str | None = Depends(if_match),
          principal: r.Principal = Depends(current_principal)):
    """New addresses under the same parent; the old one is retired pointing at them."""
    _check_version(conn, code, expected, body.version)
    parts = []
    for part in body.parts:
        p = part.model_dump()
        if part.lon is not None or part.lat is not None:
            p["lon"], p["lat"] = point_to_wgs84(part.lon, part.lat, body.crs)
        else:
            p.pop("lon"), p.pop("lat")
        parts.append(p)
    created = service.split_address(conn, _valid_code(code), parts, principal.actor, body.reason)
    return {"retired": code, "created": [_json(conn, r) for r in created]}


@router.post("/{code}/aliases", status_code=201, dependencies=_write("address.alias"),
             summary="添加别名 add an alias")
def add_alias(code: str, body: AliasIn, conn: Connection = Depends(db_conn, scope="function"),
              expected: str | None = Depends(if_match),
              principal: r.Principal = Depends(current_principal)):
    """Kinds: former_name, poi, compound, variant; the geocoder finds the address by it."""
    _check_version(conn, code, expected, body.version)
    return service.add_alias(conn, _valid_code(code), body.model_dump(exclude={"version"}), principal.actor)


@upload_route(
    router,
    "/import",
    max_bytes=MAX_IMPORT_BYTES + MULTIPART_OVERHEAD_BYTES,
    shown_bytes=MAX_IMPORT_BYTES,
    status_code=201,
    summary="批量导入标准地址（CSV / GeoJSON，全部成功才写入） bulk import, all or nothing",
    dependencies=[Depends(requires("addresses:import"))],
)
async def import_file(
    request: Request,
    principal: r.Principal = Depends(current_principal),
    file: UploadFile = File(..., description="CSV 或 GeoJSON 文件"),
    reason: str | None = Form(None, description="原因 why (default: 批量导入 + file name)"),
    crs: CrsQuery = "wgs84",
    dry_run: bool = Query(False, description="只校验不写入 validate only"),
):
    """Every row is validated like `POST /addresses`; one bad row → 422 listing every bad row
    (`detail.errors`: row, field, reason) and nothing is written. The columns are in docs/address-registry.md."""
    from starlette.concurrency import run_in_threadpool

    from address_registry.importer import read_rows

    # the whole request body was capped before it was read (upload_route); the file itself too:
    data = await file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise too_large(MAX_IMPORT_BYTES)
    rows = read_rows(data, file.filename)
    engine = request.app.state.engine

    def run():
        return service.import_all_or_nothing(
            engine,
            rows,
            principal.actor,
            reason or f"批量导入 bulk import {file.filename or ''}".strip(),
            convert=lambda lon, lat: point_to_wgs84(lon, lat, crs),
            dry_run=dry_run,
            before_commit=lambda conn, report: _audit_import(conn, request, principal, report, file.filename),
        )

    report = await run_in_threadpool(run)
    if report["errors"]:
        raise Unprocessable(
            f"{len(report['errors'])} 处错误，未写入任何地址 {len(report['errors'])} problem(s) in "
            f"{len({e['row'] for e in report['errors']})} row(s); nothing was imported",
            {"rows": report["rows"], "errors": report["errors"]},
        )
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
