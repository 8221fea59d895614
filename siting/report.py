"""Offline HTML maps and CSV reports of coverage / siting / camera results (GeoJSON layers in WGS84).

The maps go through the one offline folium path, :mod:`layers.folium_export`: Leaflet inlined from the
local vendor folder, no tile host, no CDN — a planner's map opens on a machine without internet.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import shapely

#: colours of the coverage / camera maps (the offline browser test looks for their pixels)
COVERED = "#2b8a3e"
UNCOVERED = "#c92a2a"
FACILITY = "#1971c2"
SECTOR = "#1971c2"
CAMERA = "#1864ab"
BLIND = "#e03131"
AREA = "#495057"


def _fc(features: list[dict]) -> dict:
    return {"type": "FeatureCollection", "features": features}


def _layer(title: str, collection: dict | None, color: str, fill_opacity: float = 0.5, weight: float = 1.0,
           fill: bool = True, radius: float = 5):
    from layers.folium_export import from_geojson

    ml = from_geojson(title, collection or _fc([]), color)
    ml.style.update({"fillOpacity": fill_opacity, "weight": weight, "fill": fill, "radius": radius})
    return ml


def _catchment_circles(facilities: dict, radius_m: float) -> dict:
    """Straight-line service circles around the facilities (metres → WGS84)."""
    from .service import to_lonlat, to_metric

    feats = []
    for f in facilities["features"]:
        xy = to_metric([f["geometry"]["coordinates"]])[0]
        ring = to_lonlat(shapely.Point(xy).buffer(radius_m, 32))
        feats.append({"type": "Feature", "geometry": shapely.geometry.mapping(ring),
                      "properties": {"name": f["properties"].get("name"), "radius_m": radius_m}})
    return _fc(feats)


def coverage_map(result: dict, path: Path) -> Path:
    """An offline HTML map of a coverage result (facilities, covered / uncovered buildings, uncovered area)."""
    from layers.folium_export import export

    s = result["summary"]
    layers = result["layers"]
    title = (f"{s['facility_type']} {s['radius_m']:g} m（{'步行' if s['distance'] == 'walk' else '直线'}）"
             f"覆盖 {s['covered_share']:.1%}")
    bld = (layers.get("buildings") or layers.get("uncovered_buildings") or _fc([]))["features"]
    drawn = [
        _layer("未覆盖区域", layers.get("uncovered_area"), UNCOVERED, fill_opacity=0.15),
        _layer("已覆盖建筑", _fc([f for f in bld if f["properties"]["covered"]]), COVERED, fill_opacity=0.6),
        _layer("未覆盖建筑", _fc([f for f in bld if not f["properties"]["covered"]]), UNCOVERED, fill_opacity=0.6),
    ]
    if s["distance"] == "line" and layers["facilities"]["features"]:
        drawn.append(_layer("服务半径", _catchment_circles(layers["facilities"], s["radius_m"]), FACILITY,
                            fill=False))
    if layers.get("isochrones", {}).get("features"):
        drawn.append(_layer("步行等时圈", layers["isochrones"], FACILITY, fill_opacity=0.1))
    drawn.append(_layer(f"现有{s['facility_type']}", layers["facilities"], FACILITY, fill_opacity=0.9, weight=2,
                        radius=6))
    return export(drawn, path, title=title)


def isochrone_map(result: dict, path: Path) -> Path:
    """An offline HTML map of walking isochrones (one layer per number of minutes) and their facilities."""
    from layers.folium_export import export

    s = result["summary"]
    feats = result["layers"]["isochrones"]["features"]
    shades = ["#a5d8ff", "#4dabf7", "#1c7ed6", "#1864ab", "#0b3d91", "#051d49"]
    drawn = [_layer(f"{m:g} 分钟步行", _fc([f for f in feats if f["properties"]["minutes"] == m]),
                    shades[min(k, len(shades) - 1)], fill_opacity=0.25)
             for k, m in reversed(list(enumerate(s["minutes"])))]
    drawn.append(_layer(f"现有{s['facility_type']}", result["layers"]["facilities"], FACILITY, fill_opacity=0.9,
                        weight=2, radius=6))
    return export(drawn, path, title=f"{s['facility_type']} 步行等时圈（{'/'.join(f'{m:g}' for m in s['minutes'])} 分钟）")


def camera_map(result: dict, path: Path) -> Path:
    """An offline HTML map of a camera plan (area, view sectors, cameras, blind spots)."""
    from layers.folium_export import export

    s = result["summary"]
    layers = result["layers"]
    drawn = [
        _layer("范围", layers.get("area"), AREA, fill=False, weight=2),
        _layer("视域", layers.get("sectors"), SECTOR, fill_opacity=0.2, weight=0.5),
        _layer("摄像机", layers.get("cameras"), CAMERA, fill_opacity=1.0, weight=1, radius=4),
        _layer("盲点", layers.get("blind_spots"), BLIND, fill_opacity=1.0, weight=1, radius=5),
    ]
    return export(drawn, path, title=f"{s['area_name']} 摄像机 {s['cameras']} 台，盲点 {s['blind_spots']}")


def write_csv(path: Path, features: list[dict], columns: list[str] | None = None, lonlat: bool = True) -> Path:
    """Write the features' properties (and lon/lat of point geometries) as a UTF-8 CSV with a BOM."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = columns or sorted({k for f in features for k in f["properties"]})
    with path.open("w", newline="", encoding="utf-8-sig") as fh:  # BOM: opens cleanly in Excel (Chinese)
        w = csv.writer(fh)
        w.writerow(cols + (["lon", "lat"] if lonlat else []))
        for f in features:
            row = [f["properties"].get(c) for c in cols]
            if lonlat:
                c = shapely.geometry.shape(f["geometry"]).representative_point()
                row += [round(c.x, 7), round(c.y, 7)]
            w.writerow(row)
    return path


def write_summary(path: Path, summary: dict) -> Path:
    """Write a summary dict as indented UTF-8 JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return path
