"""SQL of the grid builder (SQLAlchemy Core ``text()`` with bound parameters only).

Reads the base layers into plain records for the pure core, and writes provisional townships and
communities (admin_unit), grids / micro-grids (versioned), street blocks, building assignments and H3
cells. Every write function expects a connection inside a transaction owned by the caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import shapely
from shapely import wkb as shp_wkb
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.engine import Connection

from grid_builder.geom import as_multipolygon
from grid_builder.pipeline import BuildingRec, RoadIn


def _geom(raw) -> BaseGeometry | None:
    if raw is None:
        return None
    return shp_wkb.loads(bytes(raw))


def _wkb(geom: BaseGeometry) -> bytes:
    return shapely.to_wkb(geom, include_srid=False)


def has_table(conn: Connection, table: str) -> bool:
    return conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}).scalar_one()


def has_column(conn: Connection, table: str, column: str) -> bool:
    return conn.execute(
        text(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = :t AND column_name = :c)"
        ),
        {"t": table, "c": column},
    ).scalar_one()


# -- reading base layers --------------------------------------------------------------------------


def building_extent(conn: Connection) -> tuple[float, float, float, float] | None:
    row = conn.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM building) s"
        )
    ).one()
    return None if row[0] is None else tuple(float(v) for v in row)


def districts_with_buildings(conn: Connection) -> list[str]:
    """Districts (with a boundary) that contain at least one building anchor (ST_PointOnSurface)."""
    return (
        conn.execute(
            text(
                "SELECT a.code FROM admin_unit a WHERE a.level = 'district' AND a.geom IS NOT NULL AND a.valid_to IS NULL "
                "AND EXISTS (SELECT 1 FROM building b WHERE b.geom && a.geom "
                "AND ST_Contains(a.geom, ST_PointOnSurface(b.geom))) ORDER BY a.code"
            )
        )
        .scalars()
        .all()
    )


def admin_unit(conn: Connection, code: str) -> dict | None:
    row = (
        conn.execute(
            text(
                "SELECT code, name, level, parent_code, source, properties, valid_to, ST_AsBinary(geom) AS g "
                "FROM admin_unit WHERE code = :code"
            ),
            {"code": code},
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return {
        **{k: row[k] for k in ("code", "name", "level", "parent_code", "source", "properties", "valid_to")},
        "geom": _geom(row["g"]),
    }


def admin_units(conn: Connection, level: str, parent: str | None = None) -> list[dict]:
    rows = conn.execute(
        text(
            "SELECT code, name, level, parent_code, source, properties, ST_AsBinary(geom) AS g FROM admin_unit "
            "WHERE level = :level AND (CAST(:parent AS text) IS NULL OR parent_code = :parent) "
            "AND geom IS NOT NULL AND valid_to IS NULL ORDER BY code"
        ),
        {"level": level, "parent": parent},
    ).mappings()
    return [
        {
            **{k: r[k] for k in ("code", "name", "level", "parent_code", "source", "properties")},
            "geom": _geom(r["g"]),
        }
        for r in rows
    ]


def roads_in(conn: Connection, area: BaseGeometry) -> list[RoadIn]:
    rows = conn.execute(
        text(
            "SELECT kind, name, tags, ST_AsBinary(geom) AS g FROM road "
            "WHERE geom && ST_GeomFromWKB(:a, 4326) AND ST_Intersects(geom, ST_GeomFromWKB(:a, 4326))"
        ),
        {"a": _wkb(area)},
    ).mappings()
    return [RoadIn(kind=r["kind"], geom=_geom(r["g"]), name=r["name"], tags=r["tags"] or {}) for r in rows]


def rails_in(conn: Connection, area: BaseGeometry) -> list[tuple[str | None, BaseGeometry]]:
    rows = conn.execute(
        text(
            "SELECT kind, ST_AsBinary(geom) AS g FROM railway WHERE ST_Intersects(geom, ST_GeomFromWKB(:a, 4326))"
        ),
        {"a": _wkb(area)},
    ).all()
    out = []
    for kind, g in rows:
        out.extend((kind, ln) for ln in shapely.get_parts(_geom(g)))
    return out


def water_in(conn: Connection, area: BaseGeometry) -> list[BaseGeometry]:
    rows = conn.execute(
        text("SELECT ST_AsBinary(geom) FROM water WHERE ST_Intersects(geom, ST_GeomFromWKB(:a, 4326))"),
        {"a": _wkb(area)},
    ).scalars()
    return [_geom(g) for g in rows]


def household_source(conn: Connection) -> str:
    """'standard_address' when the address registry carries household counts, else 'households_est'."""
    if has_table(conn, "standard_address") and has_column(conn, "standard_address", "households"):
        return "standard_address"
    return "households_est"


def buildings_in(conn: Connection, area: BaseGeometry | None = None) -> list[BuildingRec]:
    """Buildings whose anchor point (ST_PointOnSurface) lies in ``area`` (all when None), with households:
    the address registry's counts where it has some for the building, else ``households_est``."""
    src = household_source(conn)
    hh_expr = "b.households_est"
    join = ""
    if src == "standard_address":
        join = (
            "LEFT JOIN (SELECT building_id, sum(households) AS hh FROM standard_address "
            "WHERE valid_to IS NULL AND status = 'active' AND building_id IS NOT NULL GROUP BY building_id) sa "
            "ON sa.building_id = b.id"
        )
        hh_expr = "COALESCE(sa.hh, b.households_est)"
    where = ""
    params: dict = {}
    if area is not None:
        where = "WHERE ST_Intersects(ST_PointOnSurface(b.geom), ST_GeomFromWKB(:a, 4326))"
        params["a"] = _wkb(area)
    sql = (
        f"SELECT b.id, {hh_expr} AS hh, ST_AsBinary(b.geom) AS g FROM building b {join} {where} ORDER BY b.id"
    )
    rows = conn.execute(text(sql), params).all()  # fragments above are constants, values are bound
    return [BuildingRec(int(i), _geom(g), int(round(float(h or 0)))) for i, h, g in rows]


