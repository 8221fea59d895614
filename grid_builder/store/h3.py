"""H3 cells: the geometry of an area, the weighted points inside it, and the stored cell layer."""

from __future__ import annotations

from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.engine import Connection

from geo.pg import has_table
from grid_builder.store._wkb import from_wkb, to_wkb
from grid_builder.store.base_layers import household_source


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
    return None if r is None else (r[0], from_wkb(r[1]))


def located_things(conn: Connection, area: BaseGeometry) -> dict[str, list[tuple[float, float, float]]]:
    """Points with a weight inside ``area`` (its bbox, cells clip further): building anchors weighted by
    households, POIs, and standard addresses when the registry exists."""
    a = {"a": to_wkb(area)}
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
    """Replace the stored cells of (area, res, mode) with ``cells``; returns how many were written."""
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
                    "g": to_wkb(c["geom"]),
                }
                for c in cells
            ],
        )
    return len(cells)


def read_h3_cells(conn: Connection, area_code: str, res: int, mode: str) -> list[str]:
    """Stored cell ids of (area, res, mode), sorted."""
    return list(
        conn.execute(
            text("SELECT cell FROM h3_cell WHERE area_code = :c AND res = :r AND mode = :m ORDER BY cell"),
            {"c": area_code, "r": res, "m": mode},
        )
        .scalars()
        .all()
    )
