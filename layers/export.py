"""Exports of any layer for office and desktop users: GeoPackage, Shapefile, GeoJSON, KML, CSV, xlsx.

The features come from the same SQL as the OGC API items (`layers.sql.items_sql`: the registry's exposed
properties only, the layer's fixed filter, the query's bbox / datetime / property filters / CQL2), so an
export never shows more than the items route shows the same caller. Files are written with GDAL (through
pyogrio) or openpyxl into a temporary folder and returned as bytes:

- ``gpkg``: one GeoPackage layer named after the layer id;
- ``shp``: a zip of .shp/.shx/.dbf/.prj and a ``.cpg`` saying UTF-8 (so Chinese attribute text opens in
  QGIS and ArcGIS); field names longer than 10 characters are shortened by GDAL, as the format demands;
- ``geojson``: RFC 7946 FeatureCollection;
- ``kml``: named by the layer's label field;
- ``csv``: UTF-8 with a byte order mark (Excel and WPS open it without garbled text), one row per
  feature: id, properties, ``lon``/``lat`` (the point, or a point on the surface of a line / polygon) and
  ``wkt``;
- ``xlsx``: the same columns without ``wkt`` (a cell holds at most 32,767 characters), with a second sheet
  describing the columns in Chinese.
"""

from __future__ import annotations

import csv
import io
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import shapely
from shapely.geometry import shape
from sqlalchemy import text
from sqlalchemy.engine import Connection

from layers import ogc
from layers.cql2 import parse_filter_params
from layers.errors import ExportTooLarge
from layers.registry import Layer
from layers.sql import items_sql

MAX_EXPORT_FEATURES = 200_000
ID_FIELD = "feature_id"


@dataclass(frozen=True)
class ExportFormat:
    """One export format: file extension, media type and a title for people."""

    key: str
    extension: str
    media_type: str
    title: str


