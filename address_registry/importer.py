"""Bulk import of standard addresses: read a CSV or GeoJSON file into rows, check each row's fields, then
create them all or nothing.

Reading is pure (bytes in, plain rows and errors out: `read_rows`). `import_addresses` resolves parents and
creates the addresses on the caller's connection with the same validation as a single create
(`lifecycle.create_address`); `import_all_or_nothing` runs it in a transaction of its own. The columns are
documented in docs/address-registry.md.

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

from address_registry import codes, store
from address_registry.errors import ImportFileError, RegistryError
from address_registry.lifecycle import create_address
from address_registry.records import PARENT_LEVEL, normalized_full_text
from address_registry.rules import canonical_own, require_who, upper_components

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
    """One problem of one row: the row as a person finds it in the file, the field, the reason."""

    row: int
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The error as JSON: row, field, reason."""
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
        """The row's own tree components (road … room) that are filled in."""
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
    try:
        rows = _geojson_rows(text) if is_json else _csv_rows(text)
    except csv.Error as exc:  # found by the contract fuzzing (issue 15): it was a 500
        raise ImportFileError(f"CSV 格式错误 malformed CSV: {exc}") from None
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


# -- creating the rows -----------------------------------------------------------------------------


def _import_error_field(exc: RegistryError, level: str) -> str:
    """The field a rejected row's error is reported on, read from the error's detail and message."""
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    if "field" in detail:
        return str(detail["field"])
    if "existing_code" in detail:
        return "full_text"
    if "point_district" in detail or "point_community" in detail or "lon/lat" in exc.message:
        return "lon/lat"
    if "community_code" in detail or "社区代码" in exc.message:
        return "community_code"
    if "上级" in exc.message and not detail:
        return "parent_code"
    if detail:
        return ",".join(sorted(str(k) for k in detail))
    return level


def _import_district(conn, value: str) -> tuple[str | None, str | None]:
    """(6-digit district code, None) for a district code or name, or (None, reason)."""
    value = value.strip()
    raw = value[:6] if len(value) == 7 and codes.is_valid(value) else value
    if raw.isdigit():
        unit = store.admin_unit(conn, raw) if len(raw) == 6 else None
        if unit is None or unit["level"] != "district":
            return None, f"区县代码不存在 unknown district code {value!r}"
        return raw, None
    found = store.districts_named(conn, value)
    if len(found) == 1:
        return found[0], None
    if not found:
        return None, f"区县名称不存在（需带边界） no district with boundaries named {value!r}"
    return (
        None,
        f"区县名称不唯一，请用代码 several districts are named {value!r}: give the code ({', '.join(found)})",
    )


def import_all_or_nothing(
    engine, rows, changed_by: str, reason: str, convert=None, progress=None, dry_run: bool = False,
    before_commit=None,
) -> dict[str, Any]:
    """:func:`import_addresses` in a transaction of its own, committed only when no row failed and this is
    not a dry run (otherwise rolled back: nothing is written). ``before_commit(conn, report)`` runs inside
    that transaction just before the commit (e.g. the caller's audit entry). Returns the import report."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            report = import_addresses(conn, rows, changed_by, reason, convert=convert, progress=progress)
        except BaseException:
            trans.rollback()
            raise
        if report["errors"] or dry_run:
            trans.rollback()
        else:
            try:
                if before_commit is not None:
                    before_commit(conn, report)
            except BaseException:
                trans.rollback()
                raise
            trans.commit()
    return report


def _row_parent(conn, row: ImportRow, district: str | None) -> tuple[str | None, RowError | None]:
    """The parent code of a checked row: its ``parent_code`` (which must lie in its district), the district
    for a road, else the active address whose text is the district plus the row's upper components."""
    f, level = row.fields, row.level
    parent_code = f.get("parent_code") or ""
    if parent_code:
        if district and level != "road":
            parent = store.current(conn, parent_code) if codes.is_valid(parent_code) else None
            if parent is not None and parent.district_code != district:
                return None, RowError(
                    row.row,
                    "district",
                    f"区县与上级地址不一致 district {district} differs from the parent's {parent.district_code}",
                )
        return parent_code, None
    if level == "road":
        return district, None
    # read_rows wants a district where parent_code is empty, and _import_district found its unit
    unit = store.admin_unit(conn, district) if district else None
    assert unit is not None
    upper = upper_components(conn, unit)
    keys = TREE_KEYS[: TREE_KEYS.index(level)]
    comps = {**upper, **{k: f[k] for k in keys}}
    try:
        comps = {**upper, **{k: canonical_own(k, f[k]) for k in keys}}
    except RegistryError:
        pass  # the parent text as given; not found below if it is malformed
    found = store.active_code_with_text(conn, normalized_full_text(comps))
    if found is None:
        return None, RowError(
            row.row,
            "parent",
            f"上级地址不存在（库中和本文件前面的行中都没有） parent address {''.join(comps.values())} not found "
            "in the registry nor earlier in the file",
        )
    return found, None


