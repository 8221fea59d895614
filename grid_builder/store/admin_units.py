"""Admin units the grid builder writes: provisional townships / communities, imported units, and the
retirement of provisional units that a city's own boundaries replace (with the checks across units)."""

from __future__ import annotations

import json

from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.engine import Connection

from grid_builder.geom import as_multipolygon
from grid_builder.store._wkb import to_wkb

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
                "g": to_wkb(u.geom),
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
    """Insert or replace one admin unit (e.g. an imported boundary); a retired code becomes active again."""
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
            "g": to_wkb(as_multipolygon(geom)),
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
    """Number of current grids per community code."""
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
    return list(
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