# -- provisional townships / communities ----------------------------------------------------------


def replace_provisional_units(conn: Connection, district_codes: list[str], units: list) -> dict:
    """Swap the provisional townships/communities of these districts for ``units`` (one transaction,
    the caller's). Grids of communities that no longer exist are closed with them."""
    old = (
        conn.execute(
            text(
                "SELECT code FROM admin_unit WHERE source = 'provisional' AND level IN ('township','community') "
                "AND valid_to IS NULL AND left(code, 6) = ANY(:d)"
            ),
            {"d": district_codes},
        )
        .scalars()
        .all()
    )
    new_codes = {u.code for u in units}
    gone = [c for c in old if c not in new_codes]
    conn.execute(text("SET CONSTRAINTS ALL DEFERRED"))
    if gone:
        conn.execute(
            text("UPDATE grid SET valid_to = now() WHERE community_code = ANY(:c) AND valid_to IS NULL"),
            {"c": gone},
        )
        conn.execute(text("DELETE FROM grid_assignment WHERE community_code = ANY(:c)"), {"c": gone})
        conn.execute(text("DELETE FROM street_block WHERE community_code = ANY(:c)"), {"c": gone})
        conn.execute(text("DELETE FROM admin_unit WHERE code = ANY(:c)"), {"c": gone})
    for u in sorted(units, key=lambda x: len(x.code)):
        conn.execute(
            text(
                "INSERT INTO admin_unit (code, name, level, parent_code, source, properties, geom) "
                "VALUES (:code, :name, :level, :parent, 'provisional', CAST(:props AS jsonb), "
                "ST_Multi(ST_GeomFromWKB(:g, 4326))) "
                "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level, "
                "parent_code = EXCLUDED.parent_code, source = EXCLUDED.source, properties = EXCLUDED.properties, "
                "geom = EXCLUDED.geom, valid_to = NULL WHERE admin_unit.valid_to IS NULL"
            ),  # retired stay retired
            {
                "code": u.code,
                "name": u.name,
                "level": u.level,
                "parent": u.parent_code,
                "props": json.dumps(
                    {"households": round(u.households), "flags": u.flags}, ensure_ascii=False
                ),
                "g": _wkb(u.geom),
            },
        )
    return {"removed": len(gone), "written": len(units)}


def upsert_admin_unit(
    conn: Connection,
    code: str,
    name: str,
    level: str,
    parent_code: str | None,
    geom: BaseGeometry,
    source: str,
    properties: dict,
) -> None:
    conn.execute(text("SET CONSTRAINTS ALL DEFERRED"))
    conn.execute(
        text(
            "INSERT INTO admin_unit (code, name, level, parent_code, source, properties, geom) "
            "VALUES (:code, :name, :level, :parent, :source, CAST(:props AS jsonb), ST_Multi(ST_GeomFromWKB(:g, 4326))) "
            "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level, "
            "parent_code = EXCLUDED.parent_code, source = EXCLUDED.source, properties = EXCLUDED.properties, "
            "geom = EXCLUDED.geom, valid_to = NULL"
        ),
        {
            "code": code,
            "name": name,
            "level": level,
            "parent": parent_code,
            "source": source,
            "props": json.dumps(properties, ensure_ascii=False),
            "g": _wkb(as_multipolygon(geom)),
        },
    )


