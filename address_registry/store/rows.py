"""The columns of a `standard_address` row and its conversion to a record and to JSON."""

from __future__ import annotations

from typing import Any

import shapely

from address_registry.records import AddressRecord, format_components

_COLUMNS = """id, code, version, level, parent_code, district_code, township_code, community_code,
    components, full_text, normalized_text, ST_X(geom) AS lon, ST_Y(geom) AS lat, building_id, source, status,
    valid_from, valid_to, changed_by, change_reason, related_codes, compound_code,
    CASE WHEN area IS NULL THEN NULL ELSE ST_AsBinary(area) END AS area_wkb"""


def _record(row) -> AddressRecord:
    m = row._mapping
    return AddressRecord(
        code=m["code"],
        level=m["level"],
        components=dict(m["components"]),
        lon=m["lon"],
        lat=m["lat"],
        parent_code=m["parent_code"],
        district_code=m["district_code"],
        township_code=m["township_code"],
        community_code=m["community_code"],
        building_id=m["building_id"],
        source=m["source"],
        compound_code=m["compound_code"],
        area=shapely.from_wkb(bytes(m["area_wkb"])) if m["area_wkb"] is not None else None,
        status=m["status"],
        version=m["version"],
        extra={
            "changed_by": m["changed_by"],
            "change_reason": m["change_reason"],
            "valid_from": m["valid_from"],
            "valid_to": m["valid_to"],
            "related_codes": list(m["related_codes"] or []),
            "id": m["id"],
        },
    )


def record_to_json(rec: AddressRecord) -> dict[str, Any]:
    """An address version as JSON (the API's address shape)."""
    extra = rec.extra or {}
    return {
        "address_code": rec.code,
        "version": rec.version,
        "level": rec.level,
        "parent_code": rec.parent_code,
        "formatted": format_components(rec.components),
        "components": rec.components,
        "normalized_text": rec.normalized,
        "lon": rec.lon,
        "lat": rec.lat,
        "district_code": rec.district_code,
        "township_code": rec.township_code,
        "community_code": rec.community_code,
        "compound_code": rec.compound_code,
        "building_id": rec.building_id,
        "source": rec.source,
        "status": rec.status,
        "valid_from": _iso(extra.get("valid_from")),
        "valid_to": _iso(extra.get("valid_to")),
        "changed_by": extra.get("changed_by"),
        "change_reason": extra.get("change_reason"),
        "related_codes": extra.get("related_codes", []),
    } | ({"area": shapely.geometry.mapping(rec.area)} if rec.area is not None else {})


def _iso(moment: Any) -> str | None:
    """A timestamp as ISO 8601 text (None when absent)."""
    return moment.isoformat() if moment else None
