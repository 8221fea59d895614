"""What the in-memory reverse index (`address_registry.reverse_cache`) loads from PostGIS besides the
registry's records: building footprints, admin polygons, current grids, the sources of inactive parents,
and the change stamp of those layers (the log kept by migration 0020_reverse_layer_changes)."""

from __future__ import annotations

from typing import Any

import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection


def layer_stamp(conn: Connection) -> tuple[Any, ...] | None:
    """(layer, last id, rows) of each logged layer; None when the database has no change log (the index
    then stays off: the caller answers through SQL)."""
    if conn.execute(text("SELECT to_regclass('public.reverse_layer_change')")).scalar() is None:
        return None
    rows = conn.execute(text("""SELECT layer, max(id), count(*) FROM reverse_layer_change
        GROUP BY layer ORDER BY layer""")).all()
    return tuple((r[0], int(r[1]), int(r[2])) for r in rows)


def buildings(conn: Connection) -> list[tuple[int, Any]]:
    """(id, footprint) of every building."""
    return [(int(r[0]), shapely.from_wkb(bytes(r[1])))
            for r in conn.execute(text("SELECT id, ST_AsBinary(geom) FROM building WHERE geom IS NOT NULL"))]


def admin_units(conn: Connection) -> list[tuple[Any, ...]]:
    """(polygon, code, name, level, source, valid_to) of every district, township and community with a polygon (retired ones too: their
    ``valid_to`` is compared with the time of each question, as the SQL compares it with ``now()``)."""
    return [(shapely.from_wkb(bytes(r.wkb)), r.code, r.name, r.level, r.source, r.valid_to)
            for r in conn.execute(text("""SELECT code, name, level, source, valid_to, ST_AsBinary(geom) AS wkb
                FROM admin_unit WHERE level IN ('district', 'township', 'community') AND geom IS NOT NULL"""))]


def current_grids(conn: Connection) -> list[tuple[Any, ...]]:
    """(polygon, code, name, level) of every current grid and micro-grid."""
    return [(shapely.from_wkb(bytes(r.wkb)), r.code, r.name, r.level)
            for r in conn.execute(text("""SELECT code, name, level, ST_AsBinary(geom) AS wkb FROM grid
                WHERE valid_to IS NULL AND geom IS NOT NULL"""))]


def inactive_parent_sources(conn: Connection) -> dict[str, str | None]:
    """code → source of the current versions that are not active but are the parent of an active building
    record (the SQL's parent join reads the current version whatever its status)."""
    return {r[0]: r[1] for r in conn.execute(text("""SELECT p.code, p.source FROM standard_address p
        WHERE p.valid_to IS NULL AND p.status <> 'active' AND p.code IN (
            SELECT parent_code FROM standard_address WHERE valid_to IS NULL AND status = 'active'
              AND level = 'building' AND parent_code IS NOT NULL)"""))}
