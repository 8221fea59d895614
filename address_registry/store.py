"""SQL of the address registry (tables `standard_address`, `address_alias`). Bound parameters only.

Every function takes a SQLAlchemy connection that is already inside a transaction; the caller owns
the unit of work (`with engine.begin() as conn:`), so a failed step leaves nothing half-written.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from address_registry.build import (
    AddressPointIn,
    AdminUnit,
    BuildingIn,
    LanduseIn,
    PoiIn,
    RegistryPlan,
    RoadWay,
)
from address_registry.geocoder import AdminName
from address_registry.records import AddressRecord, AliasRecord, format_components

BUILD_USER = "shequ address build"

_COLUMNS = """id, code, version, level, parent_code, district_code, township_code, community_code,
    components, full_text, normalized_text, ST_X(geom) AS lon, ST_Y(geom) AS lat, building_id, source, status,
    valid_from, valid_to, changed_by, change_reason, related_codes, compound_code,
    CASE WHEN area IS NULL THEN NULL ELSE ST_AsBinary(area) END AS area_wkb"""


def _record(row) -> AddressRecord:
    m = row._mapping
    return AddressRecord(
        code=m["code"],
        level=m["level"],
        components=dict(m["components"]),
        lon=m["lon"],
        lat=m["lat"],
        parent_code=m["parent_code"],
        district_code=m["district_code"],
        township_code=m["township_code"],
        community_code=m["community_code"],
        building_id=m["building_id"],
        source=m["source"],
        compound_code=m["compound_code"],
        area=shapely.from_wkb(bytes(m["area_wkb"])) if m["area_wkb"] is not None else None,
        status=m["status"],
        version=m["version"],
        extra={
            "changed_by": m["changed_by"],
            "change_reason": m["change_reason"],
            "valid_from": m["valid_from"],
            "valid_to": m["valid_to"],
            "related_codes": list(m["related_codes"] or []),
            "id": m["id"],
        },
    )


def record_to_json(rec: AddressRecord) -> dict[str, Any]:
    extra = rec.extra or {}
    return {
        "address_code": rec.code,
        "version": rec.version,
        "level": rec.level,
        "parent_code": rec.parent_code,
        "formatted": format_components(rec.components),
        "components": rec.components,
        "normalized_text": rec.normalized,
        "lon": rec.lon,
        "lat": rec.lat,
        "district_code": rec.district_code,
        "township_code": rec.township_code,
        "community_code": rec.community_code,
        "compound_code": rec.compound_code,
        "building_id": rec.building_id,
        "source": rec.source,
        "status": rec.status,
        "valid_from": extra.get("valid_from").isoformat() if extra.get("valid_from") else None,
        "valid_to": extra.get("valid_to").isoformat() if extra.get("valid_to") else None,
        "changed_by": extra.get("changed_by"),
        "change_reason": extra.get("change_reason"),
        "related_codes": extra.get("related_codes", []),
    } | ({"area": shapely.geometry.mapping(rec.area)} if rec.area is not None else {})


# -- reading -------------------------------------------------------------------------------------


def current(conn: Connection, code: str, lock: bool = False) -> AddressRecord | None:
    sql = f"SELECT {_COLUMNS} FROM standard_address WHERE code = :code AND valid_to IS NULL"
    if lock:
        sql += " FOR UPDATE"
    row = conn.execute(text(sql), {"code": code}).first()
    return _record(row) if row else None


def history(conn: Connection, code: str) -> list[AddressRecord]:
    rows = conn.execute(
        text(f"SELECT {_COLUMNS} FROM standard_address WHERE code = :code ORDER BY version"), {"code": code}
    )
    return [_record(r) for r in rows]


def all_current(conn: Connection) -> list[AddressRecord]:
    rows = conn.execute(text(f"SELECT {_COLUMNS} FROM standard_address WHERE valid_to IS NULL ORDER BY code"))
    return [_record(r) for r in rows]


def search(
    conn: Connection,
    *,
    parent_code: str | None = None,
    level: str | None = None,
    status: str | None = "active",
    community_code: str | None = None,
    text_prefix: str | None = None,
    compound_code: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[AddressRecord]]:
    """Current addresses matching every given filter, by code; (total, page)."""
    where = ["valid_to IS NULL"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    for column, value in (
        ("parent_code", parent_code),
        ("level", level),
        ("status", status),
        ("community_code", community_code),
        ("compound_code", compound_code),
    ):
        if value is not None:
            where.append(f"{column} = :{column}")  # column names from this fixed list
            params[column] = value
    if text_prefix:
        where.append("normalized_text LIKE :prefix")
        params["prefix"] = text_prefix.replace("\\", "").replace("%", "").replace("_", "") + "%"
    cond = " AND ".join(where)
    total = conn.execute(text(f"SELECT count(*) FROM standard_address WHERE {cond}"), params).scalar_one()
    rows = conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM standard_address WHERE {cond} ORDER BY code LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    return int(total), [_record(r) for r in rows]


def active_children(conn: Connection, code: str) -> list[str]:
    rows = conn.execute(
        text("""SELECT code FROM standard_address
        WHERE parent_code = :code AND valid_to IS NULL AND status = 'active' ORDER BY code"""),
        {"code": code},
    )
    return [r[0] for r in rows]


def children_codes(conn: Connection, parent_code: str) -> list[str]:
    """Every code ever issued under a parent (any version, any status): serials are never reused."""
    rows = conn.execute(
        text("SELECT DISTINCT code FROM standard_address WHERE parent_code = :p"), {"p": parent_code}
    )
    return [r[0] for r in rows]


def active_code_with_text(conn: Connection, normalized: str) -> str | None:
    return conn.execute(
        text("""SELECT code FROM standard_address
        WHERE normalized_text = :t AND valid_to IS NULL AND status = 'active'"""),
        {"t": normalized},
    ).scalar()


def aliases_of(conn: Connection, code: str) -> list[dict]:
    rows = conn.execute(
        text("""SELECT alias, kind, source, valid_from FROM address_alias
        WHERE address_code = :c AND valid_to IS NULL ORDER BY id"""),
        {"c": code},
    )
    return [{"alias": r.alias, "kind": r.kind, "source": r.source} for r in rows]


def former_names(conn: Connection) -> dict[str, list[str]]:
    """address code → its current `former_name` aliases."""
    rows = conn.execute(
        text("""SELECT address_code, alias FROM address_alias
        WHERE valid_to IS NULL AND kind = 'former_name' ORDER BY id""")
    )
    out: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        out[r.address_code].append(r.alias)
    return dict(out)


def compound_members(conn: Connection, code: str, lock: bool = False) -> list[AddressRecord]:
    """Current active addresses inside a compound (its `compound_code`), the compound itself excluded."""
    sql = f"""SELECT {_COLUMNS} FROM standard_address WHERE compound_code = :c AND valid_to IS NULL
        AND status = 'active' AND level <> 'compound' ORDER BY code"""
    if lock:
        sql += " FOR UPDATE"
    return [_record(r) for r in conn.execute(text(sql), {"c": code})]


def current_aliases(conn: Connection) -> list[AliasRecord]:
    rows = conn.execute(
        text("""SELECT address_code, alias, kind, source FROM address_alias
        WHERE valid_to IS NULL ORDER BY id""")
    )
    return [AliasRecord(r.address_code, r.alias, r.kind, r.source) for r in rows]


def admin_unit(conn: Connection, code: str) -> dict | None:
    row = conn.execute(
        text(
            "SELECT code, name, level, parent_code, geom IS NOT NULL AS has_geom "
            "FROM admin_unit WHERE code = :c"
        ),
        {"c": code},
    ).first()
    return dict(row._mapping) if row else None


def districts_named(conn: Connection, name: str) -> list[str]:
    """Codes of the current districts with a boundary and this name (浦东新区 → ['310115'])."""
    return list(
        conn.execute(
            text("""SELECT code FROM admin_unit WHERE level = 'district' AND name = :n
        AND geom IS NOT NULL AND (valid_to IS NULL OR valid_to > now()) ORDER BY code"""),
            {"n": name},
        ).scalars()
    )


def admin_containing(conn: Connection, lon: float, lat: float) -> dict[str, dict]:
    """The district / township / community polygons containing a point, by level."""
    rows = conn.execute(
        text("""SELECT code, name, level, source FROM admin_unit
        WHERE level IN ('district', 'township', 'community') AND geom IS NOT NULL
          AND (valid_to IS NULL OR valid_to > now())
          AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
        ORDER BY length(code), code"""),
        {"lon": lon, "lat": lat},
    )
    out: dict[str, dict] = {}
    for r in rows:
        out.setdefault(r.level, {"code": r.code, "name": r.name, "source": r.source})
    return out


def compound_containing(conn: Connection, lon: float, lat: float) -> AddressRecord | None:
    """The active compound (小区) whose polygon holds the point (the smallest one when they overlap)."""
    row = conn.execute(
        text(f"""SELECT {_COLUMNS} FROM standard_address
        WHERE valid_to IS NULL AND status = 'active' AND level = 'compound' AND area IS NOT NULL
          AND ST_Intersects(area, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
        ORDER BY ST_Area(area), code LIMIT 1"""),
        {"lon": lon, "lat": lat},
    ).first()
    return _record(row) if row else None


def point_in_admin(conn: Connection, code: str, lon: float, lat: float) -> bool | None:
    """Whether the admin unit's polygon holds the point (None when it has no polygon)."""
    return conn.execute(
        text("""SELECT CASE WHEN geom IS NULL THEN NULL
            ELSE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) END
        FROM admin_unit WHERE code = :c"""),
        {"c": code, "lon": lon, "lat": lat},
    ).scalar()


def has_admin_level(conn: Connection, level: str, within_district: str | None = None) -> bool:
    sql = "SELECT EXISTS (SELECT 1 FROM admin_unit WHERE level = :lv AND geom IS NOT NULL"
    params: dict[str, Any] = {"lv": level}
    if within_district:
        sql += " AND code LIKE :pfx"
        params["pfx"] = within_district + "%"
    return bool(conn.execute(text(sql + ")"), params).scalar())


def nearest(conn: Connection, lon: float, lat: float, k: int = 1) -> list[tuple[AddressRecord, float]]:
    """Nearest active house numbers and buildings (KNN on the GiST index, then exact metres on the
    spheroid; a house number before a building at the same spot). Units, floors and rooms share their
    building's point and are homes: reverse geocoding stops at the building."""
    rows = conn.execute(
        text(f"""
        SELECT * FROM (
            SELECT {_COLUMNS},
                   ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS distance_m
            FROM (SELECT * FROM standard_address
                  WHERE valid_to IS NULL AND status = 'active' AND geom IS NOT NULL
                    AND level IN ('house_number', 'building')
                  ORDER BY geom <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) LIMIT :kk) s) d
        ORDER BY round(distance_m::numeric, 2), CASE level WHEN 'house_number' THEN 0 ELSE 1 END, code
        LIMIT :k"""),
        {"lon": lon, "lat": lat, "k": k, "kk": max(k * 8, 16)},
    )
    return [(_record(r), float(r.distance_m)) for r in rows]


def grid_containing(conn: Connection, lon: float, lat: float) -> dict | None:
    """The grid cell holding the point, when the grids feature's `grid` table exists."""
    exists = conn.execute(text("SELECT to_regclass('public.grid') IS NOT NULL")).scalar()
    if not exists:
        return None
    cols = {
        r[0]
        for r in conn.execute(
            text("""SELECT column_name FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = 'grid'""")
        )
    }
    if not {"code", "geom"} <= cols:
        return None
    name_col = "name" if "name" in cols else "code"
    level_col = "level" if "level" in cols else "'grid'"
    current = "AND valid_to IS NULL" if "valid_to" in cols else ""
    # column names come from the catalogue check above, never from the request
    rows = conn.execute(
        text(f"""SELECT code, {name_col} AS name, {level_col} AS level FROM grid
        WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) {current}
        ORDER BY code"""),
        {"lon": lon, "lat": lat},
    ).all()
    if not rows:
        return None
    by_level = {}
    for r in rows:
        by_level.setdefault(r.level, {"code": r.code, "name": r.name})
    grid = by_level.get("grid") or next(iter(by_level.values()))
    if "microgrid" in by_level and by_level["microgrid"] is not grid:
        grid = {**grid, "microgrid": by_level["microgrid"]}
    return grid


def stamp(conn: Connection) -> tuple[int, int]:
    """Changes whenever the registry changes (every change inserts a row)."""
    row = conn.execute(
        text("""SELECT (SELECT coalesce(max(id), 0) FROM standard_address),
        (SELECT coalesce(max(id), 0) + coalesce(count(*) FILTER (WHERE valid_to IS NOT NULL), 0) FROM address_alias)""")
    ).first()
    return int(row[0]), int(row[1])


# -- writing -------------------------------------------------------------------------------------

_INSERT = text("""
    INSERT INTO standard_address (code, version, level, parent_code, district_code, township_code,
        community_code, components, full_text, normalized_text, geom, building_id, source, status,
        changed_by, change_reason, related_codes, compound_code, area)
    VALUES (:code, :version, :level, :parent_code, :district_code, :township_code, :community_code,
        CAST(:components AS jsonb), :full_text, :normalized_text,
        CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
             ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END,
        :building_id, :source, :status, :changed_by, :change_reason, :related_codes, :compound_code,
        ST_Multi(ST_GeomFromWKB(CAST(:area_wkb AS bytea), 4326)))""")


def _params(rec: AddressRecord, changed_by: str, reason: str, related: list[str] | None = None) -> dict:
    return {
        "code": rec.code,
        "version": rec.version,
        "level": rec.level,
        "parent_code": rec.parent_code,
        "district_code": rec.district_code,
        "township_code": rec.township_code,
        "community_code": rec.community_code,
        "components": json.dumps(rec.components, ensure_ascii=False),
        "full_text": rec.formatted,
        "normalized_text": rec.normalized,
        "lon": rec.lon,
        "lat": rec.lat,
        "building_id": rec.building_id,
        "source": rec.source,
        "status": rec.status,
        "changed_by": changed_by,
        "change_reason": reason,
        "related_codes": list(related if related is not None else (rec.extra or {}).get("related_codes", [])),
        "compound_code": rec.compound_code,
        "area_wkb": shapely.to_wkb(rec.area) if rec.area is not None else None,
    }


def insert_version(
    conn: Connection, rec: AddressRecord, changed_by: str, reason: str, related: list[str] | None = None
) -> None:
    conn.execute(_INSERT, _params(rec, changed_by, reason, related))


def close_current(conn: Connection, code: str) -> None:
    conn.execute(
        text("UPDATE standard_address SET valid_to = now() WHERE code = :c AND valid_to IS NULL"), {"c": code}
    )


def replace_versions(conn: Connection, recs: list[AddressRecord], changed_by: str, reason: str) -> None:
    """Close the current versions of these addresses and insert the given ones (bulk)."""
    if not recs:
        return
    conn.execute(
        text("UPDATE standard_address SET valid_to = now() WHERE code = ANY(:codes) AND valid_to IS NULL"),
        {"codes": [r.code for r in recs]},
    )
    conn.execute(_INSERT, [_params(r, changed_by, reason) for r in recs])


def close_aliases(conn: Connection, code: str, normalized: list[str]) -> int:
    """End the current aliases of an address with these normalised texts (kept as history)."""
    return conn.execute(
        text("""UPDATE address_alias SET valid_to = now()
        WHERE address_code = :c AND valid_to IS NULL AND normalized_alias = ANY(:n)"""),
        {"c": code, "n": list(normalized)},
    ).rowcount


def add_alias(conn: Connection, alias: AliasRecord, changed_by: str) -> bool:
    from address_registry.textnorm import normalize_text

    res = conn.execute(
        text("""
        INSERT INTO address_alias (address_code, alias, normalized_alias, kind, source, changed_by)
        VALUES (:code, :alias, :norm, :kind, :source, :by)
        ON CONFLICT (address_code, normalized_alias) WHERE valid_to IS NULL DO NOTHING"""),
        {
            "code": alias.address_code,
            "alias": alias.alias,
            "norm": normalize_text(alias.alias),
            "kind": alias.kind,
            "source": alias.source,
            "by": changed_by,
        },
    )
    return res.rowcount > 0


def _same(a: AddressRecord, b: AddressRecord) -> bool:
    def pt(r):
        return None if r.lon is None else (round(r.lon, 7), round(r.lat, 7))

    def area(r):
        return None if r.area is None else shapely.normalize(shapely.set_precision(r.area, 1e-7)).wkb

    return (
        a.level,
        a.parent_code,
        a.district_code,
        a.township_code,
        a.community_code,
        a.compound_code,
        a.components,
        a.building_id,
        a.source,
        pt(a),
        area(a),
    ) == (
        b.level,
        b.parent_code,
        b.district_code,
        b.township_code,
        b.community_code,
        b.compound_code,
        b.components,
        b.building_id,
        b.source,
        pt(b),
        area(b),
    )


def apply_plan(conn: Connection, plan: RegistryPlan, progress=None) -> dict[str, int]:
    """Write the planned registry: new addresses, new versions where the data changed, new aliases.

    Rows last written by a person (changed_by other than the build) and retired rows are left alone.
    """
    existing = {r.code: r for r in all_current(conn)}
    active_text = {r.normalized: r.code for r in existing.values() if r.status == "active"}
    counts: dict[str, int] = defaultdict(int)
    inserts = []
    closes = []
    for rec in plan.records:
        if progress:
            progress(1)
        old = existing.get(rec.code)
        owner = active_text.get(rec.normalized)
        if owner is not None and owner != rec.code:
            counts["skipped_duplicate_text"] += 1
            continue
        if old is None:
            rec.version = 1
            inserts.append(_params(rec, BUILD_USER, "初始建库 initial build from OSM data"))
            counts["created"] += 1
        elif old.status != "active" or old.extra.get("changed_by") != BUILD_USER:
            counts["kept_manual_or_retired"] += 1
        elif _same(old, rec):
            counts["unchanged"] += 1
        else:
            rec.version = old.version + 1
            closes.append({"c": rec.code})
            inserts.append(
                _params(
                    rec,
                    BUILD_USER,
                    "重新建库：源数据或上级区划变化 rebuild: source data or admin boundaries changed",
                )
            )
            counts["updated"] += 1
        active_text[rec.normalized] = rec.code
    if closes:
        conn.execute(
            text("UPDATE standard_address SET valid_to = now() WHERE code = :c AND valid_to IS NULL"), closes
        )
    if inserts:
        conn.execute(_INSERT, inserts)
    known = {(r.code) for r in plan.records} | set(existing)
    alias_rows = [a for a in plan.aliases if a.address_code in known]
    for a in alias_rows:
        if add_alias(conn, a, BUILD_USER):
            counts["aliases_created"] += 1
    return dict(counts)


# -- loading inputs ------------------------------------------------------------------------------


def load_build_inputs(conn: Connection) -> dict[str, Any]:
    """Everything `build.plan_registry` needs, from the base tables."""
    admins = conn.execute(
        text("""SELECT code, name, level, parent_code, ST_AsBinary(geom) AS wkb
        FROM admin_unit WHERE valid_to IS NULL OR valid_to > now()""")
    ).all()
    by_level: dict[str, list[AdminUnit]] = defaultdict(list)
    names: dict[str, str] = {}
    for r in admins:
        names[r.code] = r.name
        geom = shapely.from_wkb(r.wkb) if r.wkb is not None else None
        by_level[r.level].append(AdminUnit(r.code, r.name, r.level, geom, r.parent_code))
    roads = [
        RoadWay(r.osm_id, r.name, shapely.from_wkb(r.wkb), r.kind, dict(r.tags or {}))
        for r in conn.execute(
            text("""SELECT osm_id, name, kind, tags, ST_AsBinary(geom) AS wkb
                 FROM road WHERE name IS NOT NULL ORDER BY osm_id""")
        )
    ]
    buildings = [
        BuildingIn(
            r.id,
            shapely.from_wkb(r.wkb),
            r.osm_id,
            r.name,
            r.kind_detail,
            r.addr_street,
            r.addr_housenumber,
            r.floors,
            r.households_est,
        )
        for r in conn.execute(
            text("""SELECT id, osm_id, name, kind_detail, addr_street,
                     addr_housenumber, floors, households_est, ST_AsBinary(geom) AS wkb FROM building ORDER BY id""")
        )
    ]
    points = [
        AddressPointIn(shapely.from_wkb(r.wkb), r.osm_id, r.kind, r.name, r.addr_street, r.addr_housenumber)
        for r in conn.execute(
            text("""SELECT osm_id, kind, name, addr_street, addr_housenumber,
                  ST_AsBinary(geom) AS wkb FROM demo_address_point ORDER BY id""")
        )
    ]
    landuse = [
        LanduseIn(
            r.osm_id,
            r.kind,
            r.name,
            shapely.from_wkb(r.wkb),
            shapely.from_wkb(r.label_wkb) if r.label_wkb is not None else None,
        )
        for r in conn.execute(
            text("""SELECT osm_id, kind, name, ST_AsBinary(geom) AS wkb,
                   CASE WHEN label IS NULL THEN NULL ELSE ST_AsBinary(label) END AS label_wkb
                   FROM landuse WHERE name IS NOT NULL ORDER BY osm_id""")
        )
    ]
    pois = [
        PoiIn(r.name, shapely.from_wkb(r.wkb), r.kind)
        for r in conn.execute(
            text("""SELECT name, kind, ST_AsBinary(geom) AS wkb FROM poi
                WHERE name IS NOT NULL ORDER BY id""")
        )
    ]
    return {
        "districts": [d for d in by_level["district"] if d.geom is not None],
        "townships": [d for d in by_level["township"] if d.geom is not None],
        "communities": [d for d in by_level["community"] if d.geom is not None],
        "roads": roads,
        "buildings": buildings,
        "address_points": points,
        "pois": pois,
        "admin_names": names,
        "landuse": landuse,
    }


def load_geocoder_inputs(conn: Connection) -> dict[str, Any]:
    """Active addresses, aliases, road lines by name and nameable admin units for `Geocoder`."""
    from address_registry.build import clean_road_name

    records = [r for r in all_current(conn) if r.status == "active"]
    aliases = current_aliases(conn)
    road_names = {r.components.get("road") for r in records if r.level == "road"}
    lines: dict[str, list] = defaultdict(list)
    for r in conn.execute(text("SELECT name, ST_AsBinary(geom) AS wkb FROM road WHERE name IS NOT NULL")):
        name = clean_road_name(r.name)
        if name in road_names:
            lines[name].append(shapely.from_wkb(r.wkb))
    admins = [
        AdminName(r.code, r.name, r.level, r.lon, r.lat, r.parent_code)
        for r in conn.execute(
            text("""SELECT code, name, level, parent_code,
                  ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
                  FROM admin_unit WHERE level IN ('district', 'township', 'community') AND geom IS NOT NULL
                    AND (valid_to IS NULL OR valid_to > now())""")
        )
    ]
    return {"records": records, "aliases": aliases, "road_lines": dict(lines), "admin_units": admins}


# -- compounds registered through the API ----------------------------------------------------------

_G = "ST_SetSRID(ST_GeomFromWKB(CAST(:g AS bytea)), 4326)"


def lock_serials(conn: Connection, parent_code: str) -> None:
    """Serialise code allocation under one parent until the transaction ends (concurrent creates)."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('standard_address:' || :p))"), {"p": parent_code}
    )


def admin_shares(conn: Connection, geom, level: str, within: str | None = None) -> list[dict]:
    """Current admin units of `level` meeting the polygon, with the share of its area they hold
    (largest first); `within` limits them to codes starting with it."""
    rows = conn.execute(
        text(f"""WITH g AS (SELECT {_G} AS g)
        SELECT a.code, a.name, a.parent_code,
               ST_Area(ST_Intersection(a.geom, g.g)) / NULLIF(ST_Area(g.g), 0) AS share
        FROM admin_unit a, g
        WHERE a.level = :lv AND a.geom IS NOT NULL AND (a.valid_to IS NULL OR a.valid_to > now())
          AND a.code LIKE :pfx AND ST_Intersects(a.geom, g.g)
        ORDER BY share DESC NULLS LAST, a.code"""),
        {"g": shapely.to_wkb(geom), "lv": level, "pfx": (within or "") + "%"},
    )
    return [dict(r._mapping) | {"share": float(r.share or 0.0)} for r in rows]


def compound_overlaps(conn: Connection, geom, exclude_code: str | None = None) -> list[dict]:
    """Active compounds meeting the polygon: code, name and the overlap as a share of the smaller one."""
    rows = conn.execute(
        text(f"""WITH g AS (SELECT {_G} AS g)
        SELECT s.code, s.components->>'compound' AS name,
               ST_Area(ST_Intersection(s.area, g.g)) / NULLIF(LEAST(ST_Area(s.area), ST_Area(g.g)), 0) AS share
        FROM standard_address s, g
        WHERE s.valid_to IS NULL AND s.status = 'active' AND s.level = 'compound' AND s.area IS NOT NULL
          AND s.code IS DISTINCT FROM :ex AND ST_Intersects(s.area, g.g)
        ORDER BY share DESC NULLS LAST, s.code"""),
        {"g": shapely.to_wkb(geom), "ex": exclude_code},
    )
    return [dict(r._mapping) | {"share": float(r.share or 0.0)} for r in rows]


def compound_with_name(
    conn: Connection, district_code: str, full: list[str], names: list[str], exclude_code: str | None = None
) -> str | None:
    """An active compound of the district whose normalised full text is one of `full`, or with a name
    alias (`compound`, `variant`) whose normalised text is one of `names`."""
    return conn.execute(
        text("""SELECT s.code FROM standard_address s
        WHERE s.valid_to IS NULL AND s.status = 'active' AND s.level = 'compound'
          AND s.district_code = :d AND s.code IS DISTINCT FROM :ex
          AND (s.normalized_text = ANY(:full)
               OR EXISTS (SELECT 1 FROM address_alias a WHERE a.address_code = s.code AND a.valid_to IS NULL
                          AND a.kind IN ('compound', 'variant') AND a.normalized_alias = ANY(:n)))
        ORDER BY s.code LIMIT 1"""),
        {"d": district_code, "full": list(full), "n": list(names), "ex": exclude_code},
    ).scalar()


def membership_candidates(conn: Connection, geom, compound_code: str | None = None) -> list[AddressRecord]:
    """Active current addresses that may lie in a compound with this polygon (locked for update): those
    linked to a building meeting it, those without a building whose point lies in it, and the
    compound's current members."""
    rows = conn.execute(
        text(f"""WITH g AS (SELECT {_G} AS g)
        SELECT {_COLUMNS} FROM standard_address s
        WHERE s.valid_to IS NULL AND s.status = 'active' AND s.level NOT IN ('road', 'compound')
          AND (s.building_id IN (SELECT b.id FROM building b, g WHERE ST_Intersects(b.geom, g.g))
               OR (s.building_id IS NULL AND ST_Intersects(s.geom, (SELECT g FROM g)))
               OR s.compound_code = :c)
        ORDER BY s.code FOR UPDATE OF s"""),
        {"g": shapely.to_wkb(geom), "c": compound_code},
    )
    return [_record(r) for r in rows]


def buildings_by_id(conn: Connection, ids: list[int]) -> list[BuildingIn]:
    rows = conn.execute(
        text("SELECT id, ST_AsBinary(geom) AS wkb FROM building WHERE id = ANY(:ids) ORDER BY id"),
        {"ids": sorted(set(ids))},
    )
    return [BuildingIn(r.id, shapely.from_wkb(r.wkb)) for r in rows if r.wkb is not None]


def compounds_meeting(conn: Connection, geom) -> list[AddressRecord]:
    """Active current compounds whose polygon meets the geometry."""
    rows = conn.execute(
        text(f"""SELECT {_COLUMNS} FROM standard_address
        WHERE valid_to IS NULL AND status = 'active' AND level = 'compound' AND area IS NOT NULL
          AND ST_Intersects(area, {_G}) ORDER BY code"""),
        {"g": shapely.to_wkb(geom)},
    )
    return [_record(r) for r in rows]
