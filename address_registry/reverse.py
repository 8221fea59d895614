"""Reverse geocoding: the address at a point, from the building footprint first.

1. The building footprint that holds the point (or the nearest one within `FOOTPRINT_TOLERANCE_M`)
   answers with its house number (or its building record): `match = "footprint"`.
2. Otherwise the nearest address points (house numbers and buildings): `match = "nearest"`. A real
   (osm / import / manual) address point within 5 m also comes before a footprint whose number is
   generated.

Each item carries the same `accuracy` / `radius_m` / `source` as a forward answer for that address
(address_registry.accuracy): a surveyed number's radius is its footprint's extent plus 10 m, a generated
number's is wide (its number is a guess of the odd / even rule even though its footprint is real).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from address_registry import accuracy, store
from address_registry.records import AddressRecord

FOOTPRINT_TOLERANCE_M = 5.0


def _kind(rec: AddressRecord, parent_source: str | None = None) -> tuple[str, str]:
    source = parent_source if rec.level == "building" and parent_source else rec.source
    return ("generated" if source == "generated" else "surveyed"), source


def _item(rec: AddressRecord, distance_m: float, match: str, extent_m: float | None, source_of) -> dict[str, Any]:
    kind, source = _kind(rec, source_of(rec))
    return {
        "address_code": rec.code,
        "formatted": rec.formatted,
        "components": rec.components,
        "lon": rec.lon,
        "lat": rec.lat,
        "level": rec.level,
        "distance_m": round(distance_m, 2),
        "match": match,
        "accuracy": kind,
        "radius_m": accuracy.radius_m(kind, extent_m if extent_m is not None else 20.0),
        "source": source,
    }


def reverse(conn: Connection, lon: float, lat: float, k: int = 1) -> list[dict[str, Any]]:
    """The addresses at (lon, lat) WGS84, best first: the footprint's address, then the nearest points."""
    parents: dict[str, str | None] = {}

    def source_of(rec: AddressRecord) -> str | None:
        if rec.level != "building" or not rec.parent_code:
            return None
        if rec.parent_code not in parents:
            parent = store.current(conn, rec.parent_code)
            parents[rec.parent_code] = parent.source if parent is not None else None
        return parents[rec.parent_code]

    items = []
    hit = store.footprint_address(conn, lon, lat, FOOTPRINT_TOLERANCE_M)
    near = store.nearest(conn, lon, lat, k=max(k, 3))
    if hit is not None:
        rec, dist, extent = hit
        items.append(_item(rec, dist, "footprint", extent, source_of))
    for rec, dist in near:
        if hit is not None and rec.code == hit[0].code:
            continue
        items.append(_item(rec, dist, "nearest", None, source_of))
    if len(items) > 1 and items[0]["match"] == "footprint" and items[0]["source"] == "generated":
        real = next((i for i in items[1:] if i["source"] not in (None, "generated")
                     and i["distance_m"] <= FOOTPRINT_TOLERANCE_M), None)
        if real is not None:
            # a real address point at the spot names the place better than the footprint's generated number
            items.remove(real)
            items.insert(0, real)
    return items[: max(k, 1)]
