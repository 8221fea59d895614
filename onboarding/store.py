"""SQL of onboarding: the `city` table, a city's rows in the base layer tables, district areas.

A layer is replaced in one transaction: this city's rows of the table are deleted and the new ones
inserted (so a re-import replaces, never duplicates); rows whose source id already belongs to another
city or to the demo are refused (`RowsOfAnotherCity`) before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

import shapely
from shapely import wkb as shapely_wkb
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from onboarding.errors import CityNotFound, RowsOfAnotherCity

TABLES = ("road", "building", "poi", "water", "railway", "demo_address_point")
_KEYED_BY_KIND = ("poi", "demo_address_point")  # unique (osm_id, kind)

_INSERTS = {
    "road": """
        INSERT INTO road (city_id, osm_id, name, name_en, kind, oneway, node_ids, tags, geom)
        VALUES (:city_id, :osm_id, :name, :name_en, :kind, :oneway, :node_ids, CAST(:tags AS jsonb),
                ST_GeomFromWKB(:wkb, 4326))""",
    "building": """
        INSERT INTO building (city_id, osm_id, name, kind, kind_detail, height_m, floors, area_m2, households_est,
                              addr_street, addr_housenumber, tags, geom)
        VALUES (:city_id, :osm_id, :name, :kind, :kind_detail, :height_m, :floors, :area_m2, :households_est,
                :addr_street, :addr_housenumber, CAST(:tags AS jsonb), ST_Multi(ST_GeomFromWKB(:wkb, 4326)))""",
    "poi": """
        INSERT INTO poi (city_id, osm_id, kind, name, tags, geom)
        VALUES (:city_id, :osm_id, :kind, :name, CAST(:tags AS jsonb), ST_GeomFromWKB(:wkb, 4326))""",
    "water": """
        INSERT INTO water (city_id, osm_id, kind, name, geom)
        VALUES (:city_id, :osm_id, :kind, :name, ST_Multi(ST_GeomFromWKB(:wkb, 4326)))""",
    "railway": """
        INSERT INTO railway (city_id, osm_id, kind, name, geom)
        VALUES (:city_id, :osm_id, :kind, :name, ST_Multi(ST_GeomFromWKB(:wkb, 4326)))""",
    "demo_address_point": """
        INSERT INTO demo_address_point (city_id, osm_id, kind, kind_detail, name, addr_street, addr_housenumber, geom)
        VALUES (:city_id, :osm_id, :kind, :kind_detail, :name, :addr_street, :addr_housenumber,
                ST_GeomFromWKB(:wkb, 4326))""",
}


def _params(rec: dict, city_id: int) -> dict:
    out = {k: v for k, v in rec.items() if k != "geom"}
    out["city_id"] = city_id
    out["wkb"] = shapely.to_wkb(rec["geom"])
    if "tags" in out:
        out["tags"] = json.dumps(out["tags"], ensure_ascii=False, default=str)
    return out


def unique_records(table: str, records: list[dict]) -> list[dict]:
    """One record per key (osm_id, or osm_id and kind): the last one wins, as in the demo loader."""
    keyed: dict = {}
    for r in records:
        keyed[(r["osm_id"], r.get("kind")) if table in _KEYED_BY_KIND else r["osm_id"]] = r
    return list(keyed.values())


def save_city(conn: Connection, name: str, district_code: str | None, outside_china: bool) -> int:
    """The id of city `name` (created, or its code/mode updated)."""
    return conn.execute(
        text(
            "INSERT INTO city (name, district_code, outside_china) VALUES (:n, :c, :o) "
            "ON CONFLICT (name) DO UPDATE SET district_code = EXCLUDED.district_code, "
            "outside_china = EXCLUDED.outside_china RETURNING id"
        ),
        {"n": name, "c": district_code, "o": outside_china},
    ).scalar_one()


def city_id_of(conn: Connection, name: str) -> int | None:
    """The id of city `name`, None when it was never imported."""
    return conn.execute(text("SELECT id FROM city WHERE name = :n"), {"n": name}).scalar()


def check_clash(conn: Connection, city_id: int | None, table: str, records: list[dict]) -> None:
    """Refuse records whose source ids belong to another city or to the demo (`city_id` None: a new city)."""
    ids = sorted({r["osm_id"] for r in records})
    clash = conn.execute(
        text(
            f"SELECT count(*) AS n, min(coalesce(c.name, 'demo 演示数据')) AS owner FROM {table} t "
            "LEFT JOIN city c ON c.id = t.city_id "
            "WHERE t.osm_id = ANY(:ids) AND t.city_id IS DISTINCT FROM :city"
        ),
        {"ids": ids, "city": -1 if city_id is None else city_id},
    ).one()
    if clash.n:
        raise RowsOfAnotherCity(
            f"{clash.n} 条 {table} 已属于其他城市 rows with the same source ids already belong to "
            f"'{clash.owner}': remove that city first (shequ city remove) or import into another database"
        )


def replace_layer(
    engine: Engine,
    city_id: int,
    table: str,
    records: list[dict],
    progress: Callable[[Iterable], Iterable] | None = None,
    batch: int = 500,
) -> int:
    """Replace the city's rows of `table` in one transaction; returns the rows written."""
    records = unique_records(table, records)
    with engine.begin() as conn:
        check_clash(conn, city_id, table, records)
        conn.execute(text(f"DELETE FROM {table} WHERE city_id = :city"), {"city": city_id})
        chunks = [records[i : i + batch] for i in range(0, len(records), batch)]
        for chunk in progress(chunks) if progress else chunks:
            conn.execute(text(_INSERTS[table]), [_params(r, city_id) for r in chunk])
    return len(records)


