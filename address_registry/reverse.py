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

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from address_registry import accuracy, store
from address_registry.records import AddressRecord, format_components
from address_registry.store.reverse import ReverseParts

if TYPE_CHECKING:
    from address_registry.reverse_index import ReverseIndex

FOOTPRINT_TOLERANCE_M = 5.0


def _item(code: str, level: str, components: dict[str, Any], lon: float | None, lat: float | None,
          source: str | None, parent_source: str | None, distance_m: float, match: str,
          extent_m: float | None) -> dict[str, Any]:
    """One answer: a building record takes its accuracy from its house number's (its parent's) source."""
    source = parent_source if level == "building" and parent_source else source
    kind = "generated" if source == "generated" else "surveyed"
    return {
        "address_code": code,
        "formatted": format_components(components),
        "components": components,
        "lon": lon,
        "lat": lat,
        "level": level,
        "distance_m": round(distance_m, 2),
        "match": match,
        "accuracy": kind,
        "radius_m": accuracy.radius_m(kind, extent_m if extent_m is not None else 20.0),
        "source": source,
    }


def _ranked(items: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The footprint's answer first unless its number is generated and a real point is at the spot."""
    if len(items) > 1 and items[0]["match"] == "footprint" and items[0]["source"] == "generated":
        real = next((i for i in items[1:] if i["source"] not in (None, "generated")
                     and i["distance_m"] <= FOOTPRINT_TOLERANCE_M), None)
        if real is not None:
            # a real address point at the spot names the place better than the footprint's generated number
            items.remove(real)
            items.insert(0, real)
    return items[: max(k, 1)]


def reverse(conn: Connection, lon: float, lat: float, k: int = 1) -> list[dict[str, Any]]:
    """The addresses at (lon, lat) WGS84, best first: the footprint's address, then the nearest points.

    Statement by statement (footprint, nearest points, a building's parent): `locate` reads the same in
    one statement; this is its reference and its fallback."""
    parents: dict[str, str | None] = {}

    def parent_source(rec: AddressRecord) -> str | None:
        if rec.level != "building" or not rec.parent_code:
            return None
        if rec.parent_code not in parents:
            parent = store.current(conn, rec.parent_code)
            parents[rec.parent_code] = parent.source if parent is not None else None
        return parents[rec.parent_code]

    def item(rec: AddressRecord, distance_m: float, match: str, extent_m: float | None) -> dict[str, Any]:
        return _item(rec.code, rec.level, rec.components, rec.lon, rec.lat, rec.source, parent_source(rec),
                     distance_m, match, extent_m)

    items = []
    hit = store.footprint_address(conn, lon, lat, FOOTPRINT_TOLERANCE_M)
    near = store.nearest(conn, lon, lat, k=max(k, 3))
    if hit is not None:
        rec, dist, extent = hit
        items.append(item(rec, dist, "footprint", extent))
    for rec, dist in near:
        if hit is not None and rec.code == hit[0].code:
            continue
        items.append(item(rec, dist, "nearest", None))
    return _ranked(items, k)


def locate_by_parts(conn: Connection, lon: float, lat: float, k: int = 1) -> dict[str, Any]:
    """`locate`, statement by statement (7–9 statements): the reference of the one-statement path and the
    path of a database without the grids feature's `grid` table."""
    near = reverse(conn, lon, lat, k=k)
    admin = store.admin_containing(conn, lon, lat)
    grid = store.grid_containing(conn, lon, lat)
    compound = store.compound_containing(conn, lon, lat)
    return {
        "nearby": near,
        "district": admin.get("district"),
        "township": admin.get("township"),
        "community": admin.get("community"),
        "grid": grid,
        "compound": {"code": compound.code, "name": compound.components.get("compound")} if compound else None,
    }


def locate(conn: Connection, lon: float, lat: float, k: int = 1) -> dict[str, Any]:
    """What is at (lon, lat) WGS84: ``nearby`` (the addresses, best first, at most ``k``), ``district``,
    ``township``, ``community``, ``grid`` and ``compound`` — read in one statement
    (`store.reverse_parts`)."""
    parts = store.reverse_parts(conn, lon, lat, k=max(k, 3), max_m=FOOTPRINT_TOLERANCE_M)
    if parts is None:
        return locate_by_parts(conn, lon, lat, k=k)
    return _answer(parts, k)


def locate_in_memory(index: ReverseIndex, lon: float, lat: float, k: int = 1,
                     now: datetime | None = None) -> dict[str, Any]:
    """`locate`, answered from the in-memory reverse index (`address_registry.reverse_cache`): the same
    five parts, read without a statement (``now``: the time admin units' ``valid_to`` is compared with)."""
    parts = index.parts(lon, lat, k=max(k, 3), max_m=FOOTPRINT_TOLERANCE_M,
                        now=now if now is not None else datetime.now(UTC))
    return _answer(parts, k)


def _answer(parts: ReverseParts, k: int) -> dict[str, Any]:
    items = []
    hit = parts.footprint
    if hit is not None:
        items.append(_item(hit.code, hit.level, hit.components, hit.lon, hit.lat, hit.source, hit.parent_source,
                           hit.distance_m, "footprint", hit.extent_m))
    for n in parts.nearest:
        if hit is not None and n.code == hit.code:
            continue
        items.append(_item(n.code, n.level, n.components, n.lon, n.lat, n.source, n.parent_source,
                           n.distance_m, "nearest", None))
    return {
        "nearby": _ranked(items, k),
        "district": parts.admin.get("district"),
        "township": parts.admin.get("township"),
        "community": parts.admin.get("community"),
        "grid": parts.grid,
        "compound": parts.compound,
    }
