"""Read the shared demo files (../shared/data) straight into plain data, without a database.

Used by the benchmark and the pure-core unit tests so that they run on the same real buildings, roads
and districts that `shequ demo load` puts into PostGIS. The households rule is the one documented in
`docs/architecture.md` (floors = max(1, round(height / 3)); residential kinds count all floor area,
buildings of unknown kind 60 %, other kinds 0; one household per 90 m² of gross floor area).
"""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from shapely.geometry import LineString, MultiPolygon, Polygon, shape
from shapely.ops import unary_union

from grid_builder.geom import to_metric

DEMO_BBOX = (121.4802, 31.2264, 121.5208, 31.2510)  # Tilezen extract, lon/lat
DEMO_DISTRICTS = {"310101": "黄浦区", "310115": "浦东新区"}
RESIDENTIAL_KINDS = {"apartments", "residential", "house", "dormitory"}
# highway classes that bound street blocks (links, service roads and footways do not)
BLOCK_ROAD_KINDS = {
    "motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential", "living_street",
}


@dataclass
class Building:
    id: int
    geom: Polygon | MultiPolygon  # WGS84
    households: float = 0.0
    name: str | None = None


@dataclass
class Road:
    id: int
    kind: str
    geom: LineString  # WGS84
    name: str | None = None
    tags: dict = field(default_factory=dict)


@dataclass
class DemoData:
    buildings: list[Building]
    roads: list[Road]
    water: list[Polygon | MultiPolygon]
    rail: list[LineString]
    districts: dict[str, Polygon | MultiPolygon]  # code -> WGS84 geometry


def shared_data_dir() -> Path:
    env = os.environ.get("SHEQU_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def households_estimate(kind_detail: str | None, height_m: float | None, footprint_m2: float) -> float:
    floors = max(1, round((height_m or 0.0) / 3.0))
    if kind_detail in RESIDENTIAL_KINDS:
        share = 1.0
    elif not kind_detail:
        share = 0.6
    else:
        share = 0.0
    return footprint_m2 * floors * share / 90.0


def _gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    try:  # the project's own helper, when present
        from gis_api.crs import gcj02_to_wgs84  # type: ignore

        return gcj02_to_wgs84(lon, lat)
    except ImportError:
        pass
    a, ee = 6378245.0, 0.00669342162296594323

    def tlat(x, y):
        r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
        r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
        r += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
        r += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
        return r

    def tlon(x, y):
        r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
        r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
        r += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
        r += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
        return r

    dlat = tlat(lon - 105.0, lat - 35.0)
    dlon = tlon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - ee * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((a * (1 - ee)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (a / sqrtmagic * math.cos(radlat) * math.pi)
    return lon - dlon, lat - dlat


def _convert_gcj(geom):
    from shapely import transform

    def fn(coords):
        import numpy as np

        out = np.array([_gcj02_to_wgs84(x, y) for x, y in coords])
        return out

    return transform(geom, fn)


@lru_cache(maxsize=2)
def load_demo(data_dir: str | None = None) -> DemoData:
    base = Path(data_dir) if data_dir else shared_data_dir()
    bund = base / "shanghai-bund"
    fc = json.loads((bund / "shanghai_bund_lujiazui_tilezen.geojson").read_text(encoding="utf-8"))
    pieces: dict[int, list] = {}
    props: dict[int, dict] = {}
    water, rail = [], []
    for f in fc["features"]:
        p = f["properties"]
        layer = p.get("layer")
        gtype = f["geometry"]["type"]
        if layer == "buildings" and p.get("kind") == "building" and gtype in ("Polygon", "MultiPolygon"):
            pieces.setdefault(p["id"], []).append(shape(f["geometry"]).buffer(0))
            props.setdefault(p["id"], p)
        elif layer == "water" and gtype in ("Polygon", "MultiPolygon"):
            water.append(shape(f["geometry"]).buffer(0))
        elif layer == "roads" and p.get("kind") == "rail" and not p.get("is_tunnel"):
            g = shape(f["geometry"])
            rail.extend(list(g.geoms) if g.geom_type == "MultiLineString" else [g])
    buildings = []
    for bid, parts in pieces.items():
        g = unary_union(parts)
        if g.is_empty:
            continue
        p = props[bid]
        hh = households_estimate(p.get("kind_detail"), p.get("height"), to_metric(g).area)
        buildings.append(Building(id=int(bid), geom=g, households=hh, name=p.get("name")))
    buildings.sort(key=lambda b: b.id)
    roads = _read_osm_roads(bund / "shanghai_center_roads_overpass.osm")
    districts = {}
    dfc = json.loads((base / "admin-divisions" / "shanghai-districts.geojson").read_text(encoding="utf-8"))
    for f in dfc["features"]:
        code = str(f["properties"].get("adcode"))
        if code in DEMO_DISTRICTS:
            districts[code] = _convert_gcj(shape(f["geometry"]).buffer(0))
    return DemoData(buildings=buildings, roads=roads, water=water, rail=rail, districts=districts)


def _read_osm_roads(path: Path) -> list[Road]:
    nodes: dict[int, tuple[float, float]] = {}
    roads: list[Road] = []
    for _, el in ET.iterparse(path, events=("end",)):
        if el.tag == "node":
            nodes[int(el.get("id"))] = (float(el.get("lon")), float(el.get("lat")))
            el.clear()
        elif el.tag == "way":
            tags = {t.get("k"): t.get("v") for t in el.findall("tag")}
            refs = [int(n.get("ref")) for n in el.findall("nd")]
            coords = [nodes[r] for r in refs if r in nodes]
            if "highway" in tags and len(coords) >= 2:
                roads.append(Road(id=int(el.get("id")), kind=tags["highway"], geom=LineString(coords),
                                  name=tags.get("name"), tags=tags))
            el.clear()
    return roads
