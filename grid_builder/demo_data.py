"""Read the shared demo files (../shared/data) straight into plain data, without a database.

Used by the benchmark and the pure-core unit tests so that they run on the same real buildings, roads
and districts that `shequ demo load` puts into PostGIS: it calls the loader's own pure readers
(``geo.demo_files``), so households follow the rule documented there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from shapely.geometry import LineString, MultiPolygon, Polygon

DEMO_BBOX = (121.4802, 31.2264, 121.5208, 31.2510)  # Tilezen extract, lon/lat
RESIDENTIAL_KINDS = {"apartments", "residential", "house", "dormitory"}
# highway classes that bound street blocks (links, service roads and footways do not)
BLOCK_ROAD_KINDS = {
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "unclassified",
    "residential",
    "living_street",
}


@dataclass
class Building:
    """A demo building footprint (WGS84) with its estimated households."""

    id: int
    geom: Polygon | MultiPolygon  # WGS84
    households: float = 0.0
    name: str | None = None


@dataclass
class Road:
    """A demo road (WGS84) with its OSM kind, name and tags."""

    id: int
    kind: str
    geom: LineString  # WGS84
    name: str | None = None
    tags: dict = field(default_factory=dict)


@dataclass
class DemoData:
    """The demo base layers read from the shared files (no database)."""

    buildings: list[Building]
    roads: list[Road]
    water: list[Polygon | MultiPolygon]
    rail: list[LineString]
    districts: dict[str, Polygon | MultiPolygon]  # code -> WGS84 geometry (districts holding buildings)
    district_names: dict[str, str] = field(default_factory=dict)


def shared_data_dir() -> Path:
    """The shared data folder (``SHEQU_SHARED_DATA_DIR`` or ``../shared/data`` next to the checkout)."""
    env = os.environ.get("SHEQU_SHARED_DATA_DIR") or os.environ.get("SHEQU_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def is_block_road(kind: str, tags: dict | None) -> bool:
    """Roads that bound street blocks: surface carriageways (no tunnels, no links, no footways)."""
    tags = tags or {}
    if kind not in BLOCK_ROAD_KINDS:
        return False
    if tags.get("tunnel") in ("yes", "building_passage") or str(tags.get("layer", "0")).startswith("-"):
        return False
    return True


def is_block_rail(kind: str | None) -> bool:
    """True for railways that bound street blocks (not subway, monorail or funicular)."""
    return (kind or "rail") not in ("subway", "monorail", "funicular")


@lru_cache(maxsize=2)
def load_demo(data_dir: str | None = None) -> DemoData:
    """The demo city as plain data, read with the same readers as ``shequ demo load`` (geo.demo_files)."""
    from geo.demo_files import read_admin_units, read_roads, read_tilezen

    base = Path(data_dir) if data_dir else shared_data_dir()
    tz = read_tilezen(base)
    buildings = [
        Building(
            id=int(b["osm_id"]), geom=b["geom"], households=float(b["households_est"]), name=b.get("name")
        )
        for b in tz["buildings"]
    ]
    buildings.sort(key=lambda b: b.id)
    water = [w["geom"] for w in tz["water"]]
    rail = [ln for r in tz["railways"] if is_block_rail(r["kind"]) for ln in r["geom"].geoms]
    roads = [
        Road(id=int(r["osm_id"]), kind=r["kind"], geom=r["geom"], name=r.get("name"), tags=r["tags"])
        for r in read_roads(base)
    ]
    all_districts = [u for u in read_admin_units(base) if u["level"] == "district" and u["geom"] is not None]
    held = districts_holding({u["code"]: u["geom"] for u in all_districts}, [b.geom for b in buildings])
    districts = {u["code"]: u["geom"] for u in all_districts if u["code"] in held}
    names = {u["code"]: u["name"] for u in all_districts if u["code"] in held}
    return DemoData(
        buildings=buildings, roads=roads, water=water, rail=rail, districts=districts, district_names=names
    )


def districts_holding(districts: dict[str, object], building_geoms: list) -> list[str]:
    """Codes of the districts that contain at least one building anchor (``ST_PointOnSurface``), sorted —
    the demo's district set comes from the data (the Bund extract reaches into 黄浦区, 浦东新区 and the
    North Bund part of 虹口区), never from a hard-coded list. Same rule as ``store.districts_with_buildings``."""
    import shapely

    if not building_geoms:
        return []
    anchors = shapely.point_on_surface(shapely.from_wkb([g.wkb for g in building_geoms]))
    out = []
    for code, geom in districts.items():
        if geom is None:
            continue
        shapely.prepare(geom)
        if shapely.contains(geom, anchors).any():
            out.append(code)
    return sorted(out)
