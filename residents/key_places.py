"""Key places (重点场所) on the standard address: the category table and the registry.

Categories (migration ``0015_yibiao_key_places``, editable rows): schools, kindergartens, hospitals and
clinics, elderly care, markets, petrol / gas stations, hazardous-chemical sites, places of worship,
entertainment venues, hotels, financial outlets, transport hubs, construction sites, rental blocks — each
with a risk level (1–3), an inspection interval, the responsible department, a weight (its demand in
analyses such as camera siting) and the OSM kinds that seed it.

Seeding (`seed_from_pois`) maps the demo's OSM POIs by kind through that table and ties each to the nearest
active standard address (house number, building or compound) within ``max_address_m`` (farther: no
address, noted as such); it is idempotent (one key place per POI). Staff add and correct key places on a
standard address (the point is the address's). Counts per grid or community.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from geo.errors import InvalidInput, NotFound

from .errors import AddressNotFound, AddressNotUsable, InvalidField

STATUSES = ("active", "closed")
ADDRESS_LEVELS = ("house_number", "building", "compound")
COLUMNS = ("id, category, category_name, risk_level, name, address_code, address_distance_m, community_code, "
           "poi_id, source, status, note, ST_X(geom) AS lon, ST_Y(geom) AS lat, changed_by, updated_at")

_SEED = text("""
INSERT INTO key_place (category, category_name, risk_level, name, address_code, address_distance_m,
                       community_code, poi_id, source, geom, changed_by)
SELECT c.code, c.name, c.risk_level, coalesce(nullif(p.name, ''), c.name || '（未命名）'),
       CASE WHEN a.d <= :max_m THEN a.code END, CASE WHEN a.d <= :max_m THEN round(a.d::numeric, 1) END,
       coalesce(CASE WHEN a.d <= :max_m THEN a.community_code END,
                (SELECT u.code FROM admin_unit u WHERE u.level = 'community' AND u.valid_to IS NULL
                 AND ST_Intersects(u.geom, p.geom) ORDER BY u.code LIMIT 1)),
       p.id, 'osm', p.geom, :by
FROM poi p
JOIN LATERAL (SELECT code, name, risk_level FROM key_place_category k WHERE k.active AND p.kind = ANY(k.osm_kinds)
              ORDER BY k.sort LIMIT 1) c ON TRUE
LEFT JOIN LATERAL (SELECT s.code, s.community_code, ST_Distance(s.geom::geography, p.geom::geography) AS d
                   FROM standard_address s WHERE s.valid_to IS NULL AND s.status = 'active'
                   AND s.level = ANY(:levels) AND s.geom IS NOT NULL
                   ORDER BY s.geom <-> p.geom LIMIT 1) a ON TRUE
