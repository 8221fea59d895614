"""QR door plates in the API: the plate key, what a scan shows (address, grid, whom to contact), reports.

The key of the plate checks (`address_registry.plates`) is a generated secret in the secrets folder
(``plate-hmac``, 0600). Contacts: the current staff of the grid and micro-grid covering the address
(``grid_staff``) and the 社区民警 — police accounts granted a police-station area containing its point.
Names and phones are personal information (``gis_api.auth.classification``): in clear for the roles the
classification names, within their jurisdiction (each clear read audited by the caller); masked for
everyone else, the public included — a plate exists to say whom to contact, so the public sees the
masked name and number (张*, 139****5678), never the clear ones.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import text
from sqlalchemy.engine import Connection

from address_registry.records import AddressRecord
from gis_api.auth import classification as cls
from gis_api.auth import roles as r
from gis_api.auth import targets
from gis_api.auth.deps import auth_settings
from gis_api.auth.masking import mask_value
from gis_api.auth.secrets import load_or_create
from residents import key_places

KEY_NAME = "plate-hmac"

LEVEL_TITLES = {"road": "街路巷", "compound": "小区", "house_number": "门牌号", "building": "楼栋",
                "unit": "单元", "floor": "楼层", "room": "户室"}
REPORT_KINDS = {"wrong_address": "门牌地址有误", "wrong_place": "门牌位置不对", "damaged": "门牌损坏或缺失",
                "wrong_contact": "联系人信息有误", "other": "其他"}

_POLICE = text(
    "SELECT DISTINCT u.id, u.display_name, u.contact_phone, u.contact_office, g.code AS police_area, "
    "p.name AS police_area_name FROM app_user u JOIN user_grant g ON g.user_id = u.id AND g.kind = 'police_area' "
    "JOIN police_area p ON p.code = g.code WHERE u.role = 'police' AND NOT u.disabled "
    "AND g.code = ANY(:areas) ORDER BY g.code, u.id"
)


def plate_key(request: Request) -> bytes:
    """The plate HMAC key: ``secrets_dir/plate-hmac``, generated on first use (0600)."""
    return load_or_create(KEY_NAME, auth_settings(request))


def _field(principal: r.Principal, key: str, value: Any, inside: bool, clear: list[str], label: str) -> Any:
    """One personal field for ``principal``: clear (noted in ``clear``) or masked."""
    row = cls.row(key)
    if value is None or row is None:
        return value
    if principal.role in row.clear_roles and inside:
        clear.append(label)
        return value
    return mask_value(value, row.mask)


def contacts(conn: Connection, rec: AddressRecord, located: dict[str, Any], principal: r.Principal
             ) -> tuple[dict[str, Any], list[str]]:
    """Whom to contact about the address, masked for ``principal``; and the fields read in clear."""
    from grid_builder.store import staff_of

    areas = targets.address_target(conn, rec.code).get("police_area") or []
    grids = [g["code"] for g in (located.get("grid"), located.get("microgrid")) if g]
    where = {"township": rec.township_code, "community": rec.community_code, "grid": grids, "police_area": areas}
    inside = principal.is_authenticated and r.within(principal, where)
    clear: list[str] = []
    staff = []
    for g in grids:
        for s in staff_of(conn, g, current_only=True):
            staff.append({"grid_code": s["grid_code"], "role": s["role"],
                          "person_ref": _field(principal, "grid_staff.person_ref", s["person_ref"], inside, clear,
                                               f"grid_staff:{s['id']}.person_ref")})
    police = []
    for p in conn.execute(_POLICE, {"areas": list(areas)}).mappings() if areas else []:
        police.append({
            "role": "社区民警", "police_area": p["police_area"], "police_area_name": p["police_area_name"],
            "name": _field(principal, "app_user.display_name", p["display_name"], inside, clear,
                           f"app_user:{p['id']}.display_name"),
            "phone": _field(principal, "app_user.contact_phone", p["contact_phone"], inside, clear,
                            f"app_user:{p['id']}.contact_phone"),
            "office": p["contact_office"] if principal.is_authenticated else None,
        })
    return {"grid_staff": staff, "police": police, "masked": not clear, "in_jurisdiction": inside}, clear


def _unit(located: dict[str, Any], level: str) -> dict[str, Any] | None:
    u = located.get(level)
    return {"code": u["code"], "name": u.get("name")} if u else None


def scan_view(conn: Connection, rec: AddressRecord, principal: r.Principal) -> tuple[dict[str, Any], list[str]]:
    """What a scan of the plate of ``rec`` shows ``principal``; and the fields read in clear."""
    from grid_builder.store import locate

    located = locate(conn, rec.lon, rec.lat) if rec.lon is not None and rec.lat is not None else {}
    who, clear = contacts(conn, rec, located, principal)
    c = rec.components
    near = key_places.nearby(conn, rec.lon, rec.lat) if rec.lon is not None and rec.lat is not None else []
    return {
        "code": rec.code,
        "formatted": rec.formatted,
        "short": "".join(c.get(k, "") for k in ("road", "house_number", "building", "unit", "floor", "room")),
        "level": rec.level,
        "level_title": LEVEL_TITLES.get(rec.level, rec.level),
        "compound": c.get("compound"),
        "lon": rec.lon,
        "lat": rec.lat,
        "community": _unit(located, "community"),
        "township": _unit(located, "township"),
        "grid": _unit(located, "grid"),
        "microgrid": _unit(located, "microgrid"),
        "contacts": who,
        "key_places": [{"name": k["name"], "category_name": k["category_name"], "distance_m": k["distance_m"]}
                       for k in near],
        "verified": True,
    }, clear


def add_report(conn: Connection, code: str, kind: str, note: str | None, actor: str) -> dict[str, Any]:
    """File a 'wrong plate' correction task (state open); the stored row."""
    row = conn.execute(text(
        "INSERT INTO plate_report (address_code, kind, note, reported_by) VALUES (:c, :k, :n, :a) "
        "RETURNING id, address_code, kind, note, state, reported_by, created_at"),
        {"c": code, "k": kind, "n": note, "a": actor}).mappings().one()
    return {**dict(row), "created_at": row["created_at"].isoformat()}


PRINT_LEVELS = ("house_number", "compound", "building", "unit", "room")
_AREA_KINDS = {"road": "街路巷", "compound": "小区", "community": "社区"}
_SELECT_ROAD = (
    "WITH RECURSIVE t AS (SELECT code FROM standard_address WHERE code = :area AND valid_to IS NULL "
    "UNION SELECT a.code FROM standard_address a JOIN t ON a.parent_code = t.code WHERE a.valid_to IS NULL) "
    "SELECT {columns} FROM standard_address WHERE code IN (SELECT code FROM t) AND valid_to IS NULL "
    "AND status = 'active' AND level = ANY(:levels) ORDER BY code LIMIT :limit")


def plate_selection(conn: Connection, kind: str, area: str, levels: tuple[str, ...]) -> list[AddressRecord]:
    """The active addresses of ``levels`` to print plates for: under a road (its house numbers and what
    lies below them), inside a compound, or in a community; ordered by code. Domain errors: unknown kind or
    level (400), unknown area (404), nothing to print (404), more than `MAX_PLATES` (413)."""
    from address_registry.plate_pdf import MAX_PLATES
    from address_registry.store import search
    from address_registry.store.rows import _COLUMNS, _record
    from geo.errors import InvalidInput, NotFound, TooLarge

    if kind not in _AREA_KINDS:
        raise InvalidInput(f"范围类型应为 road、compound 或 community area kind must be one of {sorted(_AREA_KINDS)}")
    bad = [lv for lv in levels if lv not in PRINT_LEVELS]
    if bad or not levels:
        raise InvalidInput(f"门牌层级无效 invalid plate levels {bad or list(levels)}; choose from {list(PRINT_LEVELS)}")
    if kind == "community":
        exists = conn.execute(text("SELECT 1 FROM admin_unit WHERE code = :c AND level = 'community' "
                                   "AND valid_to IS NULL"), {"c": area}).first()
    else:
        exists = conn.execute(text("SELECT 1 FROM standard_address WHERE code = :c AND level = :l AND "
                                   "valid_to IS NULL AND status = 'active'"), {"c": area, "l": kind}).first()
    if exists is None:
        raise NotFound(f"{_AREA_KINDS[kind]}不存在或已注销 no active {kind} {area!r}")
    if kind == "road":
        rows = conn.execute(text(_SELECT_ROAD.format(columns=_COLUMNS)),
                            {"area": area, "levels": list(levels), "limit": MAX_PLATES + 1})
        recs = [_record(row) for row in rows]
        total = len(recs)
    else:
        total, recs = search(conn, levels=levels, limit=MAX_PLATES + 1,
                             compound_code=area if kind == "compound" else None,
                             community_code=area if kind == "community" else None)
    if total == 0:
        raise NotFound(f"该{_AREA_KINDS[kind]}没有可制作门牌的地址 no addresses of levels {list(levels)} in {area}")
    if total > MAX_PLATES:
        raise TooLarge(f"门牌过多（{total} 块，上限 {MAX_PLATES}）：请缩小范围或层级 "
                       f"{total} plates, at most {MAX_PLATES}: narrow the area or the levels")
    return recs


REPORT_STATES = ("open", "confirmed", "corrected", "dismissed")
_REPORT_COLS = ("r.id, r.address_code, r.kind, r.note, r.state, r.state_reason, r.reported_by, r.created_at, "
                "r.updated_at, a.full_text")


def list_reports(conn: Connection, where: dict[str, frozenset[str]] | None, address_code: str | None,
                 state: str | None, limit: int) -> list[dict[str, Any]]:
    """Wrong-plate reports, newest first, whose address lies in ``where`` (kind → codes; None: all)."""
    conds: list[str] = ["TRUE"]
    params: dict[str, Any] = {"limit": limit}
    if where is not None:
        ors = []
        if where.get("township"):
            ors.append("a.township_code = ANY(:w_township)")
        if where.get("community"):
            ors.append("a.community_code = ANY(:w_community)")
        if where.get("grid"):
            ors.append("EXISTS (SELECT 1 FROM grid g WHERE g.code = ANY(:w_grid) AND g.valid_to IS NULL "
                       "AND ST_Intersects(g.geom, a.geom))")
        if where.get("police_area"):
            ors.append("EXISTS (SELECT 1 FROM police_area p WHERE p.code = ANY(:w_police_area) "
                       "AND ST_Intersects(p.geom, a.geom))")
        params |= {f"w_{k}": sorted(v) for k, v in where.items()}
        conds.append("(" + (" OR ".join(ors) or "FALSE") + ")")
    if address_code:
        conds.append("r.address_code = :code")
        params["code"] = address_code
    if state:
        conds.append("r.state = :state")
        params["state"] = state
    rows = conn.execute(text(
        f"SELECT {_REPORT_COLS} FROM plate_report r LEFT JOIN standard_address a ON a.code = r.address_code "
        f"AND a.valid_to IS NULL WHERE {' AND '.join(conds)} ORDER BY r.id DESC LIMIT :limit"), params).mappings()
    return [_report_json(row) for row in rows]


def _report_json(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["kind_title"] = REPORT_KINDS.get(out["kind"], out["kind"])
    for k in ("created_at", "updated_at"):
        out[k] = out[k].isoformat() if out.get(k) else None
    return out


def report_address(conn: Connection, report_id: int) -> str | None:
    """The address code of a report, or None."""
    return conn.execute(text("SELECT address_code FROM plate_report WHERE id = :i"), {"i": report_id}).scalar()


def set_report_state(conn: Connection, report_id: int, state: str, reason: str | None) -> dict[str, Any]:
    """Close (confirmed / corrected / dismissed with reason) or reopen a report; the stored row."""
    from geo.errors import Conflict, InvalidInput, NotFound

    reason = (reason or "").strip() or None
    if state == "dismissed" and not reason:
        raise InvalidInput("驳回须说明理由 dismissing a report needs a reason", {"field": "reason"})
    row = conn.execute(text("SELECT state FROM plate_report WHERE id = :i FOR UPDATE"), {"i": report_id}).first()
    if row is None:
        raise NotFound(f"门牌报告不存在 no plate report {report_id}")
    if row[0] == state:
        raise Conflict(f"报告已是该状态 the report is already {state}")
    conn.execute(text("UPDATE plate_report SET state = :s, state_reason = :r, updated_at = now() WHERE id = :i"),
                 {"s": state, "r": reason, "i": report_id})
    got = conn.execute(text(f"SELECT {_REPORT_COLS} FROM plate_report r LEFT JOIN standard_address a ON "
                            "a.code = r.address_code AND a.valid_to IS NULL WHERE r.id = :i"),
                       {"i": report_id}).mappings().one()
    return _report_json(got)


_DEMO_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_DEMO_GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
               "秀英", "霞", "平", "刚", "桂英", "建华", "晓燕", "海燕", "志强", "文静", "丽华")
DEMO_MARK = "（演示）"


def demo_staff_name(code: str) -> str:
    """A reproducible synthetic name for the demo staff of a grid, marked 演示 (never a real person)."""
    import hashlib

    h = hashlib.sha256(code.encode("ascii")).digest()
    return _DEMO_SURNAMES[h[0] % len(_DEMO_SURNAMES)] + _DEMO_GIVEN[h[1] % len(_DEMO_GIVEN)] + DEMO_MARK


def seed_demo_contacts(conn: Connection) -> dict[str, int]:
    """Demo grid staff so a scanned plate shows whom to contact: a 专职网格员 on every current grid and a
    微网格长 on every current micro-grid that has no current staff (synthetic names marked 演示; grids that
    have staff are left alone: idempotent). Counts added per role."""
    rows = conn.execute(text(
        "SELECT g.code, g.level FROM grid g WHERE g.valid_to IS NULL AND g.level IN ('grid', 'microgrid') "
        "AND NOT EXISTS (SELECT 1 FROM grid_staff s WHERE s.grid_code = g.code AND s.valid_to IS NULL) "
        "ORDER BY g.code")).all()
    values = [{"g": code, "p": demo_staff_name(code), "r": "专职网格员" if level == "grid" else "微网格长"}
              for code, level in rows]
    if values:
        conn.execute(text("INSERT INTO grid_staff (grid_code, person_ref, role) VALUES (:g, :p, :r)"), values)
    return {"专职网格员": sum(v["r"] == "专职网格员" for v in values), "微网格长": sum(v["r"] == "微网格长" for v in values)}