FORMATS: dict[str, ExportFormat] = {
    f.key: f
    for f in (
        ExportFormat("gpkg", "gpkg", "application/geopackage+sqlite3", "GeoPackage（QGIS / ArcGIS）"),
        ExportFormat("shp", "zip", "application/zip", "Shapefile（压缩包，含 .cpg UTF-8）"),
        ExportFormat("geojson", "geojson", "application/geo+json", "GeoJSON"),
        ExportFormat("kml", "kml", "application/vnd.google-earth.kml+xml", "KML（奥维 / Google Earth）"),
        ExportFormat("csv", "csv", "text/csv; charset=utf-8", "CSV（UTF-8 带 BOM，Excel / WPS）"),
        ExportFormat("xlsx", "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     "Excel 工作簿 xlsx"),
    )
}


@dataclass(frozen=True)
class ExportFile:
    """An export ready to send or save."""

    data: bytes
    filename: str
    media_type: str
    count: int


def parse_format(value: str | None) -> ExportFormat:
    """The export format named by ``value`` (GeoPackage when absent)."""
    key = (value or "gpkg").strip().lower()
    key = {"shapefile": "shp", "json": "geojson", "excel": "xlsx", "geopackage": "gpkg"}.get(key, key)
    fmt = FORMATS.get(key)
    if fmt is None:
        raise ogc.QueryError(
            f"不支持的导出格式 format={value!r}；可用：{', '.join(FORMATS)} "
            f"(unsupported export format; use one of {', '.join(FORMATS)})", "format")
    return fmt


def fetch_export_features(conn: Connection, layer: Layer, q: ogc.ItemsQuery) -> list[dict]:
    """Every feature the query matches (WGS84 lon/lat), ordered by id; too many is `ExportTooLarge`."""
    q = ogc.ItemsQuery(limit=MAX_EXPORT_FEATURES + 1, offset=0, bbox=q.bbox, bbox_crs=q.bbox_crs,
                       datetime=q.datetime, filters=q.filters, cql=q.cql)
    sql, params = items_sql(layer, q)
    features = [orjson.loads(row[0]) for row in conn.execute(text(sql), params)]
    if len(features) > MAX_EXPORT_FEATURES:
        raise ExportTooLarge(
            f"导出超过 {MAX_EXPORT_FEATURES} 个要素：请用 bbox 或 filter 缩小范围 "
            f"(more than {MAX_EXPORT_FEATURES} features: narrow the export with bbox or filter)",
            detail={"limit": MAX_EXPORT_FEATURES})
    return features


def columns(layer: Layer) -> list[str]:
    """The attribute columns of an export, in order: the feature id, then the layer's properties."""
    return [ID_FIELD, *(p.name for p in layer.properties if p.name != ID_FIELD)]


def _geometries(features: list[dict]) -> list[Any]:
    return [shape(f["geometry"]) if f.get("geometry") else None for f in features]


def _anchor(geom) -> tuple[float | None, float | None]:
    """A point of the geometry for lon/lat columns: the point itself, else a point on it."""
    if geom is None or geom.is_empty:
        return None, None
    p = geom if geom.geom_type == "Point" else geom.point_on_surface()
    return round(p.x, 7), round(p.y, 7)


def _records(layer: Layer, features: list[dict]) -> list[list[Any]]:
    cols = columns(layer)
    return [[f.get("id")] + [f["properties"].get(c) for c in cols[1:]] for f in features]


def _frame(layer: Layer, features: list[dict]):
    import geopandas as gpd
    import pandas as pd

    dtypes = {"integer": "Int64", "number": "float64", "boolean": "boolean"}
    data: dict[str, Any] = {ID_FIELD: pd.Series([f.get("id") for f in features], dtype=object)}
    for p in layer.properties:
        if p.name == ID_FIELD:
            continue
        values = [f["properties"].get(p.name) for f in features]
        data[p.name] = pd.Series(values, dtype=dtypes.get(p.type, object))
    if not layer.id_is_text:
        data[ID_FIELD] = data[ID_FIELD].astype("Int64")
    return gpd.GeoDataFrame(data, geometry=_geometries(features), crs="EPSG:4326")


def _write_gdal(layer: Layer, features: list[dict], fmt: ExportFormat, folder: Path) -> bytes:
    import pyogrio

    frame = _frame(layer, features)
    kinds = {g.geom_type for g in frame.geometry if g is not None}
    promote = len(kinds) > 1 or layer.geometry_type.startswith("Multi")
    if fmt.key == "gpkg":
        path = folder / f"{layer.id}.gpkg"
        pyogrio.write_dataframe(frame, path, layer=layer.id, driver="GPKG", promote_to_multi=promote,
                                layer_options={"IDENTIFIER": layer.title_zh, "DESCRIPTION": layer.title_en})
        return path.read_bytes()
    if fmt.key == "kml":
        path = folder / f"{layer.id}.kml"
        label = layer.style.label_field or next(
            (p.name for p in layer.properties if p.type == "string"), ID_FIELD)
        pyogrio.write_dataframe(frame, path, layer=layer.id, driver="KML", dataset_options={"NameField": label})
        return path.read_bytes()
    # Shapefile: one file per part, zipped; UTF-8 declared in the .cpg
    path = folder / f"{layer.id}.shp"
    with warnings.catch_warnings():  # GDAL shortens field names to the format's 10 characters, as documented
        warnings.simplefilter("ignore", RuntimeWarning)
        pyogrio.write_dataframe(frame, path, driver="ESRI Shapefile", encoding="UTF-8", promote_to_multi=promote)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for part in sorted(folder.glob(f"{layer.id}.*")):
            zf.write(part, part.name)
    return buf.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value


def _csv(layer: Layer, features: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*columns(layer), "lon", "lat", "wkt"])
    for rec, geom in zip(_records(layer, features), _geometries(features), strict=True):
        lon, lat = _anchor(geom)
        wkt = "" if geom is None else shapely.to_wkt(geom, rounding_precision=7, trim=True)
        writer.writerow([_cell(v) for v in rec] + [lon, lat, wkt])
    return out.getvalue().encode("utf-8-sig")  # the BOM tells Excel / WPS it is UTF-8


