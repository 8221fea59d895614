"""Reads of the registry: current and past versions, search, children, aliases, admin units, stamp."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from address_registry.records import AddressRecord, AliasRecord
from address_registry.store.rows import _COLUMNS, _record


def current(conn: Connection, code: str, lock: bool = False) -> AddressRecord | None:
    """The current version of an address (optionally locked FOR UPDATE), or None."""
    sql = f"SELECT {_COLUMNS} FROM standard_address WHERE code = :code AND valid_to IS NULL"
    if lock:
        sql += " FOR UPDATE"
    row = conn.execute(text(sql), {"code": code}).first()
    return _record(row) if row else None


def history(conn: Connection, code: str) -> list[AddressRecord]:
    """Every version of an address, oldest first."""
    rows = conn.execute(
        text(f"SELECT {_COLUMNS} FROM standard_address WHERE code = :code ORDER BY version"), {"code": code}
    )
    return [_record(r) for r in rows]


def all_current(conn: Connection) -> list[AddressRecord]:
    """The current version of every address."""
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
    levels: tuple[str, ...] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[AddressRecord]]:
    """Current addresses matching every given filter (``levels``: only these levels), by code; (total, page)."""
    where = ["valid_to IS NULL"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if levels is not None:
        where.append("level = ANY(:levels)")
        params["levels"] = list(levels)
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
    """Codes of the active children of an address."""
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
    """The code of the active address with this normalised text, or None."""
    return conn.execute(
        text("""SELECT code FROM standard_address
        WHERE normalized_text = :t AND valid_to IS NULL AND status = 'active'"""),
        {"t": normalized},
    ).scalar()


def aliases_of(conn: Connection, code: str) -> list[dict]:
    """The current aliases of an address as JSON."""
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
    """Every current alias."""
    rows = conn.execute(
        text("""SELECT address_code, alias, kind, source FROM address_alias
        WHERE valid_to IS NULL ORDER BY id""")
    )
    return [AliasRecord(r.address_code, r.alias, r.kind, r.source) for r in rows]


def admin_unit(conn: Connection, code: str) -> dict | None:
    """An admin unit by code (code, name, level, parent_code, has_geom), or None."""
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
    """Whether admin units of ``level`` with polygons exist (optionally within a district)."""
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


def footprint_address(
    conn: Connection, lon: float, lat: float, max_m: float = 5.0
) -> tuple[AddressRecord, float, float] | None:
    """The address of the building footprint holding the point, else of the nearest footprint within
    ``max_m`` metres: (record, metres from the footprint, metres from the footprint's point to its
    farthest corner). The house number before its building record on the same footprint."""
    row = conn.execute(
        text(f"""
        SELECT {_COLUMNS}, distance_m, extent_m FROM (
            SELECT s.*, ST_Distance(b.geom::geography, p.pt::geography) AS distance_m,
                   ST_MaxDistance(ST_Transform(s.geom, 32651), ST_Transform(b.geom, 32651)) AS extent_m
            FROM (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS pt) p
            JOIN building b ON ST_DWithin(b.geom, p.pt, 0.0002)
            JOIN standard_address s ON s.building_id = b.id AND s.valid_to IS NULL AND s.status = 'active'
             AND s.level IN ('house_number', 'building') AND s.geom IS NOT NULL) d
        WHERE distance_m <= :max_m
        ORDER BY round(distance_m::numeric, 1), CASE level WHEN 'house_number' THEN 0 ELSE 1 END, code
        LIMIT 1"""),
        {"lon": lon, "lat": lat, "max_m": max_m},
    ).first()
    if row is None:
        return None
    return _record(row), float(row.distance_m), float(row.extent_m)


def grid_containing(conn: Connection, lon: float, lat: float) -> dict | None:
    """The grid cell holding the point, when the grids feature's `grid` table exists."""
    # one catalogue read (pg_attribute by the table's oid; NULL when there is no such table) instead of
    # to_regclass + information_schema.columns, whose privilege checks over every column of the database
    # made this the slowest of the reverse route's reads (issue 14, docs/scaling.md section 6)
    cols = set(conn.execute(text("""SELECT array_agg(attname::text) FROM pg_attribute
        WHERE attrelid = to_regclass('public.grid') AND attnum > 0 AND NOT attisdropped""")).scalar() or ())
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
    by_level: dict[str, dict[str, Any]] = {}
    for r in rows:
        by_level.setdefault(r.level, {"code": r.code, "name": r.name})
    grid = by_level.get("grid") or next(iter(by_level.values()))
    if "microgrid" in by_level and by_level["microgrid"] is not grid:
        grid = {**grid, "microgrid": by_level["microgrid"]}
    return grid


def stamp(conn: Connection) -> tuple[int, int, int]:
    """Changes whenever the registry changes (every change inserts a row): (last row id, alias stamp, rows).

    The row count catches a row committed after a later one (a longer transaction took its id first),
    which the last id alone would miss (address_registry.geocoder_cache applies deltas by id). It is read
    from the counter the table's triggers keep (migration 0017_scale_row_counter): 16 small rows instead of
    a count(*) over the table (295 ms at 10⁶ rows)."""
    row = conn.execute(
        text("""SELECT (SELECT coalesce(max(id), 0) FROM standard_address),
        (SELECT coalesce(max(id), 0) + coalesce(count(*) FILTER (WHERE valid_to IS NOT NULL), 0) FROM address_alias),
        (SELECT coalesce(sum(n), 0) FROM standard_address_rows)""")
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def changes_since(conn: Connection, after_id: int) -> tuple[list[AddressRecord], list[str], int]:
    """What changed after row ``after_id``: the current version of every address with a newer row (active or
    retired), the codes with a newer row and no current version, and how many rows are newer."""
    rows = conn.execute(
        text(f"""WITH changed AS (SELECT DISTINCT code FROM standard_address WHERE id > :after)
        SELECT {_COLUMNS} FROM standard_address JOIN changed USING (code)
        WHERE valid_to IS NULL ORDER BY code"""),
        {"after": after_id},
    )
    records = [_record(r) for r in rows]
    found = {r.code for r in records}
    newer = conn.execute(
        text("SELECT code FROM standard_address WHERE id > :after"), {"after": after_id}
    ).scalars().all()
    return records, sorted(set(newer) - found), len(newer)