# -- retiring provisional units that a city's own boundaries replace -------------------------------


def provisional_coverage(conn: Connection, level: str) -> list[dict]:
    """Active provisional units of ``level`` that meet active imported units of the same level: the share
    of each one's area (geography m²) covered by the union of the imported units, and which imported
    units cover more than 1 m² of it (largest first)."""
    rows = conn.execute(
        text(
            "WITH imp AS (SELECT code, geom FROM admin_unit WHERE level = :lvl AND source = 'import' "
            "  AND valid_to IS NULL AND geom IS NOT NULL), "
            "u AS (SELECT ST_Union(geom) AS g FROM imp), "
            "p AS (SELECT a.code, a.name, a.geom, ST_Area(a.geom::geography) AS area FROM admin_unit a, u "
            "  WHERE a.level = :lvl AND a.source = 'provisional' AND a.valid_to IS NULL AND a.geom IS NOT NULL "
            "  AND a.geom && u.g) "
            "SELECT p.code, p.name, p.area, "
            "  ST_Area(ST_Intersection(p.geom, u.g)::geography) AS covered, "
            "  (SELECT COALESCE(jsonb_agg(x.code ORDER BY x.m2 DESC), '[]'::jsonb) FROM (SELECT i.code, "
            "     ST_Area(ST_Intersection(p.geom, i.geom)::geography) AS m2 FROM imp i WHERE i.geom && p.geom) x "
            "   WHERE x.m2 > 1) AS by_codes "
            "FROM p, u ORDER BY p.code"
        ),
        {"lvl": level},
    ).mappings()
    return [
        {
            "code": r["code"],
            "name": r["name"],
            "level": level,
            "area_m2": float(r["area"]),
            "covered_m2": float(r["covered"]),
            "share": float(r["covered"]) / float(r["area"]) if r["area"] else 0.0,
            "replaced_by": list(r["by_codes"]),
        }
        for r in rows
        if r["covered"] > 1.0
    ]


def retire_admin_units(conn: Connection, units: list[dict], by: str, reason: str) -> None:
    """Close ``valid_to`` of these units (never delete) and record who retired them, why, and which
    units replace them (``properties.retired``). Their current grids get the flag ``needs_rebuild``."""
    if not units:
        return
    conn.execute(
        text(
            "UPDATE admin_unit SET valid_to = now(), properties = properties || jsonb_build_object('retired', "
            "jsonb_build_object('at', now(), 'by', CAST(:by AS text), 'reason', CAST(:reason AS text), "
            "'covered_share', CAST(:share AS float8), 'replaced_by', CAST(:rb AS jsonb))) "
            "WHERE code = :code AND valid_to IS NULL"
        ),
        [
            {
                "code": u["code"],
                "by": by,
                "reason": reason,
                "share": round(u["share"], 4),
                "rb": json.dumps(u["replaced_by"]),
            }
            for u in units
        ],
    )
    comm = [u["code"] for u in units if u["level"] == "community"]
    if comm:
        conn.execute(
            text(
                "UPDATE grid SET flags = array_append(flags, 'needs_rebuild') WHERE community_code = ANY(:c) "
                "AND valid_to IS NULL AND NOT ('needs_rebuild' = ANY(flags))"
            ),
            {"c": comm},
        )


def current_grid_counts(conn: Connection, community_codes: list[str]) -> dict[str, int]:
    rows = conn.execute(
        text(
            "SELECT community_code, count(*) FROM grid WHERE community_code = ANY(:c) AND valid_to IS NULL "
            "AND level = 'grid' GROUP BY community_code"
        ),
        {"c": community_codes},
    ).all()
    return {c: int(n) for c, n in rows}


def buildings_outside_active_communities(conn: Connection, community_codes: list[str]) -> int:
    """Buildings whose anchor lies in one of these (retired) communities and in no active community."""
    return conn.execute(
        text(
            "SELECT count(*) FROM building b WHERE EXISTS (SELECT 1 FROM admin_unit r WHERE r.code = ANY(:c) "
            "AND r.geom && b.geom AND ST_Intersects(r.geom, ST_PointOnSurface(b.geom))) "
            "AND NOT EXISTS (SELECT 1 FROM admin_unit a WHERE a.level = 'community' AND a.valid_to IS NULL "
            "AND a.geom && b.geom AND ST_Intersects(a.geom, ST_PointOnSurface(b.geom)))"
        ),
        {"c": community_codes},
    ).scalar_one()


