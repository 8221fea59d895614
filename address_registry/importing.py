"""Bulk import of standard addresses: read a CSV or GeoJSON file into rows and check each row's fields.

Pure (bytes in, plain rows and errors out). `service.import_addresses` resolves parents and creates the
addresses in one transaction with the same validation as a single create; the columns are documented
in docs/address-registry.md.

One row is one address. Its parent is given by `parent_code`, or found from the row's own text: the
district plus the components above the row's level (a house number's parent is the road of that name
in the district; a building's is that road's house number…), among the registry's active addresses
and the rows before it in the same file, so a file can add a road, its house numbers and their
buildings together, parents first.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

from address_registry.errors import ImportFileError
from address_registry.model import PARENT_LEVEL

TREE_KEYS = ("road", "house_number", "building", "unit", "floor", "room")
COLUMNS = (
    "district",
    "level",
    "parent_code",
    *TREE_KEYS,
    "lon",
    "lat",
    "community_code",
    "building_id",
    "aliases",
)
# Chinese headers accepted for the same columns
HEADER_ALIASES = {
    "区县": "district",
    "区": "district",
    "层级": "level",
    "上级编码": "parent_code",
    "道路": "road",
    "街路巷": "road",
    "门牌号": "house_number",
    "门牌": "house_number",
    "楼栋": "building",
    "幢": "building",
    "单元": "unit",
    "楼层": "floor",
    "层": "floor",
    "户室": "room",
    "室": "room",
    "经度": "lon",
    "纬度": "lat",
    "x": "lon",
    "y": "lat",
    "lng": "lon",
    "longitude": "lon",
    "latitude": "lat",
    "社区编码": "community_code",
    "建筑id": "building_id",
    "别名": "aliases",
}
ALIAS_SEPARATORS = (";", "；", "|")
MAX_ROWS = 50_000




@dataclass(slots=True)
class RowError:
    row: int
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "reason": self.reason}


@dataclass(slots=True)
class ImportRow:
    """One address to create. `row` is what a person finds in the file: the spreadsheet row of a CSV
    (the header is row 1, the first address row 2), the 1-based feature number of a GeoJSON file."""

    row: int
    fields: dict[str, str]
    lon: float | None = None
    lat: float | None = None
    level: str | None = None
    aliases: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    def components(self) -> dict[str, str]:
        return {k: self.fields[k] for k in TREE_KEYS if self.fields.get(k)}


def _header(name: str) -> str:
    key = (name or "").strip().lstrip("\ufeff")
    return HEADER_ALIASES.get(key, HEADER_ALIASES.get(key.lower(), key.lower()))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError(
        "文件编码无法识别（应为 UTF-8 或 GB18030） the file is neither UTF-8 nor GB18030 text"
    )


def read_rows(data: bytes, filename: str | None = None) -> list[ImportRow]:
    """Rows of a CSV or GeoJSON file (by the file name's suffix, else by its first character)."""
    text = _decode(data)
    name = (filename or "").lower()
    is_json = name.endswith((".geojson", ".json")) or (not name.endswith(".csv") and text.lstrip()[:1] == "{")
    rows = _geojson_rows(text) if is_json else _csv_rows(text)
    if not rows:
        raise ImportFileError("文件中没有地址 the file holds no address rows")
    if len(rows) > MAX_ROWS:
        raise ImportFileError(
            f"一次最多导入 {MAX_ROWS} 条 at most {MAX_ROWS} rows per import (got {len(rows)})"
        )
    for row in rows:
        check_row(row)
    return rows


def _csv_rows(text: str) -> list[ImportRow]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise ImportFileError("CSV 缺少表头 the CSV file has no header row")
    keys = [_header(h) for h in header]
    missing = {"lon", "lat"} - set(keys)
    if missing:
        raise ImportFileError(
            f"CSV 缺少列 missing column(s) {', '.join(sorted(missing))}; columns: {', '.join(COLUMNS)}"
        )
    rows = []
    for line_no, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        fields = {k: _text(v) for k, v in zip(keys, values, strict=False) if k}
        row = ImportRow(line_no, fields)
        if len(values) > len(keys):
            row.errors.append(
                RowError(line_no, "row", f"列数多于表头 {len(values)} values for {len(keys)} columns")
            )
        row.lon, row.lat = _number(row, "lon"), _number(row, "lat")
        rows.append(row)
    return rows


def _geojson_rows(text: str) -> list[ImportRow]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"GeoJSON 解析失败 invalid JSON: {exc}") from exc
    if (
        not isinstance(doc, dict)
        or doc.get("type") != "FeatureCollection"
        or not isinstance(doc.get("features"), list)
    ):
        raise ImportFileError("应为 GeoJSON FeatureCollection expected a GeoJSON FeatureCollection")
    rows = []
    for i, feat in enumerate(doc["features"], start=1):
        props = feat.get("properties") if isinstance(feat, dict) else None
        fields = {_header(k): _text(v) for k, v in (props or {}).items() if not isinstance(v, dict | list)}
        if isinstance(props, dict) and isinstance(props.get("aliases"), list):
            fields["aliases"] = ";".join(_text(a) for a in props["aliases"])
        row = ImportRow(i, fields)
        geom = feat.get("geometry") if isinstance(feat, dict) else None
        coords = geom.get("coordinates") if isinstance(geom, dict) and geom.get("type") == "Point" else None
        if isinstance(coords, list) and len(coords) >= 2:
            fields["lon"], fields["lat"] = _text(coords[0]), _text(coords[1])
        elif not (fields.get("lon") and fields.get("lat")):
            row.errors.append(RowError(i, "geometry", "需要 Point 几何 each feature needs a Point geometry"))
        row.lon, row.lat = _number(row, "lon"), _number(row, "lat")
        rows.append(row)
    return rows


