"""Planner reports: a coverage result or a siting scenario as a PDF (map + tables, the CJK TrueType font
embedded), as CSV and as GeoPackage. Bytes out, no network: the map is drawn as vector shapes with
reportlab from the result's own GeoJSON layers (WGS84, projected to local metres for the page).
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from datetime import datetime
from pathlib import Path

import shapely

#: colours of the PDF map (the PDF test looks for them in the rendered page)
PDF_COVERED = "#2b8a3e"
PDF_UNCOVERED = "#c92a2a"
PDF_EXISTING = "#1971c2"
PDF_PLANNED = "#f76707"
PDF_CONTEXT = "#adb5bd"
#: above this many polygons in one layer the PDF map bins them: one square of ``CELL_PT`` points per page cell
#: that holds a polygon's centroid, instead of every polygon. At city scale a footprint is a fraction of a
#: point on the page; drawing 314,000 of them one by one took most of `shequ coverage` at 10^7 addresses.
MAX_POLYGONS_DRAWN = 5_000
CELL_PT = 1.5


def _geoms(features: list[dict]) -> list:
    return [shapely.geometry.shape(f["geometry"]) for f in features if f.get("geometry")]


def map_drawing(layers: list[tuple[list[dict], str, str]], width: float, height: float):
    """A reportlab Drawing of ``(features, colour, label)`` layers fitted into ``width`` × ``height`` points,
    with a legend and a scale bar; points are dots, polygons filled."""
    from reportlab.graphics.shapes import Circle, Drawing, Line, Polygon, Rect, String
    from reportlab.lib import colors

    from geo.fonts import register_cjk_font

    font = register_cjk_font()
    d = Drawing(width, height)
    d.add(Rect(0, 0, width, height, strokeColor=colors.HexColor("#868e96"), fillColor=colors.HexColor("#f8f9fa")))
    allg = [g for feats, _, _ in layers for g in _geoms(feats)]
    if not allg:
        d.add(String(width / 2, height / 2, "无要素 nothing to draw", fontName=font, fontSize=10, textAnchor="middle"))
        return d
    minx, miny, maxx, maxy = shapely.total_bounds(allg)
    kx = math.cos(math.radians((miny + maxy) / 2)) * 111_320.0  # metres per degree of longitude here
    ky = 110_574.0
    span_x, span_y = max((maxx - minx) * kx, 50.0), max((maxy - miny) * ky, 50.0)
    pad = 12.0
    scale = min((width - 2 * pad) / span_x, (height - 2 * pad - 16) / span_y)  # points per metre

    def xy(lon, lat):
        return pad + (lon - minx) * kx * scale, pad + 16 + (lat - miny) * ky * scale

    for feats, colour, _label in layers:
        c = colors.HexColor(colour)
        geoms = _geoms(feats)
        polygons = [g for g in geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        if len(polygons) > MAX_POLYGONS_DRAWN:
            for x, y in binned_cells(polygons, xy):
                d.add(Rect(x, y, CELL_PT, CELL_PT, fillColor=c, strokeColor=None))
            geoms = [g for g in geoms if g.geom_type not in ("Polygon", "MultiPolygon")]
        for g in geoms:
            for part in getattr(g, "geoms", [g]):
                if part.geom_type == "Point":
                    x, y = xy(part.x, part.y)
                    d.add(Circle(x, y, 3.2, fillColor=c, strokeColor=colors.white, strokeWidth=0.6))
                elif part.geom_type == "Polygon":
                    pts = [v for lon, lat in part.exterior.coords for v in xy(lon, lat)]
                    d.add(Polygon(pts, fillColor=c, strokeColor=c, strokeWidth=0.2))
                elif part.geom_type == "LineString":
                    coords = list(part.coords)
                    for (a, b), (e, f) in zip(coords[:-1], coords[1:], strict=True):
                        x0, y0 = xy(a, b)
                        x1, y1 = xy(e, f)
                        d.add(Line(x0, y0, x1, y1, strokeColor=c, strokeWidth=0.5))
    # legend (top left) and a scale bar (bottom left)
    ly = height - 14
    for _feats, colour, label in layers:
        d.add(Rect(pad, ly, 8, 8, fillColor=colors.HexColor(colour), strokeColor=None))
        d.add(String(pad + 12, ly + 1, label, fontName=font, fontSize=8))
        ly -= 12
    bar_m = 10 ** math.floor(math.log10(max(span_x / 4, 1)))
    d.add(Line(pad, 8, pad + bar_m * scale, 8, strokeColor=colors.black, strokeWidth=1.2))
    d.add(String(pad + bar_m * scale + 4, 5, f"{bar_m:g} 米", fontName=font, fontSize=7))
    return d


def binned_cells(polygons: list, xy) -> list[tuple[float, float]]:
    """Lower-left corners (page points) of the ``CELL_PT`` cells holding at least one polygon's centroid;
    ``xy``: (lon, lat) → page point."""
    import numpy as np

    c = shapely.centroid(np.asarray(polygons, dtype=object))
    px, py = xy(shapely.get_x(c), shapely.get_y(c))
    cells = np.unique(np.stack([np.floor(px / CELL_PT), np.floor(py / CELL_PT)], axis=1), axis=0)
    return [(float(i) * CELL_PT, float(j) * CELL_PT) for i, j in cells]


def _table(rows: list[list], widths: list[float] | None = None):
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    from geo.fonts import register_cjk_font

    font = register_cjk_font()
    t = Table([[("" if v is None else str(v)) for v in r] for r in rows], colWidths=widths, repeatRows=1)
    t.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e9ecef")),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#868e96")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]))
    return t


def _pdf(title: str, subtitle: str, drawing, tables: list[tuple[str, list[list]]]) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    from geo.fonts import register_cjk_font

    font = register_cjk_font()
    h1 = ParagraphStyle("h1", fontName=font, fontSize=16, leading=20, spaceAfter=4)
    h2 = ParagraphStyle("h2", fontName=font, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4)
    body = ParagraphStyle("body", fontName=font, fontSize=8, leading=11)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=36, rightMargin=36, topMargin=36, bottomMargin=36,
                            title=title, author="社区 GIS")
    story = [Paragraph(title, h1), Paragraph(subtitle, body), Spacer(1, 6), drawing]
    for heading, rows in tables:
        if len(rows) > 1:
            story += [Paragraph(heading, h2), _table(rows)]
    doc.build(story)
    return buf.getvalue()


def _pct(v) -> str:
    return "" if v is None else f"{float(v):.1%}"


def coverage_pdf(result: dict) -> bytes:
    """A coverage result (``coverage_analysis``) as a one-map PDF with its summary and per-area tables."""
    s, layers = result["summary"], result["layers"]
    bld = (layers.get("buildings") or layers.get("uncovered_buildings") or {"features": []})["features"]
    drawing = map_drawing([
        ([f for f in bld if f["properties"]["covered"]], PDF_COVERED, "已覆盖建筑"),
        ([f for f in bld if not f["properties"]["covered"]], PDF_UNCOVERED, "未覆盖建筑"),
        (layers["facilities"]["features"], PDF_EXISTING, f"现有{s['facility_type']}"),
    ], 523, 380)
    kind = "步行" if s["distance"] == "walk" else "直线"
    summary = [["指标", "数值"], ["设施类型", s["facility_type"]], ["服务半径", f"{s['radius_m']:g} 米（{kind}）"],
               ["依据", s.get("clause") or ""], ["现有设施", s["facilities"]], ["住户", s["households"]],
               ["覆盖住户", s["covered_households"]], ["覆盖率", _pct(s["covered_share"])],
               ["未覆盖建筑", s["uncovered_buildings"]]]
    areas = [["区域", "住户", "覆盖住户", "覆盖率"]] + [[a["name"], a["households"], a["covered_households"],
                                                 _pct(a["covered_share"])] for a in s.get("by_area", [])]
    grids = [["网格", "住户", "覆盖住户", "覆盖率"]] + [[g["name"] or g["code"], g["households"], g["covered_households"],
                                                 _pct(g["covered_share"])] for g in s.get("by_grid", [])[:60]]
    return _pdf(f"{s['facility_type']}服务覆盖分析", f"社区 GIS · {datetime.now():%Y-%m-%d %H:%M}", drawing,
                [("汇总", summary), ("按区域", areas), ("按网格（前 60）", grids)])


def scenario_pdf(scenario: dict, context: list[dict] | None = None) -> bytes:
    """A saved siting scenario (``scenarios.get``) as a PDF: map of its sites over ``context`` footprints,
    its summary and the table of sites."""
    s = scenario["summary"]
    sites = scenario["sites"]["features"]
    drawing = map_drawing([
        (context or [], PDF_CONTEXT, "住宅建筑"),
        ([f for f in sites if f["properties"]["status"] == "existing"], PDF_EXISTING, "现有设施"),
        ([f for f in sites if f["properties"]["status"] == "planned"], PDF_PLANNED, "方案新增设施"),
    ], 523, 380)
    summary = [["指标", "数值"], ["方案", f"{scenario['name']}（第 {scenario['version']} 版）"],
               ["范围", scenario.get("area_code") or "全市"], ["设施类型", s["facility_type"]], ["模型", s["model"]],
               ["服务半径", f"{s['radius_m']:g} 米（{'步行' if s['distance'] == 'walk' else '直线'}）"],
               ["现有设施", s["existing"]], ["新增设施", s["new_sites"]], ["住户", s["households"]],
               ["原覆盖住户", s["covered_before"]], ["方案覆盖住户", s["covered_after"]],
               ["方案覆盖率", _pct(s["covered_share_after"])], ["新增成本", s.get("cost")]]
    rows: list[list] = [["序号", "状态", "类型", "名称", "新增覆盖住户", "经度", "纬度"]]
    for n, f in enumerate(sites, start=1):
        p = f["properties"]
        lon, lat = f["geometry"]["coordinates"]
        rows.append([n, "新增" if p["status"] == "planned" else "现有", p.get("kind"), p.get("name") or "",
                     p.get("new_households_covered"), f"{lon:.6f}", f"{lat:.6f}"])
    return _pdf(f"选址方案：{scenario['name']}", f"社区 GIS · 保存于 {scenario.get('created_at')}", drawing,
                [("汇总", summary), ("设施点位", rows)])


def csv_bytes(features: list[dict], columns: list[str]) -> bytes:
    """Features' properties (and lon/lat of a point on each) as UTF-8 CSV with a BOM (Excel opens it)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*columns, "lon", "lat"])
    for f in features:
        c = shapely.geometry.shape(f["geometry"]).representative_point()
        w.writerow([f["properties"].get(k) for k in columns] + [round(c.x, 7), round(c.y, 7)])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def gpkg_bytes(layers: dict[str, dict]) -> bytes:
    """GeoJSON FeatureCollections (WGS84) as one GeoPackage, a layer each (empty ones left out)."""
    import geopandas as gpd

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.gpkg"
        for name, fc in layers.items():
            feats = fc.get("features") or []
            if not feats:
                continue
            gdf = gpd.GeoDataFrame.from_features(feats, crs="EPSG:4326")
            for col in gdf.columns:
                if col != "geometry" and gdf[col].map(lambda v: isinstance(v, (dict, list))).any():
                    gdf[col] = gdf[col].map(str)
            gdf.to_file(path, layer=name, driver="GPKG", engine="pyogrio")
        return path.read_bytes() if path.exists() else b""