def close_replaced_grids(conn: Connection, community_code: str) -> list[dict]:
    """After ``community_code`` got its grids: close the current grids of the retired communities it
    replaces (``properties.retired.replaced_by``), their staff terms, and drop their street blocks and
    remaining building assignments (buildings of theirs outside this community). Returns per retired
    community: closed grids and the buildings that were left without a grid."""
    retired = (
        conn.execute(
            text(
                "SELECT code FROM admin_unit WHERE level = 'community' AND valid_to IS NOT NULL "
                "AND (properties -> 'retired' -> 'replaced_by') @> jsonb_build_array(CAST(:c AS text)) "
                "AND EXISTS (SELECT 1 FROM grid g WHERE g.community_code = admin_unit.code AND g.valid_to IS NULL) "
                "ORDER BY code"
            ),
            {"c": community_code},
        )
        .scalars()
        .all()
    )
    out = []
    for r in retired:
        codes = conn.execute(
            text(
                "UPDATE grid SET valid_to = now() WHERE community_code = :r AND valid_to IS NULL RETURNING code, level"
            ),
            {"r": r},
        ).all()
        conn.execute(
            text("UPDATE grid_staff SET valid_to = now() WHERE grid_code = ANY(:g) AND valid_to IS NULL"),
            {"g": [c for c, _ in codes]},
        )
        left = conn.execute(text("DELETE FROM grid_assignment WHERE community_code = :r"), {"r": r}).rowcount
        conn.execute(text("DELETE FROM street_block WHERE community_code = :r"), {"r": r})
        out.append(
            {
                "community_code": r,
                "grids_closed": sum(lv == "grid" for _, lv in codes),
                "microgrids_closed": sum(lv == "microgrid" for _, lv in codes),
                "buildings_left": int(left),
            }
        )
    return out


def communities_needing_build(conn: Connection) -> list[str]:
    """Active communities without current grids, and those that replace a retired community whose grids
    are still current."""
    return (
        conn.execute(
            text(
                "SELECT a.code FROM admin_unit a WHERE a.level = 'community' AND a.valid_to IS NULL AND a.geom IS NOT NULL "
                "AND (NOT EXISTS (SELECT 1 FROM grid g WHERE g.community_code = a.code AND g.valid_to IS NULL) "
                "  OR EXISTS (SELECT 1 FROM admin_unit r WHERE r.level = 'community' AND r.valid_to IS NOT NULL "
                "    AND (r.properties -> 'retired' -> 'replaced_by') @> jsonb_build_array(a.code) "
                "    AND EXISTS (SELECT 1 FROM grid g WHERE g.community_code = r.code AND g.valid_to IS NULL))) "
                "ORDER BY a.code"
            )
        )
        .scalars()
        .all()
    )


def unit_issues(conn: Connection, min_overlap_m2: float = 1.0) -> list[dict]:
    """Checks across admin units: overlaps between active units of the same level (township / community),
    active units under a retired parent, and retired communities whose grids are still current."""
    out = []
    for a, b, lvl, m2 in conn.execute(
        text(
            "SELECT a.code, b.code, a.level, ST_Area(ST_Intersection(a.geom, b.geom)::geography) FROM admin_unit a "
            "JOIN admin_unit b ON a.level = b.level AND a.code < b.code AND a.geom && b.geom "
            "WHERE a.level IN ('township', 'community') AND a.valid_to IS NULL AND b.valid_to IS NULL "
            "AND ST_Intersects(a.geom, b.geom) ORDER BY a.code, b.code"
        )
    ).all():
        if m2 > min_overlap_m2:
            name = "街道" if lvl == "township" else "社区"
            out.append(
                {
                    "kind": "unit_overlap",
                    "codes": [a, b],
                    "area_m2": round(float(m2), 1),
                    "message": f"现行{name} {a} 与 {b} 重叠 {m2:,.0f} m² (active {lvl}s overlap)",
                }
            )
    for code, parent in conn.execute(
        text(
            "SELECT a.code, p.code FROM admin_unit a JOIN admin_unit p ON p.code = a.parent_code "
            "WHERE a.level IN ('township', 'community') AND a.valid_to IS NULL AND p.valid_to IS NOT NULL "
            "ORDER BY a.code"
        )
    ).all():
        out.append(
            {
                "kind": "parent_retired",
                "codes": [code, parent],
                "area_m2": 0.0,
                "message": f"{code} 的上级 {parent} 已撤销 (parent retired)",
            }
        )
    for code, n, rb in conn.execute(
        text(
            "SELECT r.code, count(*), r.properties -> 'retired' -> 'replaced_by' FROM admin_unit r "
            "JOIN grid g ON g.community_code = r.code AND g.valid_to IS NULL AND g.level = 'grid' "
            "WHERE r.level = 'community' AND r.valid_to IS NOT NULL GROUP BY r.code, r.properties ORDER BY r.code"
        )
    ).all():
        by = "、".join(rb or []) or "—"
        out.append(
            {
                "kind": "needs_rebuild",
                "codes": [code, *(rb or [])],
                "area_m2": 0.0,
                "message": f"已撤销社区 {code} 仍有 {n} 个现行网格，需重建取代它的社区 {by} "
                f"(shequ grid build --needs-rebuild)",
            }
        )
    return out


