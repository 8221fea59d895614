"""Loading the inputs of the build (base tables) and of the geocoder (the registry and its roads)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from address_registry.build import (
    AddressPointIn,
    AdminUnit,
    BuildingIn,
    LanduseIn,
    PoiIn,
    RoadWay,
)
from address_registry.geocoder import AdminName
from address_registry.store.geocoder_rows import lean_records
from address_registry.store.reading import current_aliases


def load_build_inputs(conn: Connection) -> dict[str, Any]:
    """Everything `build.plan_registry` needs, from the base tables."""
    admins = conn.execute(
        text("""SELECT code, name, level, parent_code, ST_AsBinary(geom) AS wkb
        FROM admin_unit WHERE valid_to IS NULL OR valid_to > now()""")
    ).all()
    by_level: dict[str, list[AdminUnit]] = defaultdict(list)
    names: dict[str, str] = {}
    for r in admins:
        names[r.code] = r.name
        geom = shapely.from_wkb(r.wkb) if r.wkb is not None else None
        by_level[r.level].append(AdminUnit(r.code, r.name, r.level, geom, r.parent_code))
    roads = [
        RoadWay(r.osm_id, r.name, shapely.from_wkb(r.wkb), r.kind, dict(r.tags or {}))
        for r in conn.execute(
            text("""SELECT osm_id, name, kind, tags, ST_AsBinary(geom) AS wkb
                 FROM road WHERE name IS NOT NULL ORDER BY osm_id""")
        )
    ]
    buildings = [
        BuildingIn(
            r.id,
            shapely.from_wkb(r.wkb),
            r.osm_id,
            r.name,
            r.kind_detail,
            r.addr_street,
            r.addr_housenumber,
            r.floors,
            r.households_est,
        )
        for r in conn.execute(
            text("""SELECT id, osm_id, name, kind_detail, addr_street,
                     addr_housenumber, floors, households_est, ST_AsBinary(geom) AS wkb FROM building ORDER BY id""")
        )
    ]
    points = [
        AddressPointIn(shapely.from_wkb(r.wkb), r.osm_id, r.kind, r.name, r.addr_street, r.addr_housenumber)
        for r in conn.execute(
            text("""SELECT osm_id, kind, name, addr_street, addr_housenumber,
                  ST_AsBinary(geom) AS wkb FROM demo_address_point ORDER BY id""")
        )
    ]
    landuse = [
        LanduseIn(
            r.osm_id,
            r.kind,
            r.name,
            shapely.from_wkb(r.wkb),
            shapely.from_wkb(r.label_wkb) if r.label_wkb is not None else None,
        )
        for r in conn.execute(
            text("""SELECT osm_id, kind, name, ST_AsBinary(geom) AS wkb,
                   CASE WHEN label IS NULL THEN NULL ELSE ST_AsBinary(label) END AS label_wkb
                   FROM landuse WHERE name IS NOT NULL ORDER BY osm_id""")
        )
    ]
    pois = [
        PoiIn(r.name, shapely.from_wkb(r.wkb), r.kind)
        for r in conn.execute(
            text("""SELECT name, kind, ST_AsBinary(geom) AS wkb FROM poi
                WHERE name IS NOT NULL ORDER BY id""")
        )
    ]
    return {
        "districts": [d for d in by_level["district"] if d.geom is not None],
        "townships": [d for d in by_level["township"] if d.geom is not None],
        "communities": [d for d in by_level["community"] if d.geom is not None],
        "roads": roads,
        "buildings": buildings,
        "address_points": points,
        "pois": pois,
        "admin_names": names,
        "landuse": landuse,
    }


def road_lines_named(conn: Connection, names: set[str]) -> dict[str, list]:
    """Lines of the roads whose cleaned name is one of ``names`` (the geocoder's axes of new roads)."""
    from address_registry.build import clean_road_name

    lines: dict[str, list] = defaultdict(list)
    if names:
        for r in conn.execute(text("SELECT name, ST_AsBinary(geom) AS wkb FROM road WHERE name IS NOT NULL AND NOT tags ? 'synthetic_tile'")):
            name = clean_road_name(r.name)
            if name in names:
                lines[name].append(shapely.from_wkb(r.wkb))
    return dict(lines)


def has_tiled_city(conn: Connection) -> bool:
    """Whether the roads hold the translated copies of a tiled synthetic city (`shequ demo synth --tiles`)."""
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM road WHERE tags ? 'synthetic_tile')")).scalar_one())


def load_geocoder_inputs(conn: Connection) -> dict[str, Any]:
    """Active addresses (lean: without their history fields, streamed), aliases, road lines by name and
    nameable admin units for `Geocoder`."""
    from address_registry.build import clean_road_name

    records = list(lean_records(conn))
    aliases = current_aliases(conn)
    road_names = {r.components.get("road") for r in records if r.level == "road"}
    lines: dict[Any, list] = defaultdict(list)
    for r in conn.execute(text("SELECT name, ST_AsBinary(geom) AS wkb FROM road WHERE name IS NOT NULL AND NOT tags ? 'synthetic_tile'")):
        name = clean_road_name(r.name)
        if name in road_names:
            lines[name].append(shapely.from_wkb(r.wkb))
    admins = [
        AdminName(r.code, r.name, r.level, r.lon, r.lat, r.parent_code, r.extent_m)
        for r in conn.execute(
            text("""SELECT code, name, level, parent_code, ST_X(p) AS lon, ST_Y(p) AS lat,
                  ST_MaxDistance(ST_Transform(p, 32651), ST_Transform(geom, 32651)) AS extent_m
                  FROM (SELECT *, ST_PointOnSurface(geom) AS p FROM admin_unit
                        WHERE level IN ('district', 'township', 'community') AND geom IS NOT NULL
                          AND (valid_to IS NULL OR valid_to > now())) a""")
        )
    ]
    return {
        "records": records,
        "aliases": aliases,
        "road_lines": dict(lines),
        "admin_units": admins,
        "extents": footprint_extents(conn),
    }


def footprint_extents(conn: Connection, codes: list[str] | None = None) -> dict[str, float]:
    """Per active house number and building (all, or those of ``codes``): metres from its point to the
    farthest corner of its footprints (its own and its buildings'), in UTM 51N (the geocoder's radius of a
    surveyed answer)."""
    rows = conn.execute(
        text("""
        WITH fp AS (
            SELECT code, geom AS pt, building_id AS bid FROM standard_address
            WHERE valid_to IS NULL AND status = 'active' AND geom IS NOT NULL
              AND level IN ('house_number', 'building')
              AND (CAST(:codes AS text[]) IS NULL OR code = ANY(CAST(:codes AS text[])))
        ), members AS (
            SELECT code, pt, bid FROM fp WHERE bid IS NOT NULL
            UNION ALL
            SELECT p.code, p.pt, c.building_id FROM fp p
            JOIN standard_address c ON c.parent_code = p.code AND c.valid_to IS NULL
             AND c.level = 'building' AND c.building_id IS NOT NULL
        )
        SELECT m.code, max(ST_MaxDistance(ST_Transform(m.pt, 32651), ST_Transform(b.geom, 32651))) AS extent
        FROM members m JOIN building b ON b.id = m.bid GROUP BY m.code"""),
        {"codes": codes},
    )
    return {r.code: float(r.extent) for r in rows}
