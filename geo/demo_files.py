"""Readers of the real demo data (``../shared/data``): files in, plain records out (dicts, shapely in WGS84).

Pure: no database. `gis_api.demo` writes these records into PostGIS; `grid_builder.demo_data` reads them
for the pure grid pipeline.

Household estimate (`households_est`), documented here because grids and siting depend on it:
floors = max(1, round(height_m / 3)); gross floor area = footprint area × floors; residential kinds
(apartments, residential, house, dormitory) count all of it, buildings of unknown kind (kind_detail
empty: mostly the old lane houses, 里弄) 60 % up to 24 m and 20 % above (untagged CBD towers are
mostly offices), every other kind (offices, shops, hotels…) none; one
household per 90 m² of residential floor area.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import LineString, MultiLineString, MultiPolygon, shape
from shapely.ops import unary_union

from geo.crs import gcj02_to_wgs84, transform_geometry
from geo.errors import Unavailable
from geo.geometry import repaired_multipolygon

TILEZEN_FILE = "shanghai-bund/shanghai_bund_lujiazui_tilezen.geojson"
OSM_ROADS_FILE = "shanghai-bund/shanghai_center_roads_overpass.osm"
CODES_FILE = "admin-divisions/gbt2260-codes.csv"
DISTRICTS_FILE = "admin-divisions/shanghai-districts.geojson"

RESIDENTIAL_KINDS = {"apartments", "residential", "house", "dormitory", "terrace", "detached"}
UNKNOWN_KIND_SHARE = 0.6
# Untagged towers above 24 m (高层) in this CBD are mostly offices: count a fifth as homes.
HIGH_RISE_M = 24.0
UNKNOWN_HIGH_RISE_SHARE = 0.2
M2_PER_HOUSEHOLD = 90.0
FLOOR_HEIGHT_M = 3.0
MUNICIPALITIES = {"11", "12", "31", "50"}
LEVEL_BY_LEN = {2: "province", 4: "city", 6: "district"}


class DemoDataMissing(Unavailable, FileNotFoundError):
    """The shared demo data folder (or one of its files) is not there."""


@dataclass
class LayerCount:
    """Rows written (and skipped) for one demo layer."""

    layer: str
    rows: int
    skipped: int = 0
    note: str = ""


def require_files(shared: Path) -> None:
    """Raise `DemoDataMissing` (naming every missing file and the fix) unless all demo files are there."""
    missing = [
        f for f in (TILEZEN_FILE, OSM_ROADS_FILE, CODES_FILE, DISTRICTS_FILE) if not (shared / f).exists()
    ]
    if missing:
        raise DemoDataMissing(
            f"演示数据缺失 demo data not found in {shared}: missing {', '.join(missing)}; "
            f"fix: put the shared data folder beside the checkout (../shared/data) or set SHEQU_SHARED_DATA_DIR"
        )


def households_estimate(
    kind_detail: str | None, height_m: float | None, area_m2: float | None
) -> tuple[int, int]:
    """(floors, households) by the documented rule above."""
    floors = max(1, round((height_m or FLOOR_HEIGHT_M) / FLOOR_HEIGHT_M))
    if kind_detail in RESIDENTIAL_KINDS:
        share = 1.0
    elif not kind_detail:
        share = UNKNOWN_KIND_SHARE if (height_m or 0.0) <= HIGH_RISE_M else UNKNOWN_HIGH_RISE_SHARE
    else:
        share = 0.0
    households = int(round((area_m2 or 0.0) * floors * share / M2_PER_HOUSEHOLD))
    return floors, households


# -- readers --------------------------------------------------------------------------------------


def read_admin_units(shared: Path) -> list[dict]:
    """GB/T 2260 codes (all of China, no geometry) + Shanghai boundaries converted GCJ-02 → WGS84."""
    units: dict[str, dict] = {}
    with open(shared / CODES_FILE, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            raw = row["code"].strip()
            if raw == "资料暂缺" and row["name"] == "台湾省":
                raw = "71"  # GB/T 2260 code of 台湾省
            if not raw.isdigit() or len(raw) not in LEVEL_BY_LEN:
                continue
            code = raw.ljust(6, "0")
            parent = row["parent_code"].strip()
            units[code] = {
                "code": code,
                "name": row["name"].strip(),
                "level": LEVEL_BY_LEN[len(raw)],
                "parent_code": parent.ljust(6, "0") if parent else None,
                "source": "gbt2260",
                "properties": {"type": row["type"].strip()},
                "geom": None,
            }
    # Municipalities have no prefecture level in the code list: add the city row (xx0100) so every
    # district has province → city → district parents, as elsewhere.
    for prov in MUNICIPALITIES:
        pcode, ccode = prov + "0000", prov + "0100"
        if pcode in units and ccode not in units:
            units[ccode] = {
                "code": ccode,
                "name": units[pcode]["name"],
                "level": "city",
                "parent_code": pcode,
                "source": "gbt2260",
                "properties": {"type": "市辖区"},
                "geom": None,
            }
        for u in units.values():
            if u["level"] == "district" and u["parent_code"] == pcode:
                u["parent_code"] = ccode
    with open(shared / DISTRICTS_FILE, encoding="utf-8") as fh:
        fc = json.load(fh)
    for feat in fc["features"]:
        code = str(feat["properties"]["adcode"])
        geom = repaired_multipolygon(transform_geometry(shape(feat["geometry"]), gcj02_to_wgs84))
        if code in units:
            units[code]["geom"] = geom
            units[code]["source"] = "gbt2260+amap-gcj02→wgs84"
    return sorted(units.values(), key=lambda u: (len(u["code"].rstrip("0")), u["code"]))


def read_roads(shared: Path) -> list[dict]:
    """The OSM ``highway`` ways of the Overpass extract as road records (node ids kept for the topology)."""
    nodes: dict[int, tuple[float, float]] = {}
    roads: list[dict] = []
    for _event, elem in ET.iterparse(shared / OSM_ROADS_FILE, events=("end",)):
        if elem.tag == "node":
            nodes[int(elem.get("id"))] = (float(elem.get("lon")), float(elem.get("lat")))
            elem.clear()
        elif elem.tag == "way":
            tags = {t.get("k"): t.get("v") for t in elem.iter("tag")}
            refs = [int(nd.get("ref")) for nd in elem.iter("nd")]
            way_id = int(elem.get("id"))
            elem.clear()
            if "highway" not in tags:
                continue
            refs = [r for r in refs if r in nodes]
            if len(refs) < 2:
                continue
            roads.append(
                {
                    "osm_id": way_id,
                    "name": tags.get("name"),
                    "name_en": tags.get("name:en"),
                    "kind": tags["highway"],
                    "oneway": tags.get("oneway") in ("yes", "1", "true"),
                    "node_ids": refs,
                    "tags": tags,
                    "geom": LineString([nodes[r] for r in refs]),
                }
            )
    return roads


_DROPPED_TAGS = ("layer", "tile_index", "source")


def _merged_polygon(parts: list) -> MultiPolygon | None:
    """The tile pieces of one area joined into one valid MultiPolygon (None when nothing is left)."""
    return repaired_multipolygon(unary_union([shapely.make_valid(g) for g in parts]))


def _tilezen_by_layer(features: list[dict]) -> dict[str, list[tuple[dict, dict]]]:
    """(properties, geometry) of every feature with a geometry, by Tilezen layer, in file order."""
    out: dict[str, list[tuple[dict, dict]]] = defaultdict(list)
    for feat in features:
        geom = feat.get("geometry")
        if geom is not None:
            out[feat["properties"].get("layer")].append((feat["properties"], geom))
    return out


def _tilezen_buildings(feats: list[tuple[dict, dict]]) -> tuple[list[dict], list[int]]:
    """Building footprints merged by OSM id (non-null properties of every piece), and the ids with no footprint."""
    parts: dict[int, list] = defaultdict(list)
    props: dict[int, dict] = {}
    ids: set[int] = set()
    for p, geom in feats:
        if p.get("kind") != "building":
            continue
        ids.add(p["id"])
        if geom["type"] in ("Polygon", "MultiPolygon"):
            parts[p["id"]].append(shape(geom))
            props.setdefault(p["id"], {}).update({k: v for k, v in p.items() if v is not None})
    buildings = []
    for osm_id, pieces in parts.items():
        merged = _merged_polygon(pieces)
        if merged is None:
            continue
        p = props[osm_id]
        height = float(p["height"]) if p.get("height") is not None else None
        area = float(p["area"]) if p.get("area") is not None else None
        floors, households = households_estimate(p.get("kind_detail"), height, area)
        tags = {k: v for k, v in p.items() if k not in (*_DROPPED_TAGS, "label_placement")}
        buildings.append(
            {
                "osm_id": osm_id,
                "name": p.get("name"),
                "kind": p.get("kind", "building"),
                "kind_detail": p.get("kind_detail"),
                "height_m": height,
                "floors": floors,
                "area_m2": area,
                "households_est": households,
                "addr_street": p.get("addr_street"),
                "addr_housenumber": p.get("addr_housenumber"),
                "tags": tags,
                "geom": merged,
            }
        )
    return buildings, sorted(ids - set(parts))


def _tilezen_address_points(feats: list[tuple[dict, dict]]) -> list[dict]:
    """Address and entrance points of the buildings layer (the last one of an OSM id and kind wins)."""
    points: dict[tuple[int, str], dict] = {}
    for p, geom in feats:
        kind = p.get("kind")
        if kind in ("address", "entrance") and geom["type"] == "Point":
            points[(p["id"], kind)] = {
                "osm_id": p["id"],
                "kind": kind,
                "kind_detail": p.get("kind_detail"),
                "name": p.get("name"),
                "addr_street": p.get("addr_street"),
                "addr_housenumber": p.get("addr_housenumber"),
                "geom": shape(geom),
            }
    return list(points.values())


def _tilezen_pois(feats: list[tuple[dict, dict]]) -> list[dict]:
    """Points of interest, one per OSM id and kind (the last one wins)."""
    pois: dict[tuple[int, str | None], dict] = {}
    for p, geom in feats:
        if geom["type"] == "Point" and "id" in p:
            tags = {k: v for k, v in p.items() if k not in _DROPPED_TAGS}
            pois[(p["id"], p.get("kind"))] = {
                "osm_id": p["id"],
                "kind": p.get("kind"),
                "name": p.get("name"),
                "tags": tags,
                "geom": shape(geom),
            }
    return list(pois.values())


def _tilezen_water(feats: list[tuple[dict, dict]]) -> list[dict]:
    """Water areas merged by OSM id (properties of the first piece)."""
    parts: dict[int, list] = defaultdict(list)
    props: dict[int, dict] = {}
    for p, geom in feats:
        if geom["type"] in ("Polygon", "MultiPolygon") and "id" in p:
            parts[p["id"]].append(shape(geom))
            props.setdefault(p["id"], p)
    water = []
    for osm_id, pieces in parts.items():
        merged = _merged_polygon(pieces)
        if merged is not None:
            p = props[osm_id]
            water.append(
                {"osm_id": osm_id, "kind": p.get("kind", "water"), "name": p.get("name"), "geom": merged}
            )
    return water


def _tilezen_railways(feats: list[tuple[dict, dict]]) -> list[dict]:
    """Rail lines of the roads layer, their tile pieces gathered into one MultiLineString per OSM id."""
    parts: dict[int, list] = defaultdict(list)
    props: dict[int, dict] = {}
    for p, geom in feats:
        if p.get("kind") == "rail" and geom["type"] in ("LineString", "MultiLineString") and "id" in p:
            parts[p["id"]].append(shape(geom))
            props.setdefault(p["id"], p)
    railways = []
    for osm_id, pieces in parts.items():
        lines: list[LineString] = []
        for g in pieces:
            lines.extend(g.geoms if isinstance(g, MultiLineString) else [g])
        p = props[osm_id]
        railways.append(
            {
                "osm_id": osm_id,
                "kind": p.get("kind_detail") or "rail",
                "name": p.get("name"),
                "geom": MultiLineString(lines),
            }
        )
    return railways


def _tilezen_landuse(feats: list[tuple[dict, dict]]) -> list[dict]:
    """Named land-use areas (小区 / residential, commercial…) merged by OSM id, with Tilezen's label point."""
    parts: dict[int, list] = defaultdict(list)
    props: dict[int, dict] = {}
    labels: dict[int, object] = {}
    for p, geom in feats:
        if not (p.get("name") and "id" in p and p.get("kind")):
            continue
        if geom["type"] in ("Polygon", "MultiPolygon"):
            parts[p["id"]].append(shape(geom))
            props.setdefault(p["id"], p)
        elif geom["type"] == "Point" and p.get("label_placement"):
            labels[p["id"]] = shape(geom)
    landuse = []
    for osm_id, pieces in sorted(parts.items()):
        merged = _merged_polygon(pieces)
        if merged is None:
            continue
        p = props[osm_id]
        label = labels.get(osm_id)
        landuse.append(
            {
                "osm_id": osm_id,
                "kind": p["kind"],
                "name": p["name"].strip(),
                "label_wkb": shapely.to_wkb(label) if label is not None else None,
                "geom": merged,
            }
        )
    return landuse


def read_tilezen(shared: Path) -> dict[str, list[Any]]:
    """Buildings (tile pieces merged by OSM id), POIs, water areas, railways, address/entrance points."""
    with open(shared / TILEZEN_FILE, encoding="utf-8") as fh:
        by_layer = _tilezen_by_layer(json.load(fh)["features"])
    buildings, without_footprint = _tilezen_buildings(by_layer["buildings"])
    return {
        "landuse": _tilezen_landuse(by_layer["landuse"]),
        "buildings": buildings,
        "buildings_without_footprint": without_footprint,
        "pois": _tilezen_pois(by_layer["pois"]),
        "water": _tilezen_water(by_layer["water"]),
        "railways": _tilezen_railways(by_layer["roads"]),
        "address_points": _tilezen_address_points(by_layer["buildings"]),
    }