# -- grids ----------------------------------------------------------------------------------------


@dataclass
class AreaRow:
    code: str
    name: str
    level: str
    parent_code: str
    households: int
    buildings: int
    area_m2: float
    compactness: float
    contiguous: bool
    flags: list[str]
    geom: BaseGeometry  # lon/lat
    properties: dict | None = None  # merged over the build's common properties (e.g. a unit range)


def write_community_build(
    conn: Connection,
    community_code: str,
    grids: list[AreaRow],
    microgrids: list[AreaRow],
    blocks: list[dict],
    assignment: list[dict],
    source: str = "built",
    properties: dict | None = None,
) -> int:
    """Close the community's current grids and write the new version. Returns the new version number."""
    version = conn.execute(
        text("SELECT COALESCE(max(version), 0) + 1 FROM grid WHERE community_code = :c"),
        {"c": community_code},
    ).scalar_one()
    conn.execute(
        text("UPDATE grid SET valid_to = now() WHERE community_code = :c AND valid_to IS NULL"),
        {"c": community_code},
    )
    base = properties or {}
    rows = [
        {
            "code": a.code,
            "name": a.name,
            "level": a.level,
            "parent": a.parent_code,
            "c": community_code,
            "hh": int(a.households),
            "nb": a.buildings,
            "area": float(a.area_m2),
            "pp": float(a.compactness),
            "contig": bool(a.contiguous),
            "flags": list(a.flags),
            "v": version,
            "src": source,
            "props": json.dumps({**base, **(a.properties or {})}, ensure_ascii=False),
            "g": _wkb(as_multipolygon(a.geom)),
        }
        for a in [*grids, *microgrids]
    ]
    if rows:
        conn.execute(
            text(
                "INSERT INTO grid (code, name, level, parent_code, community_code, households, buildings, area_m2, "
                "compactness, contiguous, flags, version, source, properties, geom) VALUES (:code, :name, :level, "
                ":parent, :c, :hh, :nb, :area, :pp, :contig, :flags, :v, :src, CAST(:props AS jsonb), "
                "ST_Multi(ST_GeomFromWKB(:g, 4326)))"
            ),
            rows,
        )
    conn.execute(text("DELETE FROM street_block WHERE community_code = :c"), {"c": community_code})
    if blocks:
        conn.execute(
            text(
                "INSERT INTO street_block (community_code, seq, kind, households, buildings, area_m2, geom) "
                "VALUES (:c, :seq, :kind, :hh, :nb, :area, ST_Multi(ST_GeomFromWKB(:g, 4326)))"
            ),
            [{"c": community_code, **b, "g": _wkb(as_multipolygon(b["g"]))} for b in blocks],
        )
    conn.execute(text("DELETE FROM grid_assignment WHERE community_code = :c"), {"c": community_code})
    if assignment:
        ids = [a["building_id"] for a in assignment]
        conn.execute(text("DELETE FROM grid_assignment WHERE building_id = ANY(:ids)"), {"ids": ids})
        conn.execute(
            text(
                "INSERT INTO grid_assignment (building_id, community_code, grid_code, microgrid_code, households, "
                "version) VALUES (:building_id, :c, :grid_code, :microgrid_code, :households, :v)"
            ),
            [{**a, "c": community_code, "v": version} for a in assignment],
        )
    return version


_GRID_COLS = (
    "code, name, level, parent_code, community_code, households, buildings, area_m2, compactness, "
    "contiguous, flags, version, valid_from, valid_to, source, "
    "properties -> 'building_units' AS building_units"
)


def _grid_dict(r) -> dict:
    d = {k: r[k] for k in r.keys() if k != "g"}
    for k in ("valid_from", "valid_to"):
        if d.get(k) is not None:
            d[k] = d[k].isoformat()
    d["flags"] = list(d.get("flags") or [])
    d["geom"] = _geom(r["g"]) if "g" in r.keys() else None
    return d


def list_grids(conn: Connection, level: str, parent: str | None) -> list[dict]:
    rows = conn.execute(
        text(
            f"SELECT {_GRID_COLS}, ST_AsBinary(geom) AS g FROM grid WHERE valid_to IS NULL AND level = :level "
            "AND (CAST(:parent AS text) IS NULL OR parent_code = :parent OR community_code = :parent) ORDER BY code"
        ),
        {"level": level, "parent": parent},
    ).mappings()
    return [_grid_dict(r) for r in rows]


