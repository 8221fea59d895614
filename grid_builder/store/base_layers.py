"""Reading the base layers (admin units, roads, railways, water, buildings) into plain records."""

from __future__ import annotations

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.engine import Connection

from geo.pg import has_column, has_table
from grid_builder.records import BuildingRec, RoadIn
from grid_builder.store._wkb import from_wkb, to_wkb


def building_extent(conn: Connection) -> tuple[float, float, float, float] | None:
    """Bounding box (minx, miny, maxx, maxy) of all buildings, None when there are none."""
    row = conn.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM building) s"
        )
    ).one()
    return None if row[0] is None else (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def districts_with_buildings(conn: Connection) -> list[str]:
    """Districts (with a boundary) that contain at least one building anchor (ST_PointOnSurface)."""
    return list(
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
    """One admin unit by code (retired ones too, with ``valid_to``), None when unknown."""
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
        "geom": from_wkb(row["g"]),
    }


def admin_units(conn: Connection, level: str, parent: str | None = None) -> list[dict]:
    """Active admin units of ``level`` with a boundary (optionally under ``parent``), by code."""
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
            "geom": from_wkb(r["g"]),
        }
        for r in rows
    ]


def roads_in(conn: Connection, area: BaseGeometry) -> list[RoadIn]:
    """Roads intersecting ``area`` (lon/lat)."""
    rows = conn.execute(
        text(
            "SELECT kind, name, tags, ST_AsBinary(geom) AS g FROM road "
            "WHERE geom && ST_GeomFromWKB(:a, 4326) AND ST_Intersects(geom, ST_GeomFromWKB(:a, 4326))"
        ),
        {"a": to_wkb(area)},
    ).mappings()
    return [RoadIn(kind=r["kind"], geom=from_wkb(r["g"]), name=r["name"], tags=r["tags"] or {}) for r in rows]


def rails_in(conn: Connection, area: BaseGeometry) -> list[tuple[str | None, BaseGeometry]]:
    """(kind, line) of every railway line part intersecting ``area``."""
    rows = conn.execute(
        text(
            "SELECT kind, ST_AsBinary(geom) AS g FROM railway WHERE ST_Intersects(geom, ST_GeomFromWKB(:a, 4326))"
        ),
        {"a": to_wkb(area)},
    ).all()
    out: list[tuple[str | None, BaseGeometry]] = []
    for kind, g in rows:
        out.extend((kind, ln) for ln in shapely.get_parts(from_wkb(g)))
    return out


def water_in(conn: Connection, area: BaseGeometry) -> list[BaseGeometry]:
    """Water polygons intersecting ``area``."""
    rows = conn.execute(
        text("SELECT ST_AsBinary(geom) FROM water WHERE ST_Intersects(geom, ST_GeomFromWKB(:a, 4326))"),
        {"a": to_wkb(area)},
    ).scalars()
    return [from_wkb(g) for g in rows]


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
        # the bounding-box test first: it uses the GiST index on building.geom (an anchor inside the area lies
        # in a footprint whose box meets the area's), where the anchor test alone read every building of the
        # database for each area — at 10^7 addresses ~1 s per community of `grid build --all` (docs/scaling.md)
        where = ("WHERE b.geom && ST_GeomFromWKB(:a, 4326) "
                 "AND ST_Intersects(ST_PointOnSurface(b.geom), ST_GeomFromWKB(:a, 4326))")
        params["a"] = to_wkb(area)
    sql = (
        f"SELECT b.id, {hh_expr} AS hh, ST_AsBinary(b.geom) AS g FROM building b {join} {where} ORDER BY b.id"
    )
    rows = conn.execute(text(sql), params).all()  # fragments above are constants, values are bound
    return [BuildingRec(int(i), from_wkb(g), int(round(float(h or 0)))) for i, h, g in rows]
