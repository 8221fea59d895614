"""The rules every registry change obeys, shared by single addresses (`lifecycle`), compounds
(`compounds`) and the bulk import (`importer`): who and why, the canonical own component, the parent
district and the upper components, placement in the district / township / community polygons, a unique
normalised text, consistency with the parent, the next free code, and a validated alias.

Each check raises an `address_registry.errors` class; nothing here commits.
"""

from __future__ import annotations

import re
from typing import Any

from address_registry import codes, store
from address_registry.build import MUNICIPALITY_NAMES
from address_registry.errors import AddressConflict, AddressNotFound, InvalidAddress
from address_registry.geocoder_cache import mark_stale
from address_registry.records import AddressRecord, AliasRecord
from address_registry.textnorm import house_number_parts, normalize_house_number, normalize_text

OWN_PATTERNS = {
    "building": re.compile(r"^[0-9a-z]+幢$"),
    "unit": re.compile(r"^\d+单元$"),
    "floor": re.compile(r"^-?\d+层$"),
    "room": re.compile(r"^[0-9a-z\-]+室$"),
}
ALIAS_KINDS = ("former_name", "poi", "compound", "variant")


def require_who(changed_by: str | None, reason: str | None) -> None:
    """Every change names who makes it and why (InvalidAddress otherwise)."""
    if not (changed_by or "").strip():
        raise InvalidAddress("必须说明修改人 changed_by is required")
    if not (reason or "").strip():
        raise InvalidAddress("必须说明修改原因 reason is required")


def canonical_own(level: str, value: str | None) -> str:
    """The canonical text of an address's own component, or InvalidAddress."""
    if not value or not str(value).strip():
        raise InvalidAddress(f"缺少本级地址要素 components.{level} is required")
    value = str(value).strip()
    if level == "compound":
        if len(normalize_text(value)) < 2:
            raise InvalidAddress(f"小区名称无效 invalid compound name: {value!r}", {"field": "compound"})
        return value
    if level == "road":
        if len(normalize_text(value)) < 2:
            raise InvalidAddress(f"道路名称无效 invalid road name: {value!r}")
        return value
    if level == "house_number":
        canon = normalize_house_number(value)
        if house_number_parts(canon) is None:
            raise InvalidAddress(
                f"门牌号格式无效 invalid house number {value!r}: expected e.g. 32号, 32-1号, 12弄3号, 附5号",
                {"field": "house_number"},
            )
        return canon
    canon = normalize_text(value)
    if not OWN_PATTERNS[level].match(canon):
        example = {"building": "3幢 / 3栋 / 3号楼", "unit": "2单元", "floor": "3层", "room": "301室"}[level]
        raise InvalidAddress(
            f"{level} 格式无效 invalid {level} {value!r}: expected e.g. {example}",
            {"field": level},
        )
    return canon


def district_parent(conn, parent_code: str) -> tuple[str, dict]:
    """(6-digit district code, its admin unit) of a road's parent code (6 digits or 7 with a check digit)."""
    raw = parent_code[:6] if len(parent_code) == 7 and codes.is_valid(parent_code) else parent_code
    unit = store.admin_unit(conn, raw) if len(raw) == 6 else None
    if unit is None or unit["level"] != "district":
        raise InvalidAddress(
            f"道路的上级必须是区县 the parent of a road must be a district code: {parent_code!r}"
        )
    return raw, unit


def upper_components(conn, district: dict) -> dict[str, str]:
    """Province, city and district names of an address in ``district`` (a municipality's city is itself)."""
    prov = store.admin_unit(conn, district["code"][:2] + "0000")
    city = store.admin_unit(conn, district["code"][:4] + "00")
    province = prov["name"] if prov else MUNICIPALITY_NAMES.get(district["code"][:2], "")
    city_name = city["name"] if city and city["name"] not in ("市辖区", "县") else province
    return {"province": province, "city": city_name, "district": district["name"]}


