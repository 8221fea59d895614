"""OpenStreetMap extracts (``.osm.pbf``, ``.osm`` XML) → road, building, POI, water, railway and address records.

Streaming with pyosmium (`osmium.FileProcessor`, node locations kept in its index, areas assembled from
closed ways and multipolygon relations by libosmium): one pass, nothing hand-parsed. Records have the
shape `geo.demo_files` gives the demo (roads keep their node ids for the routing topology). Relation
areas get the negative relation id (way and relation ids are separate spaces in OSM).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shapely import wkb as shapely_wkb
from shapely.geometry import LineString, MultiLineString, Point

from geo.demo_files import households_estimate
from geo.geometry import repaired_multipolygon
from onboarding.errors import NoRoads, UnreadableFile

POI_KEYS = (
    "amenity",
    "shop",
    "tourism",
    "leisure",
    "office",
    "healthcare",
    "craft",
    "historic",
    "public_transport",
)
WATER_TAGS = {("natural", "water"), ("waterway", "riverbank"), ("landuse", "reservoir"), ("landuse", "basin")}
RAIL_KINDS = {"rail", "subway", "light_rail", "tram", "narrow_gauge", "monorail"}
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)")
FLOOR_HEIGHT_M = 3.0


def _number(value: str | None) -> float | None:
    m = _NUMBER.match(value or "")
    return float(m.group(1)) if m else None


@functools.cache
def _geod():
    from pyproj import Geod

    return Geod(ellps="WGS84")


def geodesic_area_m2(geom) -> float:
    """Area of a lon/lat polygon in square metres on the WGS84 ellipsoid."""
    return abs(_geod().geometry_area_perimeter(geom)[0])


def building_record(osm_id: int, tags: dict, geom, area: float | None = None) -> dict:
    """A building record from OSM-style tags (height / building:levels) and a footprint in WGS84."""
    height = _number(tags.get("height"))
    levels = _number(tags.get("building:levels"))
    if height is None and levels is not None:
        height = levels * FLOOR_HEIGHT_M
    kind_detail = tags.get("building")
    if kind_detail in ("yes", "true", "1", ""):
        kind_detail = None
    area_m2 = area if area is not None else round(geodesic_area_m2(geom), 1)
    floors, households = households_estimate(kind_detail, height, area_m2)
    if levels is not None:
        floors = max(1, int(levels))
    return {
        "osm_id": osm_id,
        "name": tags.get("name"),
        "kind": "building",
        "kind_detail": kind_detail,
        "height_m": height,
        "floors": floors,
        "area_m2": area_m2,
        "households_est": households,
        "addr_street": tags.get("addr:street"),
        "addr_housenumber": tags.get("addr:housenumber"),
        "tags": tags,
        "geom": geom,
    }


def _poi_kind(tags: dict) -> str | None:
    for key in POI_KEYS:
        if key in tags:
            return tags[key]
    return None


class _Collector:
    """The records of one pass, by layer."""

    def __init__(self) -> None:
        self.layers: dict[str, list[dict]] = {
            k: [] for k in ("road", "building", "poi", "water", "railway", "demo_address_point")
        }
        self.skipped: dict[str, int] = {"road_short": 0, "area_invalid": 0}
        self._wkb = None

    def node(self, n) -> None:
        if not len(n.tags):
            return
        tags = dict(n.tags)
        pt = Point(n.location.lon, n.location.lat)
        kind = _poi_kind(tags)
        if kind is not None:
            self.layers["poi"].append(
                {"osm_id": n.id, "kind": kind, "name": tags.get("name"), "tags": tags, "geom": pt}
            )
        elif "addr:housenumber" in tags:
            self.layers["demo_address_point"].append(
                {
                    "osm_id": n.id,
                    "kind": "entrance" if "entrance" in tags else "address",
                    "kind_detail": tags.get("entrance"),
                    "name": tags.get("name"),
                    "addr_street": tags.get("addr:street"),
                    "addr_housenumber": tags.get("addr:housenumber"),
                    "geom": pt,
                }
            )

    def way(self, w) -> None:
        tags = dict(w.tags)
        if "highway" in tags:
            refs, coords = [], []
            for nd in w.nodes:
                if nd.location.valid():
                    refs.append(nd.ref)
                    coords.append((nd.location.lon, nd.location.lat))
            if len(refs) < 2:
                self.skipped["road_short"] += 1
                return
            self.layers["road"].append(
                {
                    "osm_id": w.id,
                    "name": tags.get("name"),
                    "name_en": tags.get("name:en"),
                    "kind": tags["highway"],
                    "oneway": tags.get("oneway") in ("yes", "1", "true"),
                    "node_ids": refs,
                    "tags": tags,
                    "geom": LineString(coords),
                }
            )
        elif tags.get("railway") in RAIL_KINDS:
            coords = [(nd.location.lon, nd.location.lat) for nd in w.nodes if nd.location.valid()]
            if len(coords) >= 2:
                self.layers["railway"].append(
                    {
                        "osm_id": w.id,
                        "kind": tags["railway"],
                        "name": tags.get("name"),
                        "geom": MultiLineString([coords]),
                    }
                )

    def area(self, a, wkb_factory) -> None:
        tags = dict(a.tags)
        is_building = "building" in tags
        is_water = any((k, tags.get(k)) in WATER_TAGS for k in ("natural", "waterway", "landuse"))
        kind = _poi_kind(tags)
        if not (is_building or is_water or kind):
            return
        try:
            geom = repaired_multipolygon(shapely_wkb.loads(wkb_factory.create_multipolygon(a), hex=True))
        except RuntimeError:
            geom = None
        if geom is None:
            self.skipped["area_invalid"] += 1
            return
        osm_id = a.orig_id() if a.from_way() else -a.orig_id()
        if is_building:
            self.layers["building"].append(building_record(osm_id, tags, geom))
        elif is_water:
            kind_w = tags.get("water") or tags.get("natural") or tags.get("landuse") or "water"
            self.layers["water"].append(
                {"osm_id": osm_id, "kind": kind_w, "name": tags.get("name"), "geom": geom}
            )
        if kind is not None:
            self.layers["poi"].append(
                {
                    "osm_id": osm_id,
                    "kind": kind,
                    "name": tags.get("name"),
                    "tags": tags,
                    "geom": geom.point_on_surface(),
                }
            )


def read_osm(
    path: Path, progress: Callable[[int], object] | None = None
) -> tuple[dict[str, list[dict]], dict]:
    """Every layer of an OSM file (records by table name) and a report (counts, bounds, skipped).

    Raises `UnreadableFile` for a missing or unparsable file, `NoRoads` when it holds no road."""
    import osmium
    import osmium.geom

    path = Path(path)
    if not path.is_file():
        raise UnreadableFile(f"文件不存在 no such file: {path}")
    col = _Collector()
    factory = osmium.geom.WKBFactory()
    seen = 0
    try:
        obj: Any
        for obj in osmium.FileProcessor(str(path)).with_locations().with_areas():
            if obj.is_node():
                col.node(obj)
            elif obj.is_way():
                col.way(obj)
            elif obj.is_area():
                col.area(obj, factory)
            seen += 1
            if progress is not None and seen % 10_000 == 0:
                progress(10_000)
    except RuntimeError as exc:
        raise UnreadableFile(f"OSM 文件无法读取 cannot read OSM file {path.name}: {exc}") from exc
    if not col.layers["road"]:
        raise NoRoads(
            f"OSM 文件中没有道路 {path.name} holds no road (no way tagged highway=*): "
            "a city's extract needs its road network (routing, blocks, grids)"
        )
    report = {"file": str(path), "objects": seen, "skipped": col.skipped}
    return col.layers, report
