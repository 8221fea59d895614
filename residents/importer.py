"""Bulk import of people, houses and units (一次采集，批量导入) from CSV (UTF-8 or GB18030) or Excel (.xlsx).

One file holds one kind of record (``people``, ``houses`` or ``units``); its columns are below (English or
Chinese headers). Every row is checked like a single create through `residents.service` — GB 11643 ID
numbers, GB 32100 credit codes, phones, the standard address (exists, active, of a level that can carry the
record), dedupe by document / credit code against the records and against the earlier rows of the same
file — inside a savepoint of its own, so a failed row leaves nothing behind. The report lists each
rejected row (row as a person finds it in the file: the header is row 1), the field and the reason.

Modes: ``all`` (all or nothing: one bad row and the caller rolls everything back) and ``valid`` (the valid
rows are written, the rejected ones reported). Reading is pure (bytes in, rows out); `import_rows` works on
the caller's connection and transaction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from geo.errors import InvalidInput, ShequError

from . import partitions, service, store

KINDS = ("people", "houses", "units")
MODES = ("all", "valid")
MAX_ROWS = 20_000

#: columns per kind (the first is required in every row of that kind)
COLUMNS: dict[str, tuple[str, ...]] = {
    "people": ("address_code", "name", "id_type", "id_number", "nationality", "sex", "birth_date", "phone",
               "registration", "from_date", "key_groups"),
    "houses": ("address_code", "use", "floor_area", "ownership", "tenant_count", "landlord_ref", "rent_from",
               "rent_to"),
    "units": ("address_code", "name", "credit_code", "kind", "contact_name", "contact_phone", "staff_count"),
    # the police station's extract (`residents.reconcile_store`): one record per row, its type in record_type
    "police": ("record_type", "address_code", "id_type", "id_number", "name", "registration", "use", "credit_code"),
}
REQUIRED: dict[str, tuple[str, ...]] = {"people": ("address_code", "name"), "houses": ("address_code", "use"),
                                        "units": ("address_code", "name"),
                                        "police": ("record_type", "address_code")}
HEADER_ALIASES = {
    "地址编码": "address_code", "标准地址编码": "address_code", "姓名": "name", "名称": "name", "单位名称": "name",
    "证件类型": "id_type", "证件号码": "id_number", "身份证号": "id_number", "公民身份号码": "id_number",
    "国籍": "nationality", "性别": "sex", "出生日期": "birth_date", "电话": "phone", "联系电话": "phone",
    "手机": "phone", "登记状态": "registration", "人口类型": "registration", "入住日期": "from_date",
    "重点人群": "key_groups", "房屋用途": "use", "用途": "use", "建筑面积": "floor_area", "产权性质": "ownership",
    "租住人数": "tenant_count", "房东": "landlord_ref", "租期开始": "rent_from", "租期结束": "rent_to",
    "统一社会信用代码": "credit_code", "信用代码": "credit_code", "单位类型": "kind", "联系人": "contact_name",
    "联系人电话": "contact_phone", "从业人数": "staff_count", "员工人数": "staff_count",
    "记录类型": "record_type", "类别": "record_type",
}
SEX_WORDS = {"男": "M", "女": "F", "m": "M", "f": "F", "M": "M", "F": "F"}
ID_TYPE_WORDS = {"身份证": "citizen_id", "居民身份证": "citizen_id", "护照": "passport", "其他": "other"}
LIST_SEPARATORS = (";", "；", "、", "|")
_INTS = ("tenant_count", "staff_count")
_DATES = ("birth_date", "from_date", "rent_from", "rent_to")


@dataclass
class Row:
    """One record of the file: ``row`` as a person finds it (the header is row 1), the cell texts."""

    row: int
    fields: dict[str, Any]
    errors: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, fieldname: str, reason: str) -> None:
        """Note one problem of this row."""
        self.errors.append({"row": self.row, "field": fieldname, "reason": reason})


class ImportFileError(InvalidInput):
    """The file cannot be read as a table of the kind asked for (encoding, header, size)."""

    code = "import_file"


def _header(name: Any) -> str:
    key = str(name or "").strip().lstrip("\ufeff")
    return HEADER_ALIASES.get(key, key.lower())


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError("文件编码无法识别（应为 UTF-8 或 GB18030） the file is neither UTF-8 nor GB18030 text")


def _cells_csv(data: bytes) -> list[list[Any]]:
    return list(csv.reader(io.StringIO(_decode(data))))


def _cells_xlsx(data: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile / KeyError / ValueError on a damaged file
        raise ImportFileError(f"无法读取 Excel 文件 the .xlsx file cannot be read ({type(exc).__name__})") from None
    try:
        sheet = wb.worksheets[0]
        return [list(r) for r in sheet.iter_rows(values_only=True, max_row=MAX_ROWS + 2)]
    finally:
        wb.close()


def _cell(key: str, value: Any) -> Any:
    """A cell as the text or value the service expects (None when empty)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and key in ("id_number", "credit_code"):
        return value  # a number cell: refused by _prepare (Excel keeps 15 significant digits)
    if isinstance(value, float) and value.is_integer() and key not in ("id_number", "credit_code"):
        value = int(value)
    text = str(value).strip()
    return text or None


