"""The life of a single standard address: create, correct, retire, merge, split, add an alias.

Every change is checked by `rules`, writes a new version (the old one is kept) with who and why, runs on
the caller's connection inside the caller's transaction (a rejected change writes nothing) and marks the
geocoder stale (effective when that transaction commits). Compounds (level ``compound``) are handed to
`compounds`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from address_registry import codes, store
from address_registry.compounds import correct_compound, create_compound
from address_registry.errors import AddressConflict, AddressNotFound, InvalidAddress
from address_registry.geocoder_cache import mark_stale
from address_registry.records import PARENT_LEVEL, AddressRecord
from address_registry.rules import (
    add_alias,
    canonical_own,
    check_consistency,
    check_unique_text,
    district_parent,
    next_code,
    place,
    require_who,
    reread,
    upper_components,
)

__all__ = [
    "add_alias",
    "correct_address",
    "correct_with_members",
    "create_address",
    "merge_addresses",
    "retire_address",
    "split_address",
]


def create_address(
    conn, data: dict[str, Any], changed_by: str, reason: str, *, related: list[str] | None = None
) -> AddressRecord:
    """Create a new standard address under an existing parent (validated; version 1)."""
    require_who(changed_by, reason)
    level = data.get("level")
    if level == "compound":
        return create_compound(conn, data, changed_by, reason)[0]
    if level not in PARENT_LEVEL:
        raise InvalidAddress(f"未知地址层级 unknown level {level!r}: one of {', '.join(PARENT_LEVEL)}")
    parent_code = str(data.get("parent_code") or "")
    components = dict(data.get("components") or {})
    own = canonical_own(level, components.get(level))
    if level == "road":
        district_raw, district = district_parent(conn, parent_code)
        parent_components = upper_components(conn, district)
        parent_code = codes.district_code(district_raw)
        district_code: str | None = district_raw
    else:
        parent = store.current(conn, parent_code) if codes.is_valid(parent_code) else None
        if parent is None or parent.status != "active":
            raise InvalidAddress(
                f"上级地址不存在或已注销 parent address {parent_code!r} not found or retired"
            )
        if parent.level != PARENT_LEVEL[level]:
            raise InvalidAddress(
                f"{level} 的上级应为 {PARENT_LEVEL[level]}，而 {parent_code} 是 {parent.level} "
                f"the parent of a {level} must be a {PARENT_LEVEL[level]}",
            )
        parent_components = {
            k: v for k, v in parent.components.items() if k not in ("township", "community", "compound")
        }
        district_code = parent.district_code
        if level != "house_number" and parent.community_code:
            # a building, unit, floor or room lies in its house's community
            given = data.get("community_code")
            if given and given != parent.community_code:
                raise InvalidAddress(
                    f"社区与上级地址不一致 community {given} differs from the parent's "
                    f"{parent.community_code}",
                    {"community_code": {"given": given, "parent": parent.community_code}},
                )
            data = {**data, "community_code": parent.community_code}
    check_consistency({k: v for k, v in components.items() if k != level}, parent_components)
    code = next_code(conn, parent_code, level)
    rec = AddressRecord(
        code=code,
        level=level,
        parent_code=parent_code,
        district_code=district_code,
        components={**parent_components, level: own},
        lon=data.get("lon"),
        lat=data.get("lat"),
        building_id=data.get("building_id"),
        source=data.get("source") or "manual",
    )
    if rec.source not in ("manual", "import"):
        raise InvalidAddress("source 只能是 manual 或 import for changes through the API")
    place(conn, rec, data.get("community_code"))
    check_unique_text(conn, rec)
    store.insert_version(conn, rec, changed_by, reason, related or [])
    mark_stale(conn)
    for alias in data.get("aliases") or []:
        add_alias(conn, code, alias if isinstance(alias, dict) else {"alias": alias}, changed_by)
    return reread(conn, code)


def correct_address(conn, code: str, data: dict[str, Any], changed_by: str, reason: str) -> AddressRecord:
    """Correct an address (own component, point, building link; a compound's name, area, label point):
    a new version, the old one kept."""
    return correct_with_members(conn, code, data, changed_by, reason)[0]


def correct_with_members(
    conn, code: str, data: dict[str, Any], changed_by: str, reason: str
) -> tuple[AddressRecord, dict[str, list[str]] | None]:
    """:func:`correct_address`, with the membership changes of a corrected compound (None for others)."""
    require_who(changed_by, reason)
    old = store.current(conn, code, lock=True)
    if old is None:
        raise AddressNotFound(f"标准地址不存在 no address {code}")
    if old.status != "active":
        raise AddressConflict(f"地址已注销，不能更正 address {code} is retired")
    if old.level == "compound":
        return correct_compound(conn, old, data, changed_by, reason)
    if data.get("area") is not None:
        raise InvalidAddress("只有小区有范围 only a compound has an area", {"field": "area"})
    comps = dict(data.get("components") or {})
    new = replace(old, components=dict(old.components), extra=dict(old.extra))
    if old.level in comps:
        new.components[old.level] = canonical_own(old.level, comps.pop(old.level))
    check_consistency(
        comps, {k: v for k, v in old.components.items() if k not in ("township", "community", "compound")}
    )
    if "lon" in data or "lat" in data:
        new.lon, new.lat = data.get("lon"), data.get("lat")
    if "building_id" in data:
        new.building_id = data["building_id"]
    place(conn, new, data.get("community_code"))
    check_unique_text(conn, new)
    if store.same_content(old, new):
        raise InvalidAddress("没有任何变化 the correction changes nothing")
    new.version = old.version + 1
    store.close_current(conn, code)
    store.insert_version(conn, new, changed_by, reason)
    if new.components.get(old.level) != old.components.get(old.level):
        _cascade(conn, code, {old.level: new.components[old.level]}, changed_by, reason)
    mark_stale(conn)
    return reread(conn, code), None


def _cascade(conn, parent_code: str, changed: dict[str, str], changed_by: str, reason: str) -> None:
    """A corrected component reaches every active descendant as a new version."""
    for child_code in store.active_children(conn, parent_code):
        child = reread(conn, child_code, lock=True)
        new = replace(
            child,
            components={**child.components, **changed},
            extra=dict(child.extra),
            version=child.version + 1,
        )
        check_unique_text(conn, new)
        store.close_current(conn, child_code)
        store.insert_version(conn, new, changed_by, f"上级地址更正 parent corrected: {reason}")
        _cascade(conn, child_code, changed, changed_by, reason)


def retire_address(
    conn, code: str, changed_by: str, reason: str, related: list[str] | None = None
) -> AddressRecord:
    """Retire an address without children (nothing is deleted: a new, retired version)."""
    require_who(changed_by, reason)
    old = store.current(conn, code, lock=True)
    if old is None:
        raise AddressNotFound(f"标准地址不存在 no address {code}")
    if old.status != "active":
        raise AddressConflict(f"地址已注销 address {code} is already retired")
    kids = store.active_children(conn, code)
    if kids:
        raise AddressConflict(
            f"该地址下还有 {len(kids)} 个有效下级地址，请先处理 address {code} still has active children",
            {"active_children": kids[:50]},
        )
    new = replace(old, status="retired", version=old.version + 1, extra=dict(old.extra))
    store.close_current(conn, code)
    store.insert_version(conn, new, changed_by, reason, related if related is not None else [])
    mark_stale(conn)
    return reread(conn, code)


def merge_addresses(conn, codes_in: list[str], into: str, changed_by: str, reason: str) -> AddressRecord:
    """Merge addresses into one of them: the others are retired pointing at it, nothing is lost."""
    require_who(changed_by, reason)
    others = [c for c in dict.fromkeys(codes_in) if c != into]
    if not others:
        raise InvalidAddress("至少需要合并一个其它地址 give at least one other address to merge")
    target = store.current(conn, into, lock=True)
    if target is None or target.status != "active":
        raise (AddressNotFound if target is None else AddressConflict)(
            f"目标地址无效 target {into} not active"
        )
    for c in others:
        rec = store.current(conn, c)
        if rec is None:
            raise AddressNotFound(f"标准地址不存在 no address {c}")
        if rec.level != target.level:
            raise InvalidAddress(f"只能合并同级地址 {c} is a {rec.level}, {into} a {target.level}")
    for c in others:
        retire_address(conn, c, changed_by, f"合并入 merged into {into}: {reason}", related=[into])
    new = replace(
        target,
        version=target.version + 1,
        extra={
            **target.extra,
            "related_codes": sorted(set(target.extra.get("related_codes", [])) | set(others)),
        },
    )
    store.close_current(conn, into)
    store.insert_version(conn, new, changed_by, f"合并 merged {', '.join(others)}: {reason}")
    mark_stale(conn)
    return reread(conn, into)


def split_address(
    conn, code: str, parts: list[dict[str, Any]], changed_by: str, reason: str
) -> list[AddressRecord]:
    """Split an address into new ones under the same parent; the old one is retired pointing at them."""
    require_who(changed_by, reason)
    if not parts or len(parts) < 2:
        raise InvalidAddress("拆分至少需要两个新地址 a split needs at least two parts")
    old = store.current(conn, code, lock=True)
    if old is None:
        raise AddressNotFound(f"标准地址不存在 no address {code}")
    retire_address(conn, code, changed_by, f"拆分 split: {reason}")
    created = []
    for part in parts:
        data = {
            "level": old.level,
            "parent_code": old.parent_code if old.level != "road" else old.district_code,
            "components": part.get("components") or {},
            "lon": part.get("lon", old.lon),
            "lat": part.get("lat", old.lat),
            "building_id": part.get("building_id"),
            "community_code": part.get("community_code"),
            "source": "manual",
        }
        created.append(
            create_address(
                conn, data, changed_by, f"由 {code} 拆分 split from {code}: {reason}", related=[code]
            )
        )
    retired = reread(conn, code)
    store.close_current(conn, code)
    store.insert_version(
        conn,
        replace(retired, version=retired.version + 1, extra=dict(retired.extra)),
        changed_by,
        f"拆分为 split into {', '.join(r.code for r in created)}",
        [r.code for r in created],
    )
    mark_stale(conn)
    return created
