"""Surveying-department and commercial files → layer records: Shapefile, GeoPackage, FileGDB, GeoJSON
(through pyogrio / GDAL), CSV and xlsx point lists (lon/lat columns).

Each reader returns the file's rows (attributes, geometry in the file's CRS), the CRS it found and the
encoding it used; `records_for` maps the rows to the demo's record shape with the layer's field mapping.
Shapefile attribute text: the ``.cpg`` is honoured; without one the ``.dbf`` bytes are tested (UTF-8,
else GB18030); text that still looks mis-decoded is refused (`GarbledText`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, Point
from shapely.ops import linemerge

from geo.demo_files import households_estimate
from geo.geometry import repaired_multipolygon
from onboarding.errors import NoGeometry, UnreadableFile
from onboarding.mapping import LayerMapping
from onboarding.osm import FLOOR_HEIGHT_M, _number, geodesic_area_m2
from onboarding.text import decode, normalize_encoding

GDAL_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".gdb", ".fgb", ".zip")
TABLE_SUFFIXES = (".csv", ".txt", ".xlsx")
SYNTHETIC_BASE = 1 << 40  # rows without an id column: -(city_id·2^40 + row number)


@dataclass
class RawLayer:
    """A file's rows: attributes, geometries (source CRS), the file's CRS (pyproj or None), the encoding."""

    source: str
    columns: list[str]
    rows: list[dict[str, Any]]
    geoms: np.ndarray
    crs: Any = None
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)


def _shapefile_encoding(path: Path, declared: str | None) -> tuple[str, str]:
    """(encoding, how it was found) of a Shapefile's attributes; the ``.dbf`` bytes are checked against it."""
    cpg = path.with_suffix(".cpg")
    how = "given"
    if not declared and cpg.exists():
        declared, how = cpg.read_text(encoding="ascii", errors="replace").strip(), ".cpg"
    dbf = path.with_suffix(".dbf")
    data = dbf.read_bytes() if dbf.exists() else b""
    header_len = int.from_bytes(data[8:10], "little") if len(data) > 10 else 0
    _text, enc = decode(
        data[header_len:], declared, f"{path.name} ({how} encoding)" if declared else path.name
    )
    return enc, how if declared else "detected"


def read_gdal(path: Path, declared_encoding: str | None = None) -> RawLayer:
    """A Shapefile / GeoPackage / FileGDB / GeoJSON layer (the first layer of the file)."""
    import pyogrio

    notes = []
    encoding = None
    if path.suffix.lower() == ".shp":
        encoding, how = _shapefile_encoding(path, declared_encoding)
        notes.append(f"encoding {encoding.upper()} ({how})")
    try:
        df = pyogrio.read_dataframe(path, encoding=encoding, on_invalid="fix")
    except Exception as exc:  # pyogrio raises DataSourceError/DataLayerError and GDAL errors
        raise UnreadableFile(f"文件无法读取 cannot read {path.name}: {exc}") from exc
    if "geometry" not in df.columns or df.geometry.isna().all():
        raise NoGeometry(
            f"图层没有几何 {path.name} has no geometry (an attribute table?): give a spatial layer"
        )
    cols = [c for c in df.columns if c != "geometry"]
    rows = df[cols].astype(object).where(df[cols].notna(), None).to_dict("records")
    return RawLayer(
        path.name, cols, rows, np.asarray(df.geometry.values, dtype=object), df.crs, encoding, notes
    )


def _table_rows(path: Path, declared_encoding: str | None) -> tuple[list[str], list[dict], str | None]:
    if path.suffix.lower() == ".xlsx":
        import openpyxl

        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        it = wb.active.iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(it, [])]
        rows = [dict(zip(header, r, strict=False)) for r in it if any(v is not None for v in r)]
        return header, rows, None
    text, enc = decode(path.read_bytes(), declared_encoding, path.name)
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return [h.strip() for h in reader.fieldnames or []], rows, enc


def read_table(path: Path, mapping: LayerMapping, declared_encoding: str | None = None) -> RawLayer:
    """A CSV / xlsx point list: the mapping's (or default) lon and lat columns make the points."""
    header, rows, enc = _table_rows(path, declared_encoding)
    cols = mapping.resolve(header, path.name)
    if cols.get("lon") is None or cols.get("lat") is None:
        raise NoGeometry(
            f"表格没有坐标列 {path.name} has no coordinate columns (lon/lat, lng, 经度/纬度): "
            f"columns are {', '.join(header)}; name them in the mapping (poi.lon, poi.lat)"
        )
    geoms = []
    for r in rows:
        try:
            geoms.append(Point(float(r[cols["lon"]]), float(r[cols["lat"]])))
        except (TypeError, ValueError):
            geoms.append(None)
    if not any(g is not None for g in geoms):
        raise NoGeometry(f"表格没有有效坐标 {path.name}: no row has numeric coordinates")
    notes = [f"encoding {enc.upper()}"] if enc else []
    return RawLayer(path.name, header, rows, np.asarray(geoms, dtype=object), None, enc, notes)