def read_rows(data: bytes, kind: str, filename: str | None = None) -> list[Row]:
    """The records of a CSV or .xlsx file (by the name's suffix, else by the zip signature)."""
    if kind not in COLUMNS:
        raise ImportFileError(f"导入类型应为 {'、'.join(KINDS)} 之一 kind must be one of {', '.join(KINDS)}")
    is_xlsx = (filename or "").lower().endswith(".xlsx") or data[:2] == b"PK"
    cells = _cells_xlsx(data) if is_xlsx else _cells_csv(data)
    if not cells or not any(c not in (None, "") for c in cells[0]):
        raise ImportFileError("文件缺少表头 the file has no header row")
    keys = [_header(h) for h in cells[0]]
    unknown = [k for k in keys if k and k not in COLUMNS[kind]]
    missing = [k for k in REQUIRED[kind] if k not in keys]
    if missing or unknown:
        raise ImportFileError(
            f"表头有误：缺少 {missing or '—'}，无法识别 {unknown or '—'} header: missing {missing}, unknown "
            f"{unknown}; columns of {kind}: {', '.join(COLUMNS[kind])}", {"missing": missing, "unknown": unknown})
    rows = []
    for n, values in enumerate(cells[1:], start=2):
        if not any(v not in (None, "") and str(v).strip() for v in values):
            continue
        row = Row(n, {k: _cell(k, v) for k, v in zip(keys, values, strict=False) if k})
        if len(values) > len(keys) and any(v not in (None, "") for v in values[len(keys):]):
            row.fail("row", f"列数多于表头 {len(values)} values for {len(keys)} columns")
        rows.append(row)
    if not rows:
        raise ImportFileError("文件中没有数据行 the file holds no rows")
    if len(rows) > MAX_ROWS:
        raise ImportFileError(f"一次最多导入 {MAX_ROWS} 行 at most {MAX_ROWS} rows per import (got {len(rows)})")
    return rows


def _prepare(row: Row, kind: str, key_groups: dict[str, str]) -> dict[str, Any]:
    """The row's values converted for the service (numbers, dates, sex and ID-type words, key groups)."""
    f = dict(row.fields)
    for k in REQUIRED[kind]:
        if not f.get(k):
            row.fail(k, "必填 is required")
    if isinstance(f.get("id_number"), float | int) or isinstance(f.get("credit_code"), float | int):
        which = "id_number" if isinstance(f.get("id_number"), float | int) else "credit_code"
        row.fail(which, "请以文本格式填写（数字格式会丢失位数） enter it as text: a number cell loses digits")
    _numbers(row, f)
    for k in _DATES:
        if f.get(k) is not None and not isinstance(f[k], date):
            try:
                f[k] = date.fromisoformat(str(f[k]).replace("/", "-"))
            except ValueError:
                row.fail(k, f"日期格式应为 YYYY-MM-DD a date is YYYY-MM-DD, got {f[k]!r}")
    if f.get("sex") is not None:
        f["sex"] = SEX_WORDS.get(str(f["sex"]), f["sex"])
    if f.get("id_type") is not None:
        f["id_type"] = ID_TYPE_WORDS.get(str(f["id_type"]), f["id_type"])
    groups = []
    for part in _split(f.pop("key_groups", None)):
        code = key_groups.get(part) or key_groups.get(part.lower())
        if code is None:
            row.fail("key_groups", f"未知重点人群类别 unknown key-group kind {part!r}")
        else:
            groups.append(code)
    f["_key_groups"] = groups
    return {k: v for k, v in f.items() if v is not None}


def _numbers(row: Row, f: dict[str, Any]) -> None:
    """Whole numbers and the floor area, converted in place (a bad cell noted on the row)."""
    for k in (*_INTS, "floor_area"):
        if f.get(k) is None:
            continue
        try:
            f[k] = float(str(f[k])) if k == "floor_area" else int(str(f[k]))
        except ValueError:
            what = "应为数字 must be a number" if k == "floor_area" else "应为整数 must be a whole number"
            row.fail(k, f"{what}, got {f[k]!r}")


def _split(value: Any) -> list[str]:
    if not value:
        return []
    text = str(value)
    for sep in LIST_SEPARATORS[1:]:
        text = text.replace(sep, LIST_SEPARATORS[0])
    return [p.strip() for p in text.split(LIST_SEPARATORS[0]) if p.strip()]