def get_grid(conn: Connection, code: str) -> dict | None:
    r = (
        conn.execute(
            text(
                f"SELECT {_GRID_COLS}, ST_AsBinary(geom) AS g FROM grid WHERE code = :code AND valid_to IS NULL"
            ),
            {"code": code},
        )
        .mappings()
        .first()
    )
    return _grid_dict(r) if r else None


def grid_history(conn: Connection, code: str) -> list[dict]:
    rows = conn.execute(
        text(f"SELECT {_GRID_COLS} FROM grid WHERE code = :code ORDER BY version"), {"code": code}
    ).mappings()
    return [_grid_dict(r) for r in rows]


def community_rows(conn: Connection, parent: str | None) -> list[dict]:
    """Communities as grid-like rows (households/area/compactness computed in SQL)."""
    rows = conn.execute(
        text(
            "SELECT a.code, a.name, a.level, a.parent_code, a.source, a.properties, "
            "ST_Area(a.geom::geography) AS area_m2, "
            "CASE WHEN ST_Perimeter(a.geom::geography) > 0 THEN 4 * pi() * ST_Area(a.geom::geography) "
            "  / ST_Perimeter(a.geom::geography) ^ 2 ELSE 0 END AS compactness, "
            "(SELECT COALESCE(sum(ga.households), 0) FROM grid_assignment ga WHERE ga.community_code = a.code) AS hh, "
            "ST_AsBinary(a.geom) AS g FROM admin_unit a WHERE a.level = 'community' AND a.geom IS NOT NULL "
            "AND a.valid_to IS NULL AND (CAST(:parent AS text) IS NULL OR a.parent_code = :parent) ORDER BY a.code"
        ),
        {"parent": parent},
    ).mappings()
    out = []
    for r in rows:
        props = r["properties"] or {}
        hh = int(r["hh"]) or int(props.get("households", 0))
        out.append(
            {
                "code": r["code"],
                "name": r["name"],
                "level": "community",
                "parent_code": r["parent_code"],
                "households": hh,
                "area_m2": float(r["area_m2"]),
                "compactness": float(r["compactness"]),
                "source": r["source"],
                "flags": list(props.get("flags", [])),
                "geom": _geom(r["g"]),
            }
        )
    return out


def grid_stats(conn: Connection, code: str, level: str) -> dict:
    """Counts inside a community / grid / micro-grid: buildings and households (assignments), POIs,
    addresses (when the registry exists), children and staff."""
    col = {"community": "community_code", "grid": "grid_code", "microgrid": "microgrid_code"}[level]
    b = conn.execute(
        text(f"SELECT count(*), COALESCE(sum(households), 0) FROM grid_assignment WHERE {col} = :code"),
        {"code": code},
    ).one()  # col comes from the fixed mapping above
    hh = int(b[1])
    if level == "microgrid":  # a unit range of a large building holds its share, not the whole building
        share = conn.execute(
            text(
                "SELECT households FROM grid WHERE code = :code AND valid_to IS NULL "
                "AND properties -> 'building_units' IS NOT NULL"
            ),
            {"code": code},
        ).scalar()
        hh = int(share) if share is not None else hh
    geom_sql = (
        "SELECT geom FROM admin_unit WHERE code = :code"
        if level == "community"
        else "SELECT geom FROM grid WHERE code = :code AND valid_to IS NULL"
    )
    pois = conn.execute(
        text(
            f"SELECT p.kind, count(*) FROM poi p, ({geom_sql}) a WHERE ST_Intersects(p.geom, a.geom) "
            "GROUP BY p.kind ORDER BY count(*) DESC"
        ),
        {"code": code},
    ).all()
    addresses = None
    if has_table(conn, "standard_address"):
        addresses = conn.execute(
            text(
                f"SELECT count(*) FROM standard_address s, ({geom_sql}) a WHERE s.valid_to IS NULL "
                "AND s.status = 'active' AND s.geom IS NOT NULL AND ST_Intersects(s.geom, a.geom)"
            ),
            {"code": code},
        ).scalar_one()
    children = conn.execute(
        text(
            "SELECT level, count(*), COALESCE(sum(households), 0), "
            "count(*) FILTER (WHERE 'outside_band' = ANY(flags)) FROM grid "
            "WHERE valid_to IS NULL AND (parent_code = :code OR (:lvl = 'community' AND community_code = :code)) "
            "GROUP BY level"
        ),
        {"code": code, "lvl": level},
    ).all()
    staff = conn.execute(
        text(
            "SELECT person_ref, role, valid_from FROM grid_staff WHERE grid_code = :code AND valid_to IS NULL "
            "ORDER BY role, person_ref"
        ),
        {"code": code},
    ).all()
    rebuild = rebuild_reason(conn, code, level)
    return {
        "needs_rebuild": rebuild is not None,
        "rebuild_reason": rebuild,
        "buildings": int(b[0]),
        "households": hh,
        "pois": {k: int(n) for k, n in pois},
        "pois_total": int(sum(n for _, n in pois)),
        "addresses": None if addresses is None else int(addresses),
        "children": {
            lvl: {"count": int(n), "households": int(h), "outside_band": int(o)} for lvl, n, h, o in children
        },
        "staff": [{"person_ref": p, "role": r, "valid_from": v.isoformat()} for p, r, v in staff],
    }


