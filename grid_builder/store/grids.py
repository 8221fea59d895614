"""Grids and micro-grids: versioned writes of a community's build, reads, stats, locate, rebuild reasons."""

from __future__ import annotations

import json
from dataclasses import dataclass

from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.engine import Connection

from geo.pg import has_table
from grid_builder.geom import as_multipolygon
from grid_builder.store._wkb import from_wkb, to_wkb
from grid_builder.store.admin_units import communities_needing_build


@dataclass
class AreaRow:
    """One grid or micro-grid row to write (lon/lat geometry)."""

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
            "g": to_wkb(as_multipolygon(a.geom)),
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
            [{"c": community_code, **b, "g": to_wkb(as_multipolygon(b["g"]))} for b in blocks],
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
    d["geom"] = from_wkb(r["g"]) if "g" in r.keys() else None
    return d


def grid_assignments(conn: Connection, community_code: str) -> list[tuple[int, str, str]]:
    """(building_id, grid_code, microgrid_code) of every building assigned in the community."""
    rows = conn.execute(
        text("SELECT building_id, grid_code, microgrid_code FROM grid_assignment WHERE community_code = :c"),
        {"c": community_code},
    ).all()
    return [(int(b), g, m) for b, g, m in rows]


def list_grids(conn: Connection, level: str, parent: str | None) -> list[dict]:
    """Current grids or micro-grids of ``level``, optionally under a parent or community code."""
    rows = conn.execute(
        text(
            f"SELECT {_GRID_COLS}, ST_AsBinary(geom) AS g FROM grid WHERE valid_to IS NULL AND level = :level "
            "AND (CAST(:parent AS text) IS NULL OR parent_code = :parent OR community_code = :parent) ORDER BY code"
        ),
        {"level": level, "parent": parent},
    ).mappings()
    return [_grid_dict(r) for r in rows]


def get_grid(conn: Connection, code: str) -> dict | None:
    """The current grid or micro-grid with this code, None when there is none."""
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
    """Every version of a grid / micro-grid code, oldest first (without geometry)."""
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
                "geom": from_wkb(r["g"]),
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
    """The micro-grid, grid, community, township and district covering the point (None where none)."""
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