_SHEET_BAD = str.maketrans({c: "_" for c in "[]:*?/\\"})


def _xlsx(layer: Layer, features: list[dict]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = layer.title_zh.translate(_SHEET_BAD)[:31] or layer.id
    header = [*columns(layer), "lon", "lat"]
    ws.append(header)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    for rec, geom in zip(_records(layer, features), _geometries(features), strict=True):
        ws.append([_cell(v) for v in rec] + list(_anchor(geom)))
    about = wb.create_sheet("字段说明")
    about.append(["字段 column", "中文名 title", "类型 type"])
    titles = {p.name: (p.title_zh, p.type) for p in layer.properties}
    titles.update({ID_FIELD: ("要素编号", "string" if layer.id_is_text else "integer"),
                   "lon": ("经度（WGS84）", "number"), "lat": ("纬度（WGS84）", "number")})
    for name in header:
        title, kind = titles.get(name, ("", ""))
        about.append([name, title, kind])
    about.append([])
    about.append([f"{layer.title_zh}（{layer.title_en}），共 {len(features)} 个要素；坐标为 WGS84 经纬度。"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _geojson(layer: Layer, features: list[dict]) -> bytes:
    return orjson.dumps({"type": "FeatureCollection", "name": layer.id, "features": features})


def write_export(layer: Layer, features: list[dict], fmt: ExportFormat) -> ExportFile:
    """The features of ``layer`` (GeoJSON dicts, WGS84) as one file of format ``fmt``."""
    if fmt.key == "geojson":
        data = _geojson(layer, features)
    elif fmt.key == "csv":
        data = _csv(layer, features)
    elif fmt.key == "xlsx":
        data = _xlsx(layer, features)
    else:
        with tempfile.TemporaryDirectory(prefix="shequ-export-") as tmp:
            data = _write_gdal(layer, features, fmt, Path(tmp))
    return ExportFile(data, f"{layer.id}.{fmt.extension}", fmt.media_type, len(features))


EXPORT_PARAMS = {"format", "bbox", "bbox-crs", "datetime", "filter", "filter-lang", "filter-crs"}


def parse_export_query(layer: Layer, params: list[tuple[str, str]]) -> tuple[ExportFormat, ogc.ItemsQuery]:
    """Check the query of an export: ``format``, ``bbox`` (+ ``bbox-crs``), ``datetime``, CQL2 ``filter``,
    and property filters ``name=value``; anything else is an error."""
    seen: dict[str, str] = {}
    for key, value in params:
        if key in seen:
            raise ogc.QueryError(f"参数 {key} 重复出现 (parameter {key} repeated)", key)
        seen[key] = value
    unknown = [k for k in seen if k not in EXPORT_PARAMS and layer.prop(k) is None]
    if unknown:
        names = ", ".join(p.name for p in layer.properties)
        raise ogc.QueryError(f"未知参数 {', '.join(unknown)} (unknown parameter)；可按属性过滤：{names}", unknown[0])
    fmt = parse_format(seen.get("format"))
    bbox_crs = ogc.parse_crs(seen.get("bbox-crs"), "bbox-crs")
    bbox = ogc.parse_bbox_query(seen.get("bbox"), bbox_crs, bbox_crs_given="bbox-crs" in seen)
    q = ogc.ItemsQuery(bbox=ogc.bbox_to_wgs84(bbox, bbox_crs), bbox_crs=bbox_crs,
                       datetime=ogc.parse_layer_datetime(layer, seen.get("datetime")),
                       filters={k: ogc.parse_property_value(layer, k, v) for k, v in seen.items()
                                if k not in EXPORT_PARAMS})
    q.cql = parse_filter_params(layer, seen)
    return fmt, q
