"""Load the demo city (real public data in ../shared/data) into PostGIS.

The readers (`geo.demo_files`) turn the files into plain records; `load_demo` writes each layer in its
own transaction with upserts keyed on the source ids, so running it twice changes nothing. The household
estimate rule is documented in `geo.demo_files`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import shapely

from geo.demo_files import (  # noqa: F401  (re-exported: the demo's readers keep their old import path)
    DemoDataMissing,
    LayerCount,
    households_estimate,
    read_admin_units,
    read_roads,
    read_tilezen,
    require_files,
)

# -- writer ---------------------------------------------------------------------------------------

_UPSERTS = {
    "admin_unit": """
        INSERT INTO admin_unit (code, name, level, parent_code, source, properties, geom)
        VALUES (:code, :name, :level, :parent_code, :source, CAST(:properties AS jsonb),
                ST_Multi(ST_GeomFromWKB(:wkb, 4326)))
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,
            parent_code = EXCLUDED.parent_code, source = EXCLUDED.source, properties = EXCLUDED.properties,
            geom = EXCLUDED.geom""",
    "road": """
        INSERT INTO road (osm_id, name, name_en, kind, oneway, node_ids, tags, geom)
        VALUES (:osm_id, :name, :name_en, :kind, :oneway, :node_ids, CAST(:tags AS jsonb), ST_GeomFromWKB(:wkb, 4326))
        ON CONFLICT (osm_id) DO UPDATE SET name = EXCLUDED.name, name_en = EXCLUDED.name_en, kind = EXCLUDED.kind,
            oneway = EXCLUDED.oneway, node_ids = EXCLUDED.node_ids, tags = EXCLUDED.tags, geom = EXCLUDED.geom""",
    "building": """
        INSERT INTO building (osm_id, name, kind, kind_detail, height_m, floors, area_m2, households_est,
                              addr_street, addr_housenumber, tags, geom)
        VALUES (:osm_id, :name, :kind, :kind_detail, :height_m, :floors, :area_m2, :households_est,
                :addr_street, :addr_housenumber, CAST(:tags AS jsonb), ST_Multi(ST_GeomFromWKB(:wkb, 4326)))
        ON CONFLICT (osm_id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
            kind_detail = EXCLUDED.kind_detail, height_m = EXCLUDED.height_m, floors = EXCLUDED.floors,
            area_m2 = EXCLUDED.area_m2, households_est = EXCLUDED.households_est,
            addr_street = EXCLUDED.addr_street, addr_housenumber = EXCLUDED.addr_housenumber,
            tags = EXCLUDED.tags, geom = EXCLUDED.geom""",
    "poi": """
        INSERT INTO poi (osm_id, kind, name, tags, geom)
        VALUES (:osm_id, :kind, :name, CAST(:tags AS jsonb), ST_GeomFromWKB(:wkb, 4326))
        ON CONFLICT (osm_id, kind) DO UPDATE SET name = EXCLUDED.name, tags = EXCLUDED.tags, geom = EXCLUDED.geom""",
    "water": """
        INSERT INTO water (osm_id, kind, name, geom)
        VALUES (:osm_id, :kind, :name, ST_Multi(ST_GeomFromWKB(:wkb, 4326)))
        ON CONFLICT (osm_id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name, geom = EXCLUDED.geom""",
    "railway": """
        INSERT INTO railway (osm_id, kind, name, geom)
        VALUES (:osm_id, :kind, :name, ST_Multi(ST_GeomFromWKB(:wkb, 4326)))
        ON CONFLICT (osm_id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name, geom = EXCLUDED.geom""",
    "landuse": """
        INSERT INTO landuse (osm_id, kind, name, label, geom)
        VALUES (:osm_id, :kind, :name, ST_GeomFromWKB(CAST(:label_wkb AS bytea), 4326), ST_Multi(ST_GeomFromWKB(:wkb, 4326)))
        ON CONFLICT (osm_id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name, label = EXCLUDED.label,
            geom = EXCLUDED.geom""",
    "demo_address_point": """
        INSERT INTO demo_address_point (osm_id, kind, kind_detail, name, addr_street, addr_housenumber, geom)
        VALUES (:osm_id, :kind, :kind_detail, :name, :addr_street, :addr_housenumber, ST_GeomFromWKB(:wkb, 4326))
        ON CONFLICT (osm_id, kind) DO UPDATE SET kind_detail = EXCLUDED.kind_detail, name = EXCLUDED.name,
            addr_street = EXCLUDED.addr_street, addr_housenumber = EXCLUDED.addr_housenumber, geom = EXCLUDED.geom""",
}


def _params(rec: dict) -> dict:
    out = {k: v for k, v in rec.items() if k != "geom"}
    geom = rec.get("geom")
    out["wkb"] = None if geom is None else shapely.to_wkb(geom)
    for key in ("tags", "properties"):
        if key in out:
            out[key] = json.dumps(out[key], ensure_ascii=False)
    return out


def write_layer(
    engine,
    table: str,
    records: list[dict],
    progress: Callable[[Iterable], Iterable] | None = None,
    batch: int = 500,
) -> int:
    """Upsert one layer in one transaction; returns the table's row count afterwards."""
    from sqlalchemy import text

    stmt = text(_UPSERTS[table])
    chunks = [records[i : i + batch] for i in range(0, len(records), batch)]
    with engine.begin() as conn:
        if table == "admin_unit":
            conn.execute(text("SET CONSTRAINTS ALL DEFERRED"))
        for chunk in progress(chunks) if progress else chunks:
            conn.execute(stmt, [_params(r) for r in chunk])
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # table from _UPSERTS keys


def load_demo(engine, shared: Path, progress_factory=None) -> list[LayerCount]:
    """Load every demo layer; `progress_factory(desc, total)` returns a wrapper for progress bars."""
    shared = Path(shared)
    require_files(shared)

    def wrap(desc: str, n: int):
        if progress_factory is None:
            return None
        return lambda it: progress_factory(it, desc, n)

    counts: list[LayerCount] = []
    admin = read_admin_units(shared)
    n = write_layer(engine, "admin_unit", admin, wrap("行政区划 admin units", (len(admin) + 499) // 500))
    counts.append(
        LayerCount("admin_unit", n, note=f"{sum(u['geom'] is not None for u in admin)} with boundaries")
    )

    roads = read_roads(shared)
    n = write_layer(engine, "road", roads, wrap("道路 roads", (len(roads) + 499) // 500))
    counts.append(LayerCount("road", n, note=f"{len({r['name'] for r in roads if r['name']})} road names"))

    tz = read_tilezen(shared)
    for table, key, label in (
        ("building", "buildings", "建筑 buildings"),
        ("poi", "pois", "兴趣点 POIs"),
        ("water", "water", "水系 water"),
        ("railway", "railways", "铁路 railways"),
        ("demo_address_point", "address_points", "门址点 address points"),
        ("landuse", "landuse", "用地（小区等） named land use"),
    ):
        recs = tz[key]
        n = write_layer(engine, table, recs, wrap(label, (len(recs) + 499) // 500))
        skipped = len(tz["buildings_without_footprint"]) if table == "building" else 0
        note = (
            "1 OSM building id has only a label point, no footprint"
            if skipped == 1
            else (f"{skipped} OSM building ids have no footprint" if skipped else "")
        )
        if table == "building":
            note = (
                note + "; " if note else ""
            ) + f"{sum(b['households_est'] for b in recs)} households (estimate)"
        counts.append(LayerCount(table, n, skipped, note))
    return counts
