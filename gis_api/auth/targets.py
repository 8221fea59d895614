"""Where a record lies, for jurisdiction-bound actions: one resolver per kind of record.

A target is a `roles.Target` mapping — township, community, grid and police-area codes of the record —
that `roles.within` compares with the caller's grants. Resolvers read the live tables with bound
parameters; an unknown record resolves to an empty target (the route then answers 404 for those who
may act at all, and the policy check answers 403 for the others without saying whether it exists).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from . import store

_ADDRESS = text(
    "SELECT township_code, community_code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM standard_address "
    "WHERE code = :code ORDER BY valid_to IS NULL DESC, version DESC LIMIT 1"
)
_GRID = text(
    "SELECT g.code, g.level, g.parent_code, g.community_code, c.parent_code AS township_code, "
    "ST_X(ST_PointOnSurface(g.geom)) AS lon, ST_Y(ST_PointOnSurface(g.geom)) AS lat "
    "FROM grid g LEFT JOIN admin_unit c ON c.code = g.community_code "
    "WHERE g.code = :code ORDER BY g.valid_to IS NULL DESC, g.version DESC LIMIT 1"
)
_GRIDS_AT = text(
    "SELECT g.code, g.parent_code, g.level FROM grid g JOIN standard_address a ON a.code = :code "
    "AND a.valid_to IS NULL WHERE g.valid_to IS NULL AND a.geom IS NOT NULL AND ST_Intersects(g.geom, a.geom)")
_COMMUNITY = text("SELECT parent_code FROM admin_unit WHERE code = :code AND level = 'community'")


def _police(conn: Connection, lon: Any, lat: Any) -> list[str]:
    if lon is None or lat is None:
        return []
    return store.police_areas_at(conn, float(lon), float(lat))


def address_target(conn: Connection, code: str) -> dict[str, Any]:
    """The jurisdiction of a standard address (its current or last version): township, community, the
    grids and micro-grids (with their grid) holding its point, the police areas containing it."""
    row = conn.execute(_ADDRESS, {"code": code}).mappings().first()
    if row is None:
        return {}
    grids: set[str] = set()
    for g in conn.execute(_GRIDS_AT, {"code": code}):
        grids.add(g.code)
        if g.level == "microgrid" and g.parent_code:
            grids.add(g.parent_code)
    return {"township": row["township_code"], "community": row["community_code"], "grid": sorted(grids),
            "police_area": _police(conn, row["lon"], row["lat"])}


def grid_target(conn: Connection, code: str) -> dict[str, Any]:
    """The jurisdiction of a grid or micro-grid: itself, its parent grid, community, township, police areas."""
    row = conn.execute(_GRID, {"code": code}).mappings().first()
    if row is None:
        return {}
    grids = [row["code"]] + ([row["parent_code"]] if row["level"] == "microgrid" else [])
    return {"grid": grids, "community": row["community_code"], "township": row["township_code"],
            "police_area": _police(conn, row["lon"], row["lat"])}


def community_target(conn: Connection, community_code: str | None, lon: float | None = None,
                     lat: float | None = None) -> dict[str, Any]:
    """The jurisdiction of a new record given by its community code and/or its point."""
    township = None
    if community_code:
        township = conn.execute(_COMMUNITY, {"code": community_code}).scalar()
    if community_code is None and lon is not None and lat is not None:
        hit = conn.execute(
            text("SELECT code, parent_code FROM admin_unit WHERE level = 'community' AND valid_to IS NULL "
                 "AND ST_Intersects(geom, ST_SetSRID(ST_Point(:x, :y), 4326)) LIMIT 1"),
            {"x": lon, "y": lat},
        ).first()
        if hit is not None:
            community_code, township = hit
    return {"township": township, "community": community_code, "police_area": _police(conn, lon, lat)}


def merge_targets(*targets: dict[str, Any]) -> list[dict[str, Any]]:
    """Several records' targets (an action over all of them must be within each)."""
    return [t for t in targets if t]