def read_file(path: Path, mapping: LayerMapping, declared_encoding: str | None = None) -> RawLayer:
    """Any supported layer file (by suffix)."""
    path = Path(path)
    if not path.exists():
        raise UnreadableFile(f"文件不存在 no such file: {path}")
    enc = mapping.encoding or declared_encoding  # the layer's own (mapping) wins over --encoding
    enc = normalize_encoding(enc) if enc else None
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return read_table(path, mapping, enc)
    if suffix in GDAL_SUFFIXES or path.is_dir():
        return read_gdal(path, enc)
    raise UnreadableFile(
        f"不支持的文件格式 unsupported file {path.name}: use .shp, .gpkg, .gdb, .geojson, .csv or .xlsx"
    )


# -- rows → records -------------------------------------------------------------------------------


def _val(row: dict, col: str | None) -> Any:
    if col is None:
        return None
    v = row.get(col)
    if v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip()):
        return None
    return v


def _text(row: dict, col: str | None) -> str | None:
    v = _val(row, col)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return None if v is None else str(v).strip()


def _id(row: dict, col: str | None, city_id: int, i: int) -> int:
    v = _val(row, col)
    try:
        return int(v) if v is not None else -(city_id * SYNTHETIC_BASE + i + 1)
    except (TypeError, ValueError):
        return -(city_id * SYNTHETIC_BASE + i + 1)


def _tags(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        out[k] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


def node_id(lon: float, lat: float) -> int:
    """A stable synthetic (negative) node id of a vertex (1e-7°, ~1 cm): shared vertices join roads."""
    return -(int(round(lon * 1e7)) + 1_800_000_000) * 4_000_000_000 - (int(round(lat * 1e7)) + 900_000_000)


def _road(row, cols, geom, osm_id) -> list[dict]:
    lines = list(geom.geoms) if isinstance(geom, MultiLineString) else [geom]
    merged = linemerge(lines) if len(lines) > 1 else lines[0]
    parts = list(merged.geoms) if isinstance(merged, MultiLineString) else [merged]
    out = []
    for j, line in enumerate(parts):
        if not isinstance(line, LineString) or len(line.coords) < 2:
            continue
        coords = [(c[0], c[1]) for c in line.coords]
        oneway = _text(row, cols["oneway"])
        out.append(
            {
                "osm_id": osm_id if j == 0 else osm_id * 1000 - j,
                "name": _text(row, cols["name"]),
                "name_en": _text(row, cols["name_en"]),
                "kind": _text(row, cols["kind"]) or "road",
                "oneway": (oneway or "").lower() in ("yes", "1", "true", "t", "y", "是"),
                "node_ids": [node_id(x, y) for x, y in coords],
                "tags": _tags(row),
                "geom": LineString(coords),
            }
        )
    return out


def _building(row, cols, geom, osm_id) -> dict | None:
    poly = repaired_multipolygon(geom)
    if poly is None:
        return None
    height = _number(_text(row, cols["height"]))
    levels = _number(_text(row, cols["levels"]))
    if height is None and levels is not None:
        height = levels * FLOOR_HEIGHT_M
    area = _number(_text(row, cols["area"]))
    area = area if area is not None else round(geodesic_area_m2(poly), 1)
    kind_detail = _text(row, cols["kind_detail"])
    kind_detail = None if kind_detail in ("yes", "building") else kind_detail
    floors, households = households_estimate(kind_detail, height, area)
    return {
        "osm_id": osm_id,
        "name": _text(row, cols["name"]),
        "kind": "building",
        "kind_detail": kind_detail,
        "height_m": height,
        "floors": max(1, int(levels)) if levels is not None else floors,
        "area_m2": area,
        "households_est": households,
        "addr_street": _text(row, cols["addr_street"]),
        "addr_housenumber": _text(row, cols["addr_housenumber"]),
        "tags": _tags(row),
        "geom": poly,
    }


def records_for(
    kind: str, raw: RawLayer, geoms_wgs84: np.ndarray, mapping: LayerMapping, city_id: int
) -> tuple[list[dict], int]:
    """The layer's records (demo record shape) and how many rows were dropped for an empty/unusable geometry."""
    cols = mapping.resolve(raw.columns, raw.source)
    out: list[dict] = []
    dropped = 0
    for i, (row, geom) in enumerate(zip(raw.rows, geoms_wgs84, strict=True)):
        if geom is None or geom.is_empty:
            dropped += 1
            continue
        osm_id = _id(row, cols["id"], city_id, i)
        if kind == "road":
            recs = _road(row, cols, geom, osm_id)
            dropped += not recs
            out.extend(recs)
        elif kind == "building":
            rec = _building(row, cols, geom, osm_id)
            if rec is None:
                dropped += 1
            else:
                out.append(rec)
        elif kind == "poi":
            pt = geom if geom.geom_type == "Point" else geom.point_on_surface()
            out.append(
                {
                    "osm_id": osm_id,
                    "kind": _text(row, cols["kind"]),
                    "name": _text(row, cols["name"]),
                    "tags": _tags(row),
                    "geom": pt,
                }
            )
        elif kind == "water":
            poly = repaired_multipolygon(geom)
            if poly is None:
                dropped += 1
                continue
            out.append(
                {
                    "osm_id": osm_id,
                    "kind": _text(row, cols["kind"]) or "water",
                    "name": _text(row, cols["name"]),
                    "geom": poly,
                }
            )
        elif kind == "railway":
            lines = shapely.get_parts(geom)
            out.append(
                {
                    "osm_id": osm_id,
                    "kind": _text(row, cols["kind"]) or "rail",
                    "name": _text(row, cols["name"]),
                    "geom": MultiLineString(list(lines)),
                }
            )
    return out, dropped