def locate(conn: Connection, lon: float, lat: float) -> dict:
    p = {"lon": lon, "lat": lat}
    pt = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
    out: dict = {}
    for level in ("microgrid", "grid"):
        r = (
            conn.execute(
                text(
                    f"SELECT code, name, parent_code, community_code FROM grid WHERE valid_to IS NULL AND level = :lvl "
                    f"AND ST_Covers(geom, {pt}) ORDER BY code LIMIT 1"
                ),
                {**p, "lvl": level},
            )
            .mappings()
            .first()
        )
        out[level] = dict(r) if r else None
    for level in ("community", "township", "district"):
        r = (
            conn.execute(
                text(
                    f"SELECT code, name, parent_code, source FROM admin_unit WHERE level = :lvl AND geom IS NOT NULL "
                    f"AND valid_to IS NULL AND ST_Covers(geom, {pt}) ORDER BY code LIMIT 1"
                ),
                {**p, "lvl": level},
            )
            .mappings()
            .first()
        )
        out[level] = dict(r) if r else None
    return out


def rebuild_reason(conn: Connection, code: str, level: str) -> str | None:
    """Why a community / grid / micro-grid needs ``shequ grid build`` (None when it does not)."""
    if level == "community":
        if code in communities_needing_build(conn):
            has = conn.execute(
                text("SELECT EXISTS (SELECT 1 FROM grid WHERE community_code = :c AND valid_to IS NULL)"),
                {"c": code},
            ).scalar_one()
            return (
                "取代了已撤销的临时社区，其网格仍在使用，需重建 (replaces a retired community whose grids are current)"
                if has
                else "尚未划分网格 (no grids built yet)"
            )
        return None
    r = conn.execute(
        text(
            "SELECT a.code, a.properties -> 'retired' -> 'replaced_by' FROM grid g JOIN admin_unit a "
            "ON a.code = g.community_code WHERE g.code = :c AND g.valid_to IS NULL AND a.valid_to IS NOT NULL"
        ),
        {"c": code},
    ).first()
    if r is None:
        return None
    by = "、".join(r[1] or []) or "—"
    return (
        f"所属社区 {r[0]} 已撤销，由 {by} 取代；请运行 shequ grid build --needs-rebuild (community retired)"
    )


_STAFF_COLS = "id, grid_code, person_ref, role, valid_from, valid_to"


def _staff_dict(r) -> dict:
    return {
        "id": int(r["id"]),
        "grid_code": r["grid_code"],
        "person_ref": r["person_ref"],
        "role": r["role"],
        "valid_from": r["valid_from"],
        "valid_to": r["valid_to"],
        "current": r["valid_to"] is None,
    }


def current_staff_for_update(conn: Connection, grid_code: str, role: str) -> dict | None:
    """The current holder of ``role`` on the grid, row-locked until the caller's transaction ends."""
    r = (
        conn.execute(
            text(
                f"SELECT {_STAFF_COLS} FROM grid_staff WHERE grid_code = :g AND role = :r AND valid_to IS NULL FOR UPDATE"
            ),
            {"g": grid_code, "r": role},
        )
        .mappings()
        .first()
    )
    return _staff_dict(r) if r else None


def close_staff(conn: Connection, staff_id: int, valid_to) -> None:
    conn.execute(
        text("UPDATE grid_staff SET valid_to = :t WHERE id = :i AND valid_to IS NULL"),
        {"i": staff_id, "t": valid_to},
    )


def insert_staff(conn: Connection, grid_code: str, person_ref: str, role: str, valid_from) -> dict:
    r = (
        conn.execute(
            text(
                "INSERT INTO grid_staff (grid_code, person_ref, role, valid_from) VALUES (:g, :p, :r, :f) "
                f"RETURNING {_STAFF_COLS}"
            ),
            {"g": grid_code, "p": person_ref, "r": role, "f": valid_from},
        )
        .mappings()
        .one()
    )
    return _staff_dict(r)


