"""Writing the synthetic city of `shequ demo synth` (address_registry.synth): COPY, in the caller's transaction.

A synthetic city goes into a database of its own: it is refused where the registry holds addresses that
are not synthetic (the demo's), and it replaces an earlier synthetic city whole.
"""

from __future__ import annotations

import json

import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from address_registry.synth import (
    SYNTH_PROVINCE_NAME,
    SYNTH_SOURCE,
    SYNTH_USER,
    TILE_TAG,
    SynthCity,
    TileBase,
)


def real_address_count(conn: Connection) -> int:
    """Current registry rows that are not synthetic."""
    return int(
        conn.execute(
            text("SELECT count(*) FROM standard_address WHERE valid_to IS NULL AND source <> :s"), {"s": SYNTH_SOURCE}
        ).scalar_one()
    )


def has_districts(conn: Connection) -> bool:
    """Whether admin_unit holds district polygons (the registry's checks and the geocoder read them)."""
    return bool(conn.execute(
        text("SELECT EXISTS (SELECT 1 FROM admin_unit WHERE level = 'district' AND geom IS NOT NULL)")
    ).scalar_one())


def remove_synthetic(conn: Connection) -> dict[str, int]:
    """Delete every synthetic address (all versions), alias and building."""
    out = {}
    out["addresses"] = conn.execute(
        text("DELETE FROM standard_address WHERE source = :s"), {"s": SYNTH_SOURCE}
    ).rowcount
    out["aliases"] = conn.execute(text("DELETE FROM address_alias WHERE source = :s"), {"s": SYNTH_SOURCE}).rowcount
    out["buildings"] = conn.execute(text("DELETE FROM building WHERE tags ? 'synthetic'")).rowcount
    out["roads"] = conn.execute(text("DELETE FROM road WHERE tags ? :t"), {"t": TILE_TAG}).rowcount
    # the districts of tiles: kept where townships / communities were derived under them (`grid boundaries`);
    # `write_tile_base` updates them in place
    out["districts"] = conn.execute(text("""DELETE FROM admin_unit a WHERE a.source = :s AND a.level = 'district'
        AND NOT EXISTS (SELECT 1 FROM admin_unit c WHERE c.parent_code = a.code)"""), {"s": SYNTH_SOURCE}).rowcount
    conn.execute(text("""DELETE FROM admin_unit a WHERE a.source = :s AND a.level = 'province'
        AND NOT EXISTS (SELECT 1 FROM admin_unit c WHERE c.parent_code = a.code)"""), {"s": SYNTH_SOURCE})
    return out


def write_tile_base(conn: Connection, base: TileBase) -> dict[str, int]:
    """A tile's base data: its synthetic province and districts in ``admin_unit`` (source 'synthetic',
    updated in place when they exist) and its translated roads in ``road`` (tagged ``synthetic_tile``: the
    grid boundaries divide by them; the geocoder reads its road axes from the real ways only)."""
    province = base.districts[0].parent_code if base.districts else None
    if province:
        conn.execute(text("""INSERT INTO admin_unit (code, name, level, source) VALUES (:c, :n, 'province', :s)
            ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name"""),
                     {"c": province, "n": SYNTH_PROVINCE_NAME, "s": SYNTH_SOURCE})
    props = json.dumps({"synthetic": True, "tile": base.tile.index}, ensure_ascii=False)
    for d in base.districts:
        conn.execute(text("""INSERT INTO admin_unit (code, name, level, parent_code, source, properties, geom)
            VALUES (:c, :n, 'district', :p, :s, CAST(:props AS jsonb), ST_GeomFromEWKB(decode(:g, 'hex')))
            ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, parent_code = EXCLUDED.parent_code,
              properties = EXCLUDED.properties, geom = EXCLUDED.geom, valid_to = NULL"""),
                     {"c": d.code, "n": d.name, "p": d.parent_code, "s": SYNTH_SOURCE, "props": props,
                      "g": _ewkb(shapely.multipolygons(shapely.get_parts(d.geom)))})
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:
        with cur.copy("COPY road (id, osm_id, name, kind, node_ids, tags, geom) FROM STDIN") as cp:
            for r in base.roads:
                cp.write_row((r.osm_id, r.osm_id, r.name, r.kind or "road", base.node_ids.get(r.osm_id, []),
                              json.dumps(r.tags, ensure_ascii=False), _ewkb(r.geom)))
    return {"districts": len(base.districts), "roads": len(base.roads)}


def _ewkb(geom) -> str | None:
    return None if geom is None else shapely.to_wkb(shapely.set_srid(geom, 4326), hex=True, include_srid=True)


def write_city(conn: Connection, city: SynthCity) -> dict[str, int]:
    """COPY the city's buildings, addresses and aliases (every row marked synthetic)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    # a city of 10^6 addresses takes minutes to COPY: the API's per-statement limit is not for this command
    conn.execute(text("SET LOCAL statement_timeout = 0"))
    reason = f"合成数据 synthetic city, seed {city.seed}, target {city.target_addresses}" + (
        f", tile {city.tile_index}" if city.tile_index else "")
    tag = {"synthetic": True, "seed": city.seed} | ({"tile": city.tile_index} if city.tile_index else {})
    tags = json.dumps(tag, ensure_ascii=False)
    with raw.cursor() as cur:
        with cur.copy(
            "COPY building (id, osm_id, kind, kind_detail, floors, height_m, area_m2, households_est, tags, geom)"
            " FROM STDIN"
        ) as cp:
            for b in city.buildings:
                area = shapely.area(shapely.Polygon(b.geom.exterior)) if b.geom is not None else None
                cp.write_row((b.id, b.osm_id, "building", b.kind, b.floors, 3.0 * (b.floors or 1), area,
                              b.households or 0, tags, _ewkb(shapely.multipolygons([b.geom]))))
        with cur.copy(
            "COPY standard_address (code, version, level, parent_code, district_code, township_code,"
            " community_code, components, full_text, normalized_text, geom, building_id, source, status,"
            " changed_by, change_reason, compound_code, area) FROM STDIN"
        ) as cp:
            for r in city.records:
                pt = None if r.lon is None else f"SRID=4326;POINT({r.lon!r} {r.lat!r})"
                area_ewkb = None if r.area is None else _ewkb(shapely.multipolygons(shapely.get_parts(r.area)))
                cp.write_row((r.code, r.version, r.level, r.parent_code, r.district_code, r.township_code,
                              r.community_code, json.dumps(r.components, ensure_ascii=False), r.formatted,
                              r.normalized, pt, r.building_id, r.source, r.status, SYNTH_USER, reason,
                              r.compound_code, area_ewkb))
        with cur.copy(
            "COPY address_alias (address_code, alias, normalized_alias, kind, source, changed_by) FROM STDIN"
        ) as cp:
            from address_registry.textnorm import normalize_text

            seen = set()
            for a in city.aliases:
                key = (a.address_code, normalize_text(a.alias))
                if key in seen or not key[1]:
                    continue
                seen.add(key)
                cp.write_row((a.address_code, a.alias, key[1], a.kind, SYNTH_SOURCE, SYNTH_USER))
    conn.execute(text("ANALYZE building"))
    conn.execute(text("ANALYZE standard_address"))
    return {"buildings": len(city.buildings), "addresses": len(city.records), "aliases": len(seen)}