def place(conn, rec: AddressRecord, community_code: str | None) -> None:
    """Check the point against the district / community polygons and fill township / community."""
    if rec.lon is None or rec.lat is None:
        raise InvalidAddress("必须提供坐标 lon/lat are required")
    inside = store.admin_containing(conn, rec.lon, rec.lat)
    district = inside.get("district")
    if district is None or district["code"] != rec.district_code:
        raise InvalidAddress(
            f"坐标不在所属区县 {rec.components.get('district')} 内 the point lies outside its "
            f"district {rec.district_code}",
            {"point_district": district["code"] if district else None},
        )
    if community_code:
        unit = store.admin_unit(conn, community_code)
        if unit is None or unit["level"] != "community":
            raise InvalidAddress(f"社区代码不存在 unknown community code {community_code!r}")
        if not store.point_in_admin(conn, community_code, rec.lon, rec.lat):
            raise InvalidAddress(
                f"坐标不在社区 {unit['name']} 的范围内 the point lies outside its community "
                f"polygon {community_code}",
                {"point_community": (inside.get("community") or {}).get("code")},
            )
        # the named community wins over any other polygon that also holds the point
        inside["community"] = {"code": community_code, "name": unit["name"]}
        parent = store.admin_unit(conn, unit["parent_code"]) if unit.get("parent_code") else None
        if parent is not None and parent["level"] == "township":
            inside["township"] = {"code": parent["code"], "name": parent["name"]}
    for level in ("township", "community"):
        unit = inside.get(level)
        setattr(rec, f"{level}_code", unit["code"] if unit else None)
        if unit:
            rec.components[level] = unit["name"]
        else:
            rec.components.pop(level, None)
    if rec.level not in ("road", "compound"):
        # the compound (小区) holding the point, as an attribute like the community
        compound = store.compound_containing(conn, rec.lon, rec.lat)
        rec.compound_code = compound.code if compound else None
        if compound:
            rec.components["compound"] = compound.components["compound"]
        else:
            rec.components.pop("compound", None)


def check_unique_text(conn, rec: AddressRecord) -> None:
    """AddressConflict when another active address has the same normalised full text."""
    owner = store.active_code_with_text(conn, rec.normalized)
    if owner is not None and owner != rec.code:
        raise AddressConflict(
            f"已存在相同的标准地址 an active address with the same normalised text exists: {owner}",
            {"existing_code": owner, "normalized_text": rec.normalized},
        )


def check_consistency(given: dict[str, str], parent_components: dict[str, str]) -> None:
    """InvalidAddress when a given upper component differs from the parent's (after normalisation)."""
    bad = {}
    for key, value in (given or {}).items():
        if (
            key in parent_components
            and value
            and normalize_text(str(value)) != normalize_text(parent_components[key])
        ):
            bad[key] = {"given": value, "parent": parent_components[key]}
    if bad:
        raise InvalidAddress(
            "地址要素与上级地址不一致 components are inconsistent with the parent address", bad
        )


def reread(conn, code: str, lock: bool = False) -> AddressRecord:
    """The current version of an address that must exist (it was read or written in this transaction)."""
    rec = store.current(conn, code, lock=lock)
    if rec is None:
        raise AddressNotFound(f"标准地址不存在 no address {code}")
    return rec


def next_code(conn, parent_code: str, level: str) -> str:
    """The next free code of `level` under `parent_code`: the build's allocator over every code ever
    issued under the parent (serials are never reused); serialised per parent for concurrent changes."""
    store.lock_serials(conn, parent_code)
    return codes.SerialAllocator(store.children_codes(conn, parent_code)).next_code(parent_code, level)


def add_alias(conn, code: str, data: dict[str, Any], changed_by: str) -> dict:
    """Add an alias (``alias``, ``kind`` one of ALIAS_KINDS, ``source``) to an address; marks the geocoder stale."""
    rec = store.current(conn, code)
    if rec is None:
        raise AddressNotFound(f"标准地址不存在 no address {code}")
    alias = str(data.get("alias") or "").strip()
    kind = data.get("kind") or "variant"
    if len(normalize_text(alias)) < 2:
        raise InvalidAddress("别名太短 alias must have at least two characters")
    if kind not in ALIAS_KINDS:
        raise InvalidAddress(f"别名类型无效 kind must be one of {', '.join(ALIAS_KINDS)}")
    if not store.add_alias(conn, AliasRecord(code, alias, kind, data.get("source") or "manual"), changed_by):
        raise AddressConflict(f"别名已存在 alias {alias!r} already exists for {code}")
    mark_stale(conn)
    return {"address_code": code, "alias": alias, "kind": kind}