def finish_city(engine: Engine, city_id: int, sources: list[dict], counts: dict) -> None:
    """Record the city's sources, counts and extent (of its roads, buildings and POIs)."""
    union = " UNION ALL ".join(f"SELECT geom FROM {t} WHERE city_id = :id" for t in TABLES)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE city SET sources = CAST(:s AS jsonb), counts = CAST(:c AS jsonb), imported_at = now(), "
                "extent = (SELECT ST_MakeEnvelope(ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b), 4326) "
                f"FROM (SELECT ST_Extent(geom) AS b FROM ({union}) u) e) "
                "WHERE id = :id"
            ),
            {"id": city_id, "s": json.dumps(sources, ensure_ascii=False), "c": json.dumps(counts)},
        )


def list_cities(conn: Connection) -> list[dict]:
    """Every imported city with its code, mode, counts and extent (minlon, minlat, maxlon, maxlat)."""
    rows = conn.execute(
        text(
            "SELECT id, name, district_code, outside_china, counts, sources, imported_at, "
            "ST_XMin(extent) AS x0, ST_YMin(extent) AS y0, ST_XMax(extent) AS x1, ST_YMax(extent) AS y1 "
            "FROM city ORDER BY name"
        )
    ).mappings()
    out = []
    for r in rows:
        d = dict(r)
        d["bbox"] = None if d["x0"] is None else (d.pop("x0"), d.pop("y0"), d.pop("x1"), d.pop("y1"))
        for k in ("x0", "y0", "x1", "y1"):
            d.pop(k, None)
        out.append(d)
    return out


def city(conn: Connection, name: str) -> dict:
    """One city by name (`CityNotFound` when unknown)."""
    for c in list_cities(conn):
        if c["name"] == name:
            return c
    raise CityNotFound(f"没有名为 '{name}' 的城市 no imported city '{name}' (shequ city list)")


def remove_city(engine: Engine, name: str) -> dict:
    """Delete a city and (cascading) all of its layer rows, in one transaction; returns the rows removed."""
    with engine.begin() as conn:
        c = city(conn, name)
        removed = {
            t: conn.execute(text(f"DELETE FROM {t} WHERE city_id = :id"), {"id": c["id"]}).rowcount
            for t in TABLES
        }
        conn.execute(text("DELETE FROM city WHERE id = :id"), {"id": c["id"]})
    return removed


def district_area(conn: Connection, code: str) -> tuple[str, object] | None:
    """(name, boundary) of a GB/T 2260 unit: its own boundary, else the union of its districts'; None if unknown."""
    row = conn.execute(
        text(
            "SELECT a.name, ST_AsBinary(coalesce(a.geom, (SELECT ST_Union(d.geom) FROM admin_unit d "
            "  WHERE d.level = 'district' AND d.valid_to IS NULL AND d.geom IS NOT NULL "
            "  AND (d.parent_code = a.code OR left(d.code, 2) = left(a.code, 2) AND a.level = 'province')))) AS g "
            "FROM admin_unit a WHERE a.code = :c AND a.valid_to IS NULL"
        ),
        {"c": code},
    ).first()
    if row is None:
        return None
    return row.name, (shapely_wkb.loads(bytes(row.g)) if row.g is not None else None)


def count_rows(conn: Connection, city_id: int) -> dict[str, int]:
    """Rows of the city in each layer table."""
    return {
        t: conn.execute(text(f"SELECT count(*) FROM {t} WHERE city_id = :id"), {"id": city_id}).scalar_one()
        for t in TABLES
    }