def _number(row: ImportRow, key: str) -> float | None:
    raw = row.fields.get(key, "")
    if not raw:
        if not any(e.field == "geometry" for e in row.errors):
            row.errors.append(
                RowError(row.row, key, f"缺少{'经度' if key == 'lon' else '纬度'} {key} is required")
            )
        return None
    try:
        value = float(raw)
    except ValueError:
        row.errors.append(RowError(row.row, key, f"不是数字 not a number: {raw!r}"))
        return None
    if not math.isfinite(value):
        row.errors.append(RowError(row.row, key, f"不是有限数值 not a finite number: {raw!r}"))
        return None
    return value


def check_row(row: ImportRow) -> None:
    """Field checks that need no database: level, the components it needs, nothing below it."""
    given = [k for k in TREE_KEYS if row.fields.get(k)]
    level = row.fields.get("level") or (given[-1] if given else "")
    if level not in PARENT_LEVEL:
        reason = (
            f"未知地址层级 unknown level {level!r}: one of {', '.join(TREE_KEYS)}"
            if level
            else "没有任何地址要素 no address component (road, house_number, building, unit, floor, room)"
        )
        row.errors.append(RowError(row.row, "level", reason))
        return
    row.level = level
    idx = TREE_KEYS.index(level)
    below = [k for k in TREE_KEYS[idx + 1 :] if row.fields.get(k)]
    if below:
        row.errors.append(
            RowError(
                row.row,
                below[0],
                f"层级为 {level}，不应填写 {', '.join(below)} a {level} row cannot have {', '.join(below)}",
            )
        )
    if not row.fields.get(level):
        row.errors.append(RowError(row.row, level, f"缺少本级地址要素 {level} is required for a {level} row"))
    if not row.fields.get("parent_code"):
        if not row.fields.get("district"):
            row.errors.append(
                RowError(
                    row.row,
                    "district",
                    "需要区县（代码或名称）或 parent_code district (code or name) or parent_code is required",
                )
            )
        missing = [k for k in TREE_KEYS[:idx] if not row.fields.get(k)]
        if missing:
            row.errors.append(
                RowError(
                    row.row,
                    missing[0],
                    f"没有 parent_code 时需要上级要素 {', '.join(missing)} "
                    f"without parent_code the row needs {', '.join(missing)}",
                )
            )
    building_id = row.fields.get("building_id")
    if building_id and not building_id.isdigit():
        row.errors.append(RowError(row.row, "building_id", f"应为整数 must be an integer: {building_id!r}"))
    raw = row.fields.get("aliases") or ""
    for sep in ALIAS_SEPARATORS[1:]:
        raw = raw.replace(sep, ALIAS_SEPARATORS[0])
    row.aliases = [a.strip() for a in raw.split(ALIAS_SEPARATORS[0]) if a.strip()]