ON CONFLICT (poi_id) WHERE poi_id IS NOT NULL DO NOTHING
RETURNING category
""")


def categories(conn: Connection) -> list[dict[str, Any]]:
    """The category table, in display order."""
    rows = conn.execute(text("SELECT code, name, risk_level, inspection_days, department, weight, osm_kinds, active "
                             "FROM key_place_category ORDER BY sort, code")).mappings()
    return [dict(r) for r in rows]


def _category(conn: Connection, code: str) -> dict[str, Any]:
    row = conn.execute(text("SELECT code, name, risk_level FROM key_place_category WHERE code = :c AND active"),
                       {"c": code}).mappings().first()
    if row is None:
        raise InvalidField("category", f"未知重点场所类别 {code}", f"unknown key-place category {code!r}")
    return dict(row)


def seed_from_pois(conn: Connection, changed_by: str, max_address_m: float = 150.0) -> dict[str, int]:
    """Key places from the OSM POIs whose kind a category lists (idempotent); counts added per category."""
    added: dict[str, int] = {}
    for (cat,) in conn.execute(_SEED, {"max_m": max_address_m, "levels": list(ADDRESS_LEVELS), "by": changed_by}):
        added[cat] = added.get(cat, 0) + 1
    return added


def _json(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["updated_at"] = out["updated_at"].isoformat() if out.get("updated_at") else None
    return out


def get(conn: Connection, place_id: int, lock: bool = False) -> dict[str, Any]:
    """One key place, else 404."""
    sql = f"SELECT {COLUMNS} FROM key_place WHERE id = :i" + (" FOR UPDATE" if lock else "")
    row = conn.execute(text(sql), {"i": place_id}).mappings().first()
    if row is None:
        raise NotFound(f"重点场所不存在 no key place {place_id}")
    return _json(row)


def list_places(conn: Connection, community: str | None = None, category: str | None = None,
                status: str | None = "active", limit: int = 500, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """Key places by filters, by id; (total, page)."""
    conds: list[str] = ["TRUE"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    for col, value in (("community_code", community), ("category", category), ("status", status)):
        if value:
            conds.append(f"{col} = :{col}")
            params[col] = value
    cond = " AND ".join(conds)
    total = conn.execute(text(f"SELECT count(*) FROM key_place WHERE {cond}"), params).scalar_one()
    rows = conn.execute(text(f"SELECT {COLUMNS} FROM key_place WHERE {cond} ORDER BY id LIMIT :limit OFFSET :offset"),
                        params).mappings()
    return int(total), [_json(r) for r in rows]


def counts(conn: Connection, by: str) -> list[dict[str, Any]]:
    """Active key places per grid (grid-level cells holding the point) or per community, by category."""
    if by == "community":
        sql = ("SELECT community_code AS code, category, count(*) AS n FROM key_place WHERE status = 'active' "
               "GROUP BY 1, 2 ORDER BY 1, 2")
    elif by == "grid":
        sql = ("SELECT g.code, k.category, count(*) AS n FROM key_place k JOIN grid g ON g.valid_to IS NULL "
               "AND g.level = 'grid' AND ST_Intersects(g.geom, k.geom) WHERE k.status = 'active' "
               "GROUP BY 1, 2 ORDER BY 1, 2")
    else:
        raise InvalidInput(f"统计单元应为 grid 或 community by must be grid or community, got {by!r}")
    out: dict[str | None, dict[str, Any]] = {}
    for code, cat, n in conn.execute(text(sql)):
        entry = out.setdefault(code, {"code": code, "total": 0, "by_category": {}})
        entry["by_category"][cat] = int(n)
        entry["total"] += int(n)
    return list(out.values())


def _address(conn: Connection, code: str) -> dict[str, Any]:
    row = conn.execute(text("SELECT code, level, status, community_code, geom IS NOT NULL AS placed "
                            "FROM standard_address WHERE code = :c AND valid_to IS NULL"), {"c": code}).mappings().first()
    if row is None:
        raise AddressNotFound(f"标准地址不存在 no standard address {code}", {"field": "address_code"})
    if row["status"] != "active" or not row["placed"] or row["level"] not in ADDRESS_LEVELS:
        raise AddressNotUsable(f"重点场所应登记在有效的门牌、楼栋或小区地址上 a key place needs an active house "
                               f"number, building or compound address ({code}: {row['level']}, {row['status']})",
                               {"field": "address_code"})
    return dict(row)


def _name(value: Any) -> str:
    name = (value or "").strip() if isinstance(value, str) else ""
    if not 1 <= len(name) <= 200:
        raise InvalidField("name", "名称应为 1–200 字", "a name of 1–200 characters")
    return name


def create(conn: Connection, data: dict[str, Any], changed_by: str) -> dict[str, Any]:
    """A key place at a standard address (its point is the address's); 404 / 422 for a bad address."""
    cat = _category(conn, data.get("category") or "")
    addr = _address(conn, data.get("address_code") or "")
    row = conn.execute(text(
        "INSERT INTO key_place (category, category_name, risk_level, name, address_code, address_distance_m, "
        "community_code, source, note, geom, changed_by) SELECT :cat, :cname, :risk, :name, a.code, 0, "
        "a.community_code, 'manual', :note, a.geom, :by FROM standard_address a WHERE a.code = :code "
        "AND a.valid_to IS NULL RETURNING id"),
        {"cat": cat["code"], "cname": cat["name"], "risk": cat["risk_level"], "name": _name(data.get("name")),
         "code": addr["code"], "note": data.get("note"), "by": changed_by}).scalar_one()
    return get(conn, int(row))


def update(conn: Connection, place_id: int, changes: dict[str, Any], changed_by: str) -> dict[str, Any]:
    """Correct a key place: name, category, status (active / closed), note, address (moves its point)."""
    get(conn, place_id, lock=True)
    sets: list[str] = ["changed_by = :by", "updated_at = now()"]
    params: dict[str, Any] = {"i": place_id, "by": changed_by}
    if "name" in changes:
        sets.append("name = :name")
        params["name"] = _name(changes["name"])
    if changes.get("category"):
        cat = _category(conn, changes["category"])
        sets += ["category = :cat", "category_name = :cname", "risk_level = :risk"]
        params |= {"cat": cat["code"], "cname": cat["name"], "risk": cat["risk_level"]}
    if "status" in changes:
        if changes["status"] not in STATUSES:
            raise InvalidField("status", "状态应为 active 或 closed", "status must be active or closed")
        sets.append("status = :status")
        params["status"] = changes["status"]
    if "note" in changes:
        sets.append("note = :note")
        params["note"] = changes["note"]
    if changes.get("address_code"):
        addr = _address(conn, changes["address_code"])
        sets += ["address_code = :code", "address_distance_m = 0", "community_code = :community",
                 "geom = (SELECT geom FROM standard_address WHERE code = :code AND valid_to IS NULL)"]
        params |= {"code": addr["code"], "community": addr["community_code"]}
    conn.execute(text(f"UPDATE key_place SET {', '.join(sets)} WHERE id = :i"), params)
    return get(conn, place_id)


def nearby(conn: Connection, lon: float, lat: float, radius_m: float = 300.0, limit: int = 8) -> list[dict[str, Any]]:
    """Active key places within ``radius_m`` of a point, nearest first (name, category, distance)."""
    rows = conn.execute(text(
        "SELECT id, name, category, category_name, round(ST_Distance(geom::geography, "
        "ST_SetSRID(ST_Point(:x, :y), 4326)::geography)::numeric) AS distance_m FROM key_place "
        "WHERE status = 'active' AND ST_DWithin(geom::geography, ST_SetSRID(ST_Point(:x, :y), 4326)::geography, :r) "
        "ORDER BY distance_m, id LIMIT :n"), {"x": lon, "y": lat, "r": radius_m, "n": limit}).mappings()
    return [{**dict(r), "distance_m": float(r["distance_m"])} for r in rows]
