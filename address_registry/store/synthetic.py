"""Writing the synthetic city of `shequ demo synth` (address_registry.synth): COPY, in the caller's transaction.

A synthetic city goes into a database of its own: it is refused where the registry holds addresses that
are not synthetic (the demo's), and it replaces an earlier synthetic city whole.
"""

from __future__ import annotations

import json

import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from address_registry.synth import SYNTH_SOURCE, SYNTH_USER, SynthCity


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
    return out


def _ewkb(geom) -> str | None:
    return None if geom is None else shapely.to_wkb(shapely.set_srid(geom, 4326), hex=True, include_srid=True)


def write_city(conn: Connection, city: SynthCity) -> dict[str, int]:
    """COPY the city's buildings, addresses and aliases (every row marked synthetic)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    # a city of 10^6 addresses takes minutes to COPY: the API's per-statement limit is not for this command
    conn.execute(text("SET LOCAL statement_timeout = 0"))
    reason = f"合成数据 synthetic city, seed {city.seed}, target {city.target_addresses}"
    tags = json.dumps({"synthetic": True, "seed": city.seed}, ensure_ascii=False)
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