def _apply(conn: Any, kind: str, values: dict[str, Any], changed_by: str, source: str) -> str:
    """Write one prepared row; the reference of what was written."""
    code = values.pop("address_code")
    groups = values.pop("_key_groups", [])
    values["source"] = source
    if kind == "people":
        from_date = values.pop("from_date", None)
        p, _ = service.create_person(conn, values, changed_by, code, from_date)
        for g in groups:
            service.set_key_group(conn, p.id or 0, g, True, changed_by, from_date)
        return f"person:{p.id}"
    if kind == "houses":
        service.record_house(conn, code, values, changed_by, partition_ready=True)  # ensured above
        return f"house:{code}"
    u = service.create_unit(conn, values | {"address_code": code}, changed_by)
    return f"unit:{u.id}"


def _field_of(exc: ShequError) -> str:
    if isinstance(exc.detail, dict) and exc.detail.get("field"):
        return str(exc.detail["field"])
    return str(getattr(exc, "field", None) or "row")


def _seen_key(kind: str, values: dict[str, Any]) -> tuple[str, str] | None:
    """What makes a row a duplicate of an earlier row of the same file."""
    if kind == "people" and values.get("id_number"):
        return ("id_number", str(values["id_number"]).upper())
    if kind == "units" and values.get("credit_code"):
        return ("credit_code", str(values["credit_code"]).upper())
    if kind == "houses":
        return ("address_code", str(values["address_code"]))
    return None


def import_rows(conn: Any, kind: str, rows: list[Row], changed_by: str, source: str = "grid",
                allowed: Callable[[Any, str], bool] | None = None, progress: Any = None) -> dict[str, Any]:
    """Check and write each row in a savepoint of its own; the report: rows, written refs, errors.

    ``allowed(conn, address_code)``: False rejects the row (outside the caller's jurisdiction). The caller owns
    the transaction: commit for mode ``valid``, roll back in mode ``all`` when ``errors`` is not empty."""
    key_groups = {}
    for k in store.key_group_kinds(conn):
        key_groups[k["code"]] = k["code"]
        key_groups[k["name"]] = k["code"]
    seen: dict[tuple[str, str], int] = {}
    written: list[str] = []
    rejected: list[int] = []
    if kind == "houses":  # a district new to the houses table gets its partition first (migration 0018)
        partitions.ensure_partitions(conn, {d for r in rows if (d := partitions.district_of(
            str(r.fields.get("address_code") or "")))})
    for row in (progress(rows, len(rows)) if progress else rows):
        values = _prepare(row, kind, key_groups)
        key = _seen_key(kind, values) if not row.errors else None
        if key is not None and key in seen:
            row.fail(key[0], f"与第 {seen[key]} 行重复 duplicate of row {seen[key]}")
        code = str(values.get("address_code") or "")
        if not row.errors and allowed is not None and not allowed(conn, code):
            row.fail("address_code", f"超出管辖范围 address {code} is outside your jurisdiction")
        if not row.errors:
            savepoint = conn.begin_nested()
            try:
                written.append(_apply(conn, kind, dict(values), changed_by, source))
                savepoint.commit()
            except ShequError as exc:
                savepoint.rollback()
                row.fail(_field_of(exc), exc.message)
        if key is not None and key not in seen:
            seen[key] = row.row
        if row.errors:
            rejected.append(row.row)
    errors = [e for r in rows for e in r.errors]
    return {"kind": kind, "rows": len(rows), "written": written, "rejected_rows": rejected, "errors": errors}


def import_file(engine: Any, kind: str, rows: list[Row], changed_by: str, mode: str = "all",
                dry_run: bool = False, allowed: Callable[[Any, str], bool] | None = None,
                before_commit: Callable[[Any, dict[str, Any]], None] | None = None,
                progress: Any = None) -> dict[str, Any]:
    """`import_rows` in a transaction of its own: committed unless this is a dry run or (mode ``all``) a
    row failed; ``before_commit(conn, report)`` runs inside it just before the commit (the audit entry).
    The report says whether anything was committed (``committed``) and how many rows were written."""
    if mode not in MODES:
        raise InvalidInput(f"导入方式应为 all（全部成功才写入）或 valid（只写入有效行） mode must be all or valid, "
                           f"got {mode!r}")
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            report = import_rows(conn, kind, rows, changed_by, allowed=allowed, progress=progress)
            commit = not dry_run and (mode == "valid" or not report["errors"]) and bool(report["written"])
            report |= {"mode": mode, "dry_run": dry_run, "committed": commit,
                       "imported": len(report["written"]) if commit else 0}
            if commit:
                if before_commit is not None:
                    before_commit(conn, report)
                trans.commit()
            else:
                trans.rollback()
        except BaseException:
            if trans.is_active:
                trans.rollback()
            raise
    return report
