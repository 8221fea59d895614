"""Reverse geocoding's reads in one statement: the footprint's address, the nearest address points, the
district / township / community, the grid and the compound at a point.

The route used to send 7–9 statements per request (`reading.footprint_address`, `reading.nearest`, a
parent's `current` per building answer, `admin_containing`, the grid's catalogue check and
`grid_containing`, `compound_containing`); each was cheap in PostgreSQL (0.2–0.7 ms) but each was a round
trip, a parse of whole rows (history fields, areas as WKB) and SQLAlchemy's work around it. Here the same
five queries are the branches of one ``UNION ALL`` over a common row shape with only the columns the answer
uses; its text never changes, so psycopg prepares it on each pooled connection after a few uses. The
branches keep the old queries' filters and orderings (`reading.py`), so the answer is the same — the test
`tests/address_registry/test_reverse_one_statement.py` compares both on the demo.

The grid branch needs the grids feature's `grid` table with its current shape; the catalogue check of
`reading.grid_containing` is made once per database and remembered (`TtlCache`). Without that table the
caller keeps the old path (`reverse_parts` returns None).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from geo.cache import TtlCache
from geo.pg import db_key

#: the columns the one-statement grid branch reads (`grid` as migration 0003_grids makes it)
GRID_COLUMNS = frozenset({"code", "name", "level", "valid_to", "geom"})
_grid_shape: TtlCache[bool] = TtlCache(ttl_s=60.0)

_PT = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"

# part: 1 footprint, 2 nearest, 3 admin, 4 grid, 5 compound; ord: the order within the part
_SQL = f"""
(SELECT 1 AS part, 1 AS ord, code, level, source, parent_source, components::text AS components, lon, lat,
       distance_m, extent_m, NULL::text AS name
FROM (
    SELECT s.code, s.level, s.source, par.source AS parent_source, s.components, ST_X(s.geom) AS lon,
           ST_Y(s.geom) AS lat, ST_Distance(b.geom::geography, p.pt::geography) AS distance_m,
           ST_MaxDistance(ST_Transform(s.geom, 32651), ST_Transform(b.geom, 32651)) AS extent_m
    FROM (SELECT {_PT} AS pt) p
    JOIN building b ON ST_DWithin(b.geom, p.pt, 0.0002)
    JOIN standard_address s ON s.building_id = b.id AND s.valid_to IS NULL AND s.status = 'active'
     AND s.level IN ('house_number', 'building') AND s.geom IS NOT NULL
    LEFT JOIN standard_address par ON s.level = 'building' AND par.code = s.parent_code
     AND par.valid_to IS NULL) d
WHERE distance_m <= :max_m
ORDER BY round(distance_m::numeric, 1), CASE level WHEN 'house_number' THEN 0 ELSE 1 END, code
LIMIT 1)
UNION ALL
(SELECT 2, ord, code, level, source, parent_source, components, lon, lat, distance_m, NULL, NULL
FROM (
    SELECT d.*, row_number() OVER (ORDER BY round(distance_m::numeric, 2),
           CASE level WHEN 'house_number' THEN 0 ELSE 1 END, code) AS ord
    FROM (
        SELECT s.code, s.level, s.source, par.source AS parent_source, s.components::text AS components,
               ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat,
               ST_Distance(s.geom::geography, {_PT}::geography) AS distance_m
        FROM (SELECT code, level, source, parent_code, components, geom FROM standard_address
              WHERE valid_to IS NULL AND status = 'active' AND geom IS NOT NULL
                AND level IN ('house_number', 'building')
              ORDER BY geom <-> {_PT} LIMIT :kk) s
        LEFT JOIN standard_address par ON s.level = 'building' AND par.code = s.parent_code
         AND par.valid_to IS NULL) d) n
WHERE ord <= :k)
UNION ALL
(SELECT 3, row_number() OVER (ORDER BY length(code), code), code, level, source, NULL, NULL, NULL, NULL, NULL,
       NULL, name
FROM admin_unit
WHERE level IN ('district', 'township', 'community') AND geom IS NOT NULL
  AND (valid_to IS NULL OR valid_to > now()) AND ST_Intersects(geom, {_PT}))
UNION ALL
(SELECT 4, row_number() OVER (ORDER BY code), code, level, NULL, NULL, NULL, NULL, NULL, NULL, NULL, name
FROM grid
WHERE ST_Intersects(geom, {_PT}) AND valid_to IS NULL)
UNION ALL
(SELECT 5, 1, code, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, components->>'compound'
 FROM standard_address
 WHERE valid_to IS NULL AND status = 'active' AND level = 'compound' AND area IS NOT NULL
   AND ST_Intersects(area, {_PT})
 ORDER BY ST_Area(area), code LIMIT 1)
ORDER BY part, ord"""
_STATEMENT = text(_SQL)


@dataclass(frozen=True)
class AddressHit:
    """An address point of the answer: what `address_registry.reverse` turns into an item."""

    code: str
    level: str
    source: str | None
    parent_source: str | None
    components: dict[str, Any]
    lon: float
    lat: float
    distance_m: float
    extent_m: float | None


@dataclass(frozen=True)
class ReverseParts:
    """Everything reverse geocoding reads at a point, from one statement."""

    footprint: AddressHit | None
    nearest: list[AddressHit]
    admin: dict[str, dict[str, Any]]
    grid: dict[str, Any] | None
    compound: dict[str, Any] | None


def _grid_table_ready(conn: Connection) -> bool:
    cols = conn.execute(text("""SELECT array_agg(attname::text) FROM pg_attribute
        WHERE attrelid = to_regclass('public.grid') AND attnum > 0 AND NOT attisdropped""")).scalar()
    return GRID_COLUMNS <= set(cols or ())


def _hit(row: Any) -> AddressHit:
    return AddressHit(row.code, row.level, row.source, row.parent_source, json.loads(row.components),
                      float(row.lon), float(row.lat), float(row.distance_m),
                      None if row.extent_m is None else float(row.extent_m))


def reverse_parts(conn: Connection, lon: float, lat: float, k: int, max_m: float) -> ReverseParts | None:
    """The footprint's address within ``max_m`` metres, the ``k`` nearest address points, the admin units,
    grid and compound at (lon, lat) WGS84 — one statement; None when the database has no `grid` table of
    the shape the statement reads (the caller then reads part by part)."""
    key = db_key(conn)
    if not _grid_shape.get(key, lambda: _grid_table_ready(conn)):
        return None
    rows = conn.execute(_STATEMENT, {"lon": lon, "lat": lat, "k": k, "kk": max(k * 8, 16), "max_m": max_m}).all()
    footprint = None
    nearest: list[AddressHit] = []
    admin: dict[str, dict[str, Any]] = {}
    grids: dict[str, dict[str, Any]] = {}
    compound = None
    for row in rows:
        if row.part == 1:
            footprint = _hit(row)
        elif row.part == 2:
            nearest.append(_hit(row))
        elif row.part == 3:
            admin.setdefault(row.level, {"code": row.code, "name": row.name, "source": row.source})
        elif row.part == 4:
            grids.setdefault(row.level, {"code": row.code, "name": row.name})
        else:
            compound = {"code": row.code, "name": row.name}
    grid = None
    if grids:
        # as `reading.grid_containing`: the grid, with the micro-grid holding the point beside it
        grid = grids.get("grid") or next(iter(grids.values()))
        if "microgrid" in grids and grids["microgrid"] is not grid:
            grid = {**grid, "microgrid": grids["microgrid"]}
    return ReverseParts(footprint, nearest, admin, grid, compound)