#: SQLSTATE classes that are the server's trouble, not a row's: connection (08), transaction rollback (40),
#: insufficient resources (53: disk full, out of memory), operator intervention (57: timeout, shutdown),
#: system error (58: I/O)
SERVER_FAULTS = ("08", "40", "53", "57", "58")


def _row_fault(exc: BaseException) -> bool:
    """Whether a database error is the row's fault (a bad value, a broken constraint, a geometry PostGIS
    refuses) rather than the server's (issue 15: a full disk was reported as 600 bad rows)."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    return sqlstate[:2] not in SERVER_FAULTS


def _create_row(conn, row: ImportRow, data: dict[str, Any], changed_by: str, reason: str):
    """Create one row's address in a savepoint: (record, None), or (None, the row's error) rolled back."""
    from sqlalchemy.exc import DBAPIError

    savepoint = conn.begin_nested()
    try:
        rec = create_address(conn, data, changed_by, reason)
    except RegistryError as exc:
        savepoint.rollback()
        return None, RowError(row.row, _import_error_field(exc, row.level or ""), exc.message)
    except DBAPIError as exc:
        savepoint.rollback()
        if not _row_fault(exc):
            # the server's trouble, not the row's (a full disk, a lost connection, a timeout): the whole
            # import fails with the error table's answer (507 disk_full, 503 …), never as 600 "bad rows"
            raise
        message = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        field = "building_id" if "building_id" in message else "row"
        return None, RowError(row.row, field, f"数据库拒绝 rejected by the database: {message}")
    savepoint.commit()
    return rec, None


def import_addresses(conn, rows, changed_by: str, reason: str, convert=None, progress=None) -> dict[str, Any]:
    """Create every row of an import (`read_rows`) on `conn`, inside the caller's transaction.

    Each row runs in a savepoint so that every bad row is found and reported, not only the first; the
    caller commits only when `errors` is empty (all or nothing). `convert(lon, lat)` → WGS84 (raises
    ValueError for a bad coordinate). Returns {"rows", "created": [...], "errors": [...]}.
    """
    require_who(changed_by, reason)
    created: list[dict[str, Any]] = []
    errors: list[RowError] = []
    districts: dict[str, tuple[str | None, str | None]] = {}
    for row in rows:
        if progress:
            progress(1)
        if row.errors:
            errors.extend(row.errors)
            continue
        try:
            lon, lat = convert(row.lon, row.lat) if convert else (row.lon, row.lat)
        except ValueError as exc:
            errors.append(RowError(row.row, "lon/lat", str(exc)))
            continue
        f = row.fields
        district = None
        if f.get("district"):
            if f["district"] not in districts:
                districts[f["district"]] = _import_district(conn, f["district"])
            district, why = districts[f["district"]]
            if district is None:
                errors.append(RowError(row.row, "district", why or ""))
                continue
        parent_code, error = _row_parent(conn, row, district)
        if error is not None:
            errors.append(error)
            continue
        data = {
            "level": row.level,
            "parent_code": parent_code,
            "components": row.components(),
            "lon": lon,
            "lat": lat,
            "community_code": f.get("community_code") or None,
            "building_id": int(f["building_id"]) if f.get("building_id") else None,
            "source": "import",
            "aliases": row.aliases,
        }
        rec, error = _create_row(conn, row, data, changed_by, reason)
        if error is not None:
            errors.append(error)
            continue
        created.append(
            {
                "row": row.row,
                "address_code": rec.code,
                "level": rec.level,
                "formatted": rec.formatted,
                "compound_code": rec.compound_code,
            }
        )
    return {
        "rows": len(rows),
        "created": created,
        "errors": [e.as_dict() for e in sorted(errors, key=lambda e: e.row)],
    }
