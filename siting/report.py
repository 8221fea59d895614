"""Folium HTML maps and CSV reports of coverage / siting / camera results (GeoJSON layers in WGS84)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import shapely


def _centre(layers: dict) -> list[float]:
    geoms = [shapely.geometry.shape(f["geometry"]) for fc in layers.values() for f in fc["features"]]
    if not geoms:
        return [31.2385, 121.5005]
    c = shapely.unary_union([g.envelope for g in geoms]).centroid
    return [c.y, c.x]


def _map(layers: dict, title: str):
    import folium

    m = folium.Map(location=_centre(layers), zoom_start=15, tiles="OpenStreetMap", control_scale=True)
    folium.map.Marker(_centre(layers), icon=folium.DivIcon(html=f"<b style='font-size:14px'>{title}</b>",
                                                          icon_size=(400, 20))).add_to(m)
    return m


def coverage_map(result: dict, path: Path) -> Path:
    """A folium HTML map of a coverage result (facilities, buildings, uncovered area), written to ``path``."""
    import folium

    s = result["summary"]
    layers = result["layers"]
    title = f"{s['facility_type']} {s['radius_m']:g} m（{'步行' if s['distance'] == 'walk' else '直线'}）覆盖 {s['covered_share']:.1%}"
    m = _map(layers, title)
    bld = layers.get("buildings") or layers.get("uncovered_buildings")
    folium.GeoJson(bld, name="建筑（绿=覆盖，红=未覆盖）",
                   style_function=lambda f: {"color": "#2b8a3e" if f["properties"]["covered"] else "#c92a2a",
                                             "weight": 0.5, "fillOpacity": 0.5},
                   tooltip=folium.GeoJsonTooltip(["name", "households", "covered", "distance_m"])).add_to(m)
    folium.GeoJson(layers["uncovered_area"], name="未覆盖区域",
                   style_function=lambda f: {"color": "#e03131", "weight": 1, "fillOpacity": 0.15}).add_to(m)
    fg = folium.FeatureGroup(name=f"现有{s['facility_type']}")
    for f in layers["facilities"]["features"]:
        lon, lat = f["geometry"]["coordinates"]
        p = f["properties"]
        if s["distance"] == "line":
            folium.Circle([lat, lon], radius=s["radius_m"], color="#1971c2", weight=1, fill=False).add_to(fg)
        folium.Marker([lat, lon], tooltip=f"{p.get('name') or ''} 服务 {p['catchment_households']} 户",
                      icon=folium.Icon(color="blue", icon="home")).add_to(fg)
    fg.add_to(m)
    folium.LayerControl().add_to(m)
    path.parent.mkdir(parents=True, exist_ok=True)
    m.save(str(path))
    return path


def camera_map(result: dict, path: Path) -> Path:
    """A folium HTML map of a camera plan (area, view sectors, cameras, blind spots), written to ``path``."""
    import folium

    s = result["summary"]
    layers = result["layers"]
    m = _map(layers, f"{s['area_name']} 摄像机 {s['cameras']} 台，盲点 {s['blind_spots']}")
    folium.GeoJson(layers["area"], name="范围", style_function=lambda f: {"color": "#495057", "fill": False}).add_to(m)
    folium.GeoJson(layers["sectors"], name="视域",
                   style_function=lambda f: {"color": "#1971c2", "weight": 0.5, "fillOpacity": 0.2}).add_to(m)
    fg = folium.FeatureGroup(name="摄像机")
    for f in layers["cameras"]["features"]:
        lon, lat = f["geometry"]["coordinates"]
        p = f["properties"]
        folium.CircleMarker([lat, lon], radius=3, color="#1864ab", fill=True,
                            tooltip=f"#{p['camera']} {p['model']} 朝向 {p['heading_deg']:g}° 看到 {p['targets_seen']}").add_to(fg)
    fg.add_to(m)
    bs = folium.FeatureGroup(name="盲点")
    for f in layers["blind_spots"]["features"]:
        lon, lat = f["geometry"]["coordinates"]
        folium.CircleMarker([lat, lon], radius=4, color="#e03131", fill=True,
                            tooltip=f"盲点 {f['properties'].get('kind')}").add_to(bs)
    bs.add_to(m)
    folium.LayerControl().add_to(m)
    path.parent.mkdir(parents=True, exist_ok=True)
    m.save(str(path))
    return path


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
