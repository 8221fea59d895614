"""SQL for compounds registered through the API: serial locks, admin shares, overlaps, members."""

from __future__ import annotations

import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from address_registry.build import (
    BuildingIn,
)
from address_registry.records import AddressRecord
from address_registry.store.rows import _COLUMNS, _record

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
    """Buildings by id (footprints for the compound membership rule)."""
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