def staff_of(conn: Connection, grid_code: str, current_only: bool = False) -> list[dict]:
    """Assignments of a grid / micro-grid, current ones first, then past terms newest first."""
    rows = conn.execute(
        text(
            f"SELECT {_STAFF_COLS} FROM grid_staff WHERE grid_code = :g AND (NOT :cur OR valid_to IS NULL) "
            "ORDER BY (valid_to IS NULL) DESC, role, valid_from DESC, id DESC"
        ),
        {"g": grid_code, "cur": current_only},
    ).mappings()
    return [_staff_dict(r) for r in rows]


# -- H3 -------------------------------------------------------------------------------------------


def area_geometry(conn: Connection, code: str) -> tuple[str, BaseGeometry] | None:
    """(level, lon/lat geometry) of an admin unit or a current grid / micro-grid."""
    r = conn.execute(
        text("SELECT level, ST_AsBinary(geom) FROM admin_unit WHERE code = :c AND geom IS NOT NULL"),
        {"c": code},
    ).first()
    if r is None:
        r = conn.execute(
            text("SELECT level, ST_AsBinary(geom) FROM grid WHERE code = :c AND valid_to IS NULL"),
            {"c": code},
        ).first()
    return None if r is None else (r[0], _geom(r[1]))


def located_things(conn: Connection, area: BaseGeometry) -> dict[str, list[tuple[float, float, float]]]:
    """Points with a weight inside ``area`` (its bbox, cells clip further): building anchors weighted by
    households, POIs, and standard addresses when the registry exists."""
    a = {"a": _wkb(area)}
    env = "ST_Envelope(ST_GeomFromWKB(:a, 4326))"
    out: dict[str, list] = {}
    src = household_source(conn)
    if src == "standard_address":
        rows = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p), COALESCE(sa.hh, b.households_est) FROM (SELECT id, households_est, "
                f"ST_PointOnSurface(geom) AS p FROM building WHERE geom && {env}) b LEFT JOIN (SELECT building_id, "
                "sum(households) AS hh FROM standard_address WHERE valid_to IS NULL AND status = 'active' "
                "GROUP BY building_id) sa ON sa.building_id = b.id"
            ),
            a,
        ).all()
    else:
        rows = conn.execute(
            text(
                f"SELECT ST_X(p), ST_Y(p), households_est FROM (SELECT households_est, ST_PointOnSurface(geom) AS p "
                f"FROM building WHERE geom && {env}) b"
            ),
            a,
        ).all()
    out["buildings"] = [(float(x), float(y), float(h or 0)) for x, y, h in rows]
    rows = conn.execute(text(f"SELECT ST_X(geom), ST_Y(geom) FROM poi WHERE geom && {env}"), a).all()
    out["pois"] = [(float(x), float(y), 1.0) for x, y in rows]
    if has_table(conn, "standard_address"):
        rows = conn.execute(
            text(
                f"SELECT ST_X(geom), ST_Y(geom) FROM standard_address WHERE valid_to IS NULL AND status = 'active' "
                f"AND geom IS NOT NULL AND geom && {env}"
            ),
            a,
        ).all()
        out["addresses"] = [(float(x), float(y), 1.0) for x, y in rows]
    return out


def write_h3_cells(conn: Connection, area_code: str, res: int, mode: str, cells: list[dict]) -> int:
    conn.execute(
        text("DELETE FROM h3_cell WHERE area_code = :c AND res = :r AND mode = :m"),
        {"c": area_code, "r": res, "m": mode},
    )
    if cells:
        conn.execute(
            text(
                "INSERT INTO h3_cell (area_code, res, mode, cell, households, buildings, pois, addresses, geom) "
                "VALUES (:c, :r, :m, :cell, :households, :buildings, :pois, :addresses, ST_GeomFromWKB(:g, 4326))"
            ),
            [
                {
                    "c": area_code,
                    "r": res,
                    "m": mode,
                    "cell": c["cell"],
                    "households": int(round(c["households"])),
                    "buildings": c["buildings"],
                    "pois": c["pois"],
                    "addresses": c.get("addresses") or 0,
                    "g": _wkb(c["geom"]),
                }
                for c in cells
            ],
        )
    return len(cells)


def read_h3_cells(conn: Connection, area_code: str, res: int, mode: str) -> list[str]:
    return (
        conn.execute(
            text("SELECT cell FROM h3_cell WHERE area_code = :c AND res = :r AND mode = :m ORDER BY cell"),
            {"c": area_code, "r": res, "m": mode},
        )
        .scalars()
        .all()
    )
