"""Writes of the registry: new versions, closed versions, aliases, and applying a build plan."""

from __future__ import annotations

import json
from collections import defaultdict

import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from address_registry.build import (
    RegistryPlan,
)
from address_registry.records import AddressRecord, AliasRecord
from address_registry.store.reading import all_current

BUILD_USER = "shequ address build"
#: the change reasons of a build's new codes and of its new versions (`apply_plan`, `staging.apply_staged`)
BUILD_CREATED_REASON = "初始建库 initial build from OSM data"
BUILD_UPDATED_REASON = "重新建库：源数据或上级区划变化 rebuild: source data or admin boundaries changed"


# -- writing -------------------------------------------------------------------------------------

_INSERT = text("""
    INSERT INTO standard_address (code, version, level, parent_code, district_code, township_code,
        community_code, components, full_text, normalized_text, geom, building_id, source, status,
        changed_by, change_reason, related_codes, compound_code, area)
    VALUES (:code, :version, :level, :parent_code, :district_code, :township_code, :community_code,
        CAST(:components AS jsonb), :full_text, :normalized_text,
        CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
             ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END,
        :building_id, :source, :status, :changed_by, :change_reason, :related_codes, :compound_code,
        ST_Multi(ST_GeomFromWKB(CAST(:area_wkb AS bytea), 4326)))""")


def _params(rec: AddressRecord, changed_by: str, reason: str, related: list[str] | None = None) -> dict:
    return {
        "code": rec.code,
        "version": rec.version,
        "level": rec.level,
        "parent_code": rec.parent_code,
        "district_code": rec.district_code,
        "township_code": rec.township_code,
        "community_code": rec.community_code,
        "components": json.dumps(rec.components, ensure_ascii=False),
        "full_text": rec.formatted,
        "normalized_text": rec.normalized,
        "lon": rec.lon,
        "lat": rec.lat,
        "building_id": rec.building_id,
        "source": rec.source,
        "status": rec.status,
        "changed_by": changed_by,
        "change_reason": reason,
        "related_codes": list(related if related is not None else (rec.extra or {}).get("related_codes", [])),
        "compound_code": rec.compound_code,
        "area_wkb": shapely.to_wkb(rec.area) if rec.area is not None else None,
    }


def insert_version(
    conn: Connection, rec: AddressRecord, changed_by: str, reason: str, related: list[str] | None = None
) -> None:
    """Insert a new current version of an address."""
    conn.execute(_INSERT, _params(rec, changed_by, reason, related))


def close_current(conn: Connection, code: str) -> None:
    """Close the current version of an address (valid_to = now)."""
    conn.execute(
        text("UPDATE standard_address SET valid_to = now() WHERE code = :c AND valid_to IS NULL"), {"c": code}
    )


def replace_versions(conn: Connection, recs: list[AddressRecord], changed_by: str, reason: str) -> None:
    """Close the current versions of these addresses and insert the given ones (bulk)."""
    if not recs:
        return
    conn.execute(
        text("UPDATE standard_address SET valid_to = now() WHERE code = ANY(:codes) AND valid_to IS NULL"),
        {"codes": [r.code for r in recs]},
    )
    conn.execute(_INSERT, [_params(r, changed_by, reason) for r in recs])


def close_aliases(conn: Connection, code: str, normalized: list[str]) -> int:
    """End the current aliases of an address with these normalised texts (kept as history)."""
    return conn.execute(
        text("""UPDATE address_alias SET valid_to = now()
        WHERE address_code = :c AND valid_to IS NULL AND normalized_alias = ANY(:n)"""),
        {"c": code, "n": list(normalized)},
    ).rowcount


def add_alias(conn: Connection, alias: AliasRecord, changed_by: str) -> bool:
    """Insert an alias; False when it already exists."""
    from address_registry.textnorm import normalize_text

    res = conn.execute(
        text("""
        INSERT INTO address_alias (address_code, alias, normalized_alias, kind, source, changed_by)
        VALUES (:code, :alias, :norm, :kind, :source, :by)
        ON CONFLICT (address_code, normalized_alias) WHERE valid_to IS NULL DO NOTHING"""),
        {
            "code": alias.address_code,
            "alias": alias.alias,
            "norm": normalize_text(alias.alias),
            "kind": alias.kind,
            "source": alias.source,
            "by": changed_by,
        },
    )
    return res.rowcount > 0


def same_content(a: AddressRecord, b: AddressRecord) -> bool:
    """Whether two versions say the same (every stored field; points to 7 decimals, areas normalised)."""

    def pt(r):
        return None if r.lon is None else (round(r.lon, 7), round(r.lat, 7))

    def area(r):
        return None if r.area is None else shapely.normalize(shapely.set_precision(r.area, 1e-7)).wkb

    return (
        a.level,
        a.parent_code,
        a.district_code,
        a.township_code,
        a.community_code,
        a.compound_code,
        a.components,
        a.building_id,
        a.source,
        pt(a),
        area(a),
    ) == (
        b.level,
        b.parent_code,
        b.district_code,
        b.township_code,
        b.community_code,
        b.compound_code,
        b.components,
        b.building_id,
        b.source,
        pt(b),
        area(b),
    )


def apply_plan(conn: Connection, plan: RegistryPlan, progress=None) -> dict[str, int]:
    """Write the planned registry: new addresses, new versions where the data changed, new aliases.

    Rows last written by a person (changed_by other than the build) and retired rows are left alone.
    """
    existing = {r.code: r for r in all_current(conn)}
    active_text = {r.normalized: r.code for r in existing.values() if r.status == "active"}
    counts: dict[str, int] = defaultdict(int)
    inserts = []
    closes = []
    for rec in plan.records:
        if progress:
            progress(1)
        old = existing.get(rec.code)
        owner = active_text.get(rec.normalized)
        if owner is not None and owner != rec.code:
            counts["skipped_duplicate_text"] += 1
            continue
        if old is None:
            rec.version = 1
            inserts.append(_params(rec, BUILD_USER, BUILD_CREATED_REASON))
            counts["created"] += 1
        elif old.status != "active" or old.extra.get("changed_by") != BUILD_USER:
            counts["kept_manual_or_retired"] += 1
        elif same_content(old, rec):
            counts["unchanged"] += 1
        else:
            rec.version = old.version + 1
            closes.append({"c": rec.code})
            inserts.append(_params(rec, BUILD_USER, BUILD_UPDATED_REASON))
            counts["updated"] += 1
        active_text[rec.normalized] = rec.code
    if closes:
        conn.execute(
            text("UPDATE standard_address SET valid_to = now() WHERE code = :c AND valid_to IS NULL"), closes
        )
    if inserts:
        conn.execute(_INSERT, inserts)
    known = {(r.code) for r in plan.records} | set(existing)
    alias_rows = [a for a in plan.aliases if a.address_code in known]
    for a in alias_rows:
        if add_alias(conn, a, BUILD_USER):
            counts["aliases_created"] += 1
    return dict(counts)
