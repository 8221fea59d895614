"""Registry operations: build, create / correct / retire / merge / split with validation, and the
geocoder cache. Orchestrates the pure core and `store`; every operation runs on a connection inside
the caller's transaction, so a rejected change writes nothing.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import replace
from typing import Any

from address_registry import codes, store
from address_registry.build import MUNICIPALITY_NAMES, assign_compounds, compound_variant, plan_registry
from address_registry.errors import AddressConflict, AddressNotFound, InvalidAddress, RegistryError
from address_registry.geocoder import Geocoder
from address_registry.model import PARENT_LEVEL, AddressRecord, AliasRecord, normalized_full_text
from address_registry.textnorm import house_number_parts, normalize_house_number, normalize_text

OWN_PATTERNS = {
    "building": re.compile(r"^[0-9a-z]+幢$"),
    "unit": re.compile(r"^\d+单元$"),
    "floor": re.compile(r"^-?\d+层$"),
    "room": re.compile(r"^[0-9a-z\-]+室$"),
}
ALIAS_KINDS = ("former_name", "poi", "compound", "variant")


# -- build ---------------------------------------------------------------------------------------


def build_registry(conn, progress_factory=None) -> dict[str, Any]:
    """Plan the registry from the base tables and write it (idempotent)."""
    inputs = store.load_build_inputs(conn)
    if not inputs["districts"]:
        raise InvalidAddress(
            "没有区县边界 no district boundaries in admin_unit: run `shequ demo load` first"
        )
    existing = store.all_current(conn)
    # a compound renamed by a person is still found by its former (OSM) name: same code, name kept
    former = store.former_names(conn)
    for rec in existing:
        if rec.level == "compound":
            rec.aliases = former.get(rec.code, [])
    bars = {}

    def tick(stage: str, n: int) -> None:
        if progress_factory is None:
            return
        if stage not in bars:
            total = {
                "roads": len({r.name for r in inputs["roads"]}),
                "buildings": len(inputs["buildings"]),
            }.get(stage)
            bars[stage] = progress_factory(f"{'道路 roads' if stage == 'roads' else '建筑 buildings'}", total)
        bars[stage](n)

    plan = plan_registry(existing=existing, progress=tick, **inputs)
    write_bar = progress_factory("写入 writing addresses", len(plan.records)) if progress_factory else None
    counts = store.apply_plan(conn, plan, progress=write_bar)
    stats = {
        **plan.stats,
        **counts,
        "planned": len(plan.records),
        "communities": len(inputs["communities"]),
        "townships": len(inputs["townships"]),
    }
    return stats


# -- validation helpers --------------------------------------------------------------------------


def _require_who(changed_by: str | None, reason: str | None) -> None:
    if not (changed_by or "").strip():
        raise InvalidAddress("必须说明修改人 changed_by is required")
    if not (reason or "").strip():
        raise InvalidAddress("必须说明修改原因 reason is required")


def canonical_own(level: str, value: str | None) -> str:
    """The canonical text of an address's own component, or RegistryError."""
    if not value or not str(value).strip():
        raise InvalidAddress(f"缺少本级地址要素 components.{level} is required")
    value = str(value).strip()
    if level == "compound":
        if len(normalize_text(value)) < 2:
            raise InvalidAddress(
                f"小区名称无效 invalid compound name: {value!r}", {"field": "compound"}
            )
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


def _district_parent(conn, parent_code: str) -> tuple[str, dict]:
    raw = parent_code[:6] if len(parent_code) == 7 and codes.is_valid(parent_code) else parent_code
    unit = store.admin_unit(conn, raw) if len(raw) == 6 else None
    if unit is None or unit["level"] != "district":
        raise InvalidAddress(
            f"道路的上级必须是区县 the parent of a road must be a district code: {parent_code!r}"
        )
    return raw, unit


def _upper_components(conn, district: dict) -> dict[str, str]:
    prov = store.admin_unit(conn, district["code"][:2] + "0000")
    city = store.admin_unit(conn, district["code"][:4] + "00")
    province = prov["name"] if prov else MUNICIPALITY_NAMES.get(district["code"][:2], "")
    city_name = city["name"] if city and city["name"] not in ("市辖区", "县") else province
    return {"province": province, "city": city_name, "district": district["name"]}


def _place(conn, rec: AddressRecord, community_code: str | None) -> None:
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


def _check_unique_text(conn, rec: AddressRecord) -> None:
    owner = store.active_code_with_text(conn, rec.normalized)
    if owner is not None and owner != rec.code:
        raise AddressConflict(
            f"已存在相同的标准地址 an active address with the same normalised text exists: {owner}",
            {"existing_code": owner, "normalized_text": rec.normalized},
        )


def _check_consistency(given: dict[str, str], parent_components: dict[str, str]) -> None:
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


# -- lifecycle -----------------------------------------------------------------------------------


def create_address(
    conn, data: dict[str, Any], changed_by: str, reason: str, *, related: list[str] | None = None
) -> AddressRecord:
    """Create a new standard address under an existing parent (validated; version 1)."""
    _require_who(changed_by, reason)
    level = data.get("level")
    if level == "compound":
        return create_compound(conn, data, changed_by, reason)[0]
    if level not in PARENT_LEVEL:
        raise InvalidAddress(
            f"未知地址层级 unknown level {level!r}: one of {', '.join(PARENT_LEVEL)}"
        )
    parent_code = str(data.get("parent_code") or "")
    components = dict(data.get("components") or {})
    own = canonical_own(level, components.get(level))
    if level == "road":
        district_raw, district = _district_parent(conn, parent_code)
        parent_components = _upper_components(conn, district)
        parent_code = codes.district_code(district_raw)
        district_code = district_raw
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
    _check_consistency({k: v for k, v in components.items() if k != level}, parent_components)
    code = _next_code(conn, parent_code, level)
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
    _place(conn, rec, data.get("community_code"))
    _check_unique_text(conn, rec)
    store.insert_version(conn, rec, changed_by, reason, related or [])
    for alias in data.get("aliases") or []:
        add_alias(conn, code, alias if isinstance(alias, dict) else {"alias": alias}, changed_by)
    return store.current(conn, code)


def correct_address(conn, code: str, data: dict[str, Any], changed_by: str, reason: str) -> AddressRecord:
    """Correct an address (own component, point, building link; a compound's name, area, label point):
    a new version, the old one kept."""
    return correct_with_members(conn, code, data, changed_by, reason)[0]


def correct_with_members(
    conn, code: str, data: dict[str, Any], changed_by: str, reason: str
) -> tuple[AddressRecord, dict[str, list[str]] | None]:
    """:func:`correct_address`, with the membership changes of a corrected compound (None for others)."""
    _require_who(changed_by, reason)
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
    _check_consistency(
        comps, {k: v for k, v in old.components.items() if k not in ("township", "community", "compound")}
    )
    if "lon" in data or "lat" in data:
        new.lon, new.lat = data.get("lon"), data.get("lat")
    if "building_id" in data:
        new.building_id = data["building_id"]
    _place(conn, new, data.get("community_code"))
    _check_unique_text(conn, new)
    if store._same(old, new):
        raise InvalidAddress("没有任何变化 the correction changes nothing")
    new.version = old.version + 1
    store.close_current(conn, code)
    store.insert_version(conn, new, changed_by, reason)
    if new.components.get(old.level) != old.components.get(old.level):
        _cascade(conn, code, {old.level: new.components[old.level]}, changed_by, reason)
    return store.current(conn, code), None


def _rename_compound(conn, compound: AddressRecord, old_name: str, changed_by: str, reason: str) -> int:
    """A corrected compound name reaches the addresses inside it in the same transaction.

    The name is a component of every member (it shows in their formatted text, not in their key), so,
    like a renamed house number for its children, each active member gets a new version with the new
    name, recorded with the compound correction's who and why. The old name stays an alias
    (`former_name`): it still geocodes to the compound. Returns the number of members updated."""
    new_name = compound.components["compound"]
    why = f"小区更名 compound {compound.code} renamed {old_name} → {new_name}: {reason}"
    members = [
        replace(
            m,
            components={**m.components, "compound": new_name},
            extra=dict(m.extra),
            version=m.version + 1,
        )
        for m in store.compound_members(conn, compound.code, lock=True)
        if m.components.get("compound") != new_name
    ]
    store.replace_versions(conn, members, changed_by, why)
    # aliases: the old name becomes a former name; the new one is the compound's name (and its digit variant)
    store.close_aliases(conn, compound.code, [normalize_text(old_name), normalize_text(new_name)])
    store.add_alias(conn, AliasRecord(compound.code, old_name, "former_name", "manual"), changed_by)
    store.add_alias(conn, AliasRecord(compound.code, new_name, "compound", "manual"), changed_by)
    variant = compound_variant(new_name)
    if variant:
        store.add_alias(conn, AliasRecord(compound.code, variant, "variant", "manual"), changed_by)
    return len(members)


def _next_code(conn, parent_code: str, level: str) -> str:
    """The next free code of `level` under `parent_code`: the build's allocator over every code ever
    issued under the parent (serials are never reused); serialised per parent for concurrent changes."""
    store.lock_serials(conn, parent_code)
    return codes.SerialAllocator(store.children_codes(conn, parent_code)).next_code(parent_code, level)


# -- compounds (小区) registered by a person ---------------------------------------------------------

# the district must hold this share of a compound's area (district boundaries are drawn coarsely)
COMPOUND_DISTRICT_MIN_SHARE = 0.99
# two active compounds may overlap by at most this share of the smaller one (shared walls, drawing slack)
COMPOUND_MAX_OVERLAP = 0.05


def area_from_geojson(obj: Any):
    """A GeoJSON Polygon / MultiPolygon (or a Feature holding one) as a shapely geometry, coordinates as
    given (no CRS change); RegistryError (invalid, field `area`) when it is no such geometry.

    Validity is not checked here (see :func:`check_area`) and nothing is repaired."""
    import shapely.geometry

    if isinstance(obj, dict) and obj.get("type") == "Feature":
        obj = obj.get("geometry")
    if not isinstance(obj, dict) or obj.get("type") not in ("Polygon", "MultiPolygon"):
        got = obj.get("type") if isinstance(obj, dict) else type(obj).__name__
        raise InvalidAddress(
            f"小区范围应为 GeoJSON Polygon 或 MultiPolygon the area must be a GeoJSON Polygon or MultiPolygon, "
            f"got {got!r}",
            {"field": "area"},
        )
    try:
        geom = shapely.geometry.shape(obj)
    except Exception as exc:  # malformed coordinates of any kind
        raise InvalidAddress(
            f"小区范围坐标格式错误 malformed area coordinates: {exc}", {"field": "area"}
        ) from exc
    return geom


def check_area(geom):
    """The compound polygon as a MultiPolygon, or RegistryError saying why it is unusable (not repaired)."""
    import numpy as np
    import shapely

    if geom is None:
        raise InvalidAddress(
            "小区必须提供范围 a compound needs an area (GeoJSON polygon)", {"field": "area"}
        )
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidAddress(
            f"小区范围应为面 the area must be a polygon, got {geom.geom_type}", {"field": "area"}
        )
    if geom.is_empty or not bool(np.isfinite(shapely.get_coordinates(geom)).all()):
        raise InvalidAddress(
            "小区范围为空或坐标无效 the area is empty or not finite", {"field": "area"}
        )
    if not geom.is_valid:
        why = shapely.is_valid_reason(geom)
        raise InvalidAddress(
            f"小区范围不是有效的面（如自相交） the area polygon is invalid: {why}",
            {"field": "area", "reason": why},
        )
    if geom.area <= 0:
        raise InvalidAddress("小区范围面积为零 the area polygon has no area", {"field": "area"})
    return geom if geom.geom_type == "MultiPolygon" else shapely.MultiPolygon([geom])


def _compound_district(conn, area) -> dict:
    """The district holding (nearly) all of the polygon, or RegistryError naming the districts it meets."""
    shares = store.admin_shares(conn, area, "district")
    if not shares or shares[0]["share"] < COMPOUND_DISTRICT_MIN_SHARE:
        raise InvalidAddress(
            "小区范围必须位于一个区县之内 the area must lie inside one district"
            + (
                ": " + ", ".join(f"{d['name']} {d['code']} {d['share']:.0%}" for d in shares)
                if shares
                else " (it meets no district with a boundary)"
            ),
            {"field": "area", "districts": [{k: d[k] for k in ("code", "name", "share")} for d in shares]},
        )
    return store.admin_unit(conn, shares[0]["code"])


def _compound_admin(conn, rec: AddressRecord) -> None:
    """Township and community of a compound: the community holding the largest share of its area (and
    that community's township), else the township holding the largest share."""
    for level in ("township", "community"):
        setattr(rec, f"{level}_code", None)
        rec.components.pop(level, None)
    community = next(iter(store.admin_shares(conn, rec.area, "community", within=rec.district_code)), None)
    township = None
    if community is not None:
        rec.community_code = community["code"]
        rec.components["community"] = community["name"]
        parent = store.admin_unit(conn, community["parent_code"]) if community["parent_code"] else None
        if parent is not None and parent["level"] == "township":
            township = parent
    if township is None:
        township = next(iter(store.admin_shares(conn, rec.area, "township", within=rec.district_code)), None)
    if township is not None:
        rec.township_code = township["code"]
        rec.components["township"] = township["name"]


def _compound_label(rec: AddressRecord, given: bool) -> None:
    """The label point: the given one must lie inside the area; none given → a point on the surface."""
    from shapely.geometry import Point

    if given and (rec.lon is not None or rec.lat is not None):
        if rec.lon is None or rec.lat is None or not rec.area.covers(Point(rec.lon, rec.lat)):
            raise InvalidAddress(
                "小区标注点必须在小区范围内 the label point (lon/lat) must lie inside the area",
                {"field": "lon/lat"},
            )
        return
    p = rec.area.point_on_surface()
    rec.lon, rec.lat = float(p.x), float(p.y)


def _check_compound_name(conn, rec: AddressRecord) -> None:
    """409 when an active compound of the district has the same normalised name (or name alias)."""
    name = rec.components["compound"]
    variants = [n for n in (name, compound_variant(name)) if n]
    upper = {k: rec.components[k] for k in ("province", "city", "district") if k in rec.components}
    full = [normalized_full_text({**upper, "compound": n}, "compound") for n in variants]
    owner = store.compound_with_name(
        conn, rec.district_code, full, [normalize_text(n) for n in variants], exclude_code=rec.code
    )
    if owner is not None:
        raise AddressConflict(
            f"本区县已有同名小区 an active compound named {name} exists in the district: {owner}",
            {"existing_code": owner, "normalized_text": rec.normalized},
        )


def _check_compound_overlap(conn, rec: AddressRecord) -> None:
    over = [
        o
        for o in store.compound_overlaps(conn, rec.area, exclude_code=rec.code)
        if o["share"] > COMPOUND_MAX_OVERLAP
    ]
    if over:
        o = over[0]
        raise InvalidAddress(
            f"小区范围与已有小区 {o['name']}（{o['code']}）重叠 {o['share']:.0%}（上限 "
            f"{COMPOUND_MAX_OVERLAP:.0%}） the area overlaps compound {o['name']} {o['code']} by {o['share']:.0%}",
            {"field": "area", "overlaps": over},
        )


def _update_members(conn, compound: AddressRecord, changed_by: str, why: str) -> dict[str, list[str]]:
    """Membership after a compound's polygon was drawn or redrawn, by the build's rule
    (`build.assign_compounds`: the building at least half inside, a house number without a footprint by
    its point). Addresses that join or leave get a new version with who and why, in the caller's
    transaction. Returns the codes that joined and left."""
    import shapely

    code = compound.code
    candidates = store.membership_candidates(conn, compound.area, code)
    buildings = store.buildings_by_id(conn, [c.building_id for c in candidates if c.building_id is not None])
    # the other compounds these addresses might belong to compete, as in the build
    reach = shapely.union_all([compound.area, *[b.geom for b in buildings]]).envelope
    others = [c for c in store.compounds_meeting(conn, reach) if c.code != code]
    work = []
    for c in candidates:
        w = replace(c, components=dict(c.components), extra=dict(c.extra), compound_code=None)
        w.components.pop("compound", None)
        work.append(w)
    assign_compounds(work, [compound, *others], buildings)
    joined, left, changed = [], [], []
    for old, new in zip(candidates, work, strict=True):
        if old.compound_code == new.compound_code or code not in (old.compound_code, new.compound_code):
            continue  # unchanged, or a matter between other compounds
        new.version = old.version + 1
        changed.append(new)
        (joined if new.compound_code == code else left).append(new.code)
    store.replace_versions(conn, changed, changed_by, why)
    return {"joined": joined, "left": left}


def _add_compound_aliases(conn, code: str, name: str, changed_by: str, source: str = "manual") -> None:
    store.add_alias(conn, AliasRecord(code, name, "compound", source), changed_by)
    variant = compound_variant(name)
    if variant:
        store.add_alias(conn, AliasRecord(code, variant, "variant", source), changed_by)


def create_compound(
    conn, data: dict[str, Any], changed_by: str, reason: str
) -> tuple[AddressRecord, dict[str, list[str]]]:
    """Register a compound (小区) drawn by a person: `components.compound` (or `name`), `area` (a shapely
    polygon in WGS84), optional label `lon`/`lat` and `parent_code` (its district).

    Checks: a valid polygon (not repaired), inside one district, no active compound of the same
    normalised name in the district (409), no overlap with an active compound beyond
    COMPOUND_MAX_OVERLAP. The code is the district's next compound serial (the build's allocator); the
    name and its digit variant become aliases; the addresses inside (build rule) get the compound as a
    new version. One transaction: the caller's. Returns (the compound, {"joined": […], "left": []})."""
    _require_who(changed_by, reason)
    components = dict(data.get("components") or {})
    name = canonical_own("compound", components.pop("compound", None) or data.get("name"))
    area = check_area(data.get("area"))
    district = _compound_district(conn, area)
    dcode = codes.district_code(district["code"])
    given_parent = str(data.get("parent_code") or "")
    if given_parent and given_parent not in (district["code"], dcode):
        raise InvalidAddress(
            f"小区范围不在上级区县 {given_parent} 内，而在 {district['name']} {district['code']} "
            f"the area lies in district {district['code']}, not in parent {given_parent}",
            {"field": "parent_code", "area_district": district["code"]},
        )
    upper = _upper_components(conn, district)
    _check_consistency(components, upper)
    source = data.get("source") or "manual"
    if source not in ("manual", "import"):
        raise InvalidAddress("source 只能是 manual 或 import for changes through the API")
    rec = AddressRecord(
        code="",
        level="compound",
        parent_code=dcode,
        district_code=district["code"],
        components={**upper, "compound": name},
        lon=data.get("lon"),
        lat=data.get("lat"),
        area=area,
        source=source,
    )
    _compound_label(rec, given=True)
    _compound_admin(conn, rec)
    _check_compound_name(conn, rec)
    _check_unique_text(conn, rec)
    _check_compound_overlap(conn, rec)
    rec.code = rec.compound_code = _next_code(conn, dcode, "compound")
    store.insert_version(conn, rec, changed_by, reason)
    _add_compound_aliases(conn, rec.code, name, changed_by)
    for alias in data.get("aliases") or []:
        add_alias(conn, rec.code, alias if isinstance(alias, dict) else {"alias": alias}, changed_by)
    members = _update_members(
        conn, rec, changed_by, f"新建小区 compound {rec.code} {name} registered: {reason}"
    )
    return store.current(conn, rec.code), members


def correct_compound(
    conn, old: AddressRecord, data: dict[str, Any], changed_by: str, reason: str
) -> tuple[AddressRecord, dict[str, list[str]]]:
    """Correct a compound: its name (members follow, `_rename_compound`), its `area` (validated like a new
    one; it must stay in its district; membership recomputed, joiners and leavers get new versions) and
    its label point (inside the area; a label the new area leaves is moved to a point on its surface)."""
    comps = dict(data.get("components") or {})
    new = replace(old, components=dict(old.components), extra=dict(old.extra))
    if "compound" in comps:
        new.components["compound"] = canonical_own("compound", comps.pop("compound"))
    _check_consistency(
        comps, {k: v for k, v in old.components.items() if k not in ("township", "community", "compound")}
    )
    area_changed = data.get("area") is not None
    if area_changed:
        new.area = check_area(data["area"])
        district = _compound_district(conn, new.area)
        if district["code"] != old.district_code:
            raise InvalidAddress(
                f"小区不能移到另一个区县（编码含区县） a compound cannot move to another district "
                f"({district['code']}; its code holds {old.district_code}): register a new one",
                {"field": "area", "area_district": district["code"]},
            )
    point_given = "lon" in data or "lat" in data
    if point_given:
        new.lon, new.lat = data.get("lon"), data.get("lat")
    if new.area is None:  # a compound without a polygon (none today): the point rule of other addresses
        _place(conn, new, data.get("community_code"))
    else:
        from shapely.geometry import Point

        moved = point_given or new.lon is None or not new.area.covers(Point(new.lon, new.lat))
        if moved:
            _compound_label(new, given=point_given)
        if area_changed:
            _compound_admin(conn, new)
    renamed = new.components["compound"] != old.components.get("compound")
    if renamed:
        _check_compound_name(conn, new)
    _check_unique_text(conn, new)
    if area_changed:
        _check_compound_overlap(conn, new)
    if store._same(old, new):
        raise InvalidAddress("没有任何变化 the correction changes nothing")
    new.version = old.version + 1
    store.close_current(conn, old.code)
    store.insert_version(conn, new, changed_by, reason)
    members = {"joined": [], "left": []}
    if area_changed:
        members = _update_members(
            conn, new, changed_by, f"小区范围更正 compound {old.code} area corrected: {reason}"
        )
    if renamed:
        _rename_compound(conn, new, old.components["compound"], changed_by, reason)
    return store.current(conn, old.code), members


def _cascade(conn, parent_code: str, changed: dict[str, str], changed_by: str, reason: str) -> None:
    for child_code in store.active_children(conn, parent_code):
        child = store.current(conn, child_code, lock=True)
        new = replace(
            child,
            components={**child.components, **changed},
            extra=dict(child.extra),
            version=child.version + 1,
        )
        _check_unique_text(conn, new)
        store.close_current(conn, child_code)
        store.insert_version(conn, new, changed_by, f"上级地址更正 parent corrected: {reason}")
        _cascade(conn, child_code, changed, changed_by, reason)


def retire_address(
    conn, code: str, changed_by: str, reason: str, related: list[str] | None = None
) -> AddressRecord:
    _require_who(changed_by, reason)
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
    return store.current(conn, code)


def merge_addresses(conn, codes_in: list[str], into: str, changed_by: str, reason: str) -> AddressRecord:
    """Merge addresses into one of them: the others are retired pointing at it, nothing is lost."""
    _require_who(changed_by, reason)
    others = [c for c in dict.fromkeys(codes_in) if c != into]
    if not others:
        raise InvalidAddress("至少需要合并一个其它地址 give at least one other address to merge")
    target = store.current(conn, into, lock=True)
    if target is None or target.status != "active":
        raise (AddressNotFound if target is None else AddressConflict)(f"目标地址无效 target {into} not active")
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
    return store.current(conn, into)


def split_address(
    conn, code: str, parts: list[dict[str, Any]], changed_by: str, reason: str
) -> list[AddressRecord]:
    """Split an address into new ones under the same parent; the old one is retired pointing at them."""
    _require_who(changed_by, reason)
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
    retired = store.current(conn, code)
    store.close_current(conn, code)
    store.insert_version(
        conn,
        replace(retired, version=retired.version + 1, extra=dict(retired.extra)),
        changed_by,
        f"拆分为 split into {', '.join(r.code for r in created)}",
        [r.code for r in created],
    )
    return created


def add_alias(conn, code: str, data: dict[str, Any], changed_by: str) -> dict:
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
    return {"address_code": code, "alias": alias, "kind": kind}


# -- geocoder cache ------------------------------------------------------------------------------


class GeocoderCache:
    """One Geocoder per database, rebuilt when the registry changed (checked at most every `ttl_s`)."""

    def __init__(self, ttl_s: float = 2.0):
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._geocoder: Geocoder | None = None
        self._stamp = None
        self._checked = 0.0

    def get(self, engine) -> Geocoder:
        now = time.monotonic()
        if self._geocoder is not None and now - self._checked < self.ttl_s:
            return self._geocoder
        with self._lock:
            if self._geocoder is not None and time.monotonic() - self._checked < self.ttl_s:
                return self._geocoder
            with engine.connect() as conn:
                st = store.stamp(conn)
                if st != self._stamp or self._geocoder is None:
                    self._geocoder = Geocoder(**store.load_geocoder_inputs(conn), parser=free_text_parser())
                    self._stamp = st
            self._checked = time.monotonic()
            return self._geocoder

    def peek(self) -> Geocoder | None:
        """The cached geocoder while it needs no check (no I/O), else None."""
        if self._geocoder is not None and time.monotonic() - self._checked < self.ttl_s:
            return self._geocoder
        return None

    def invalidate(self) -> None:
        self._checked = 0.0


def free_text_parser():
    """address_registry.parsing.parse when its model is usable here, else None (the geocoder then
    relies on its own matcher alone)."""
    try:
        from address_registry.parsing import parse

        parse("上海市黄浦区中山东一路3号")
    except Exception:  # not shipped yet / model missing: geocoding works without it
        return None
    return parse


_caches: dict[str, GeocoderCache] = {}


def cache_for(engine) -> GeocoderCache:
    key = str(engine.url)
    cache = _caches.get(key)
    if cache is None:
        cache = _caches.setdefault(key, GeocoderCache())
    return cache


def geocoder_for(engine) -> Geocoder:
    return cache_for(engine).get(engine)


def invalidate(engine) -> None:
    cache = _caches.get(str(engine.url))
    if cache is not None:
        cache.invalidate()


# -- bulk import ---------------------------------------------------------------------------------


def _import_error_field(exc: RegistryError, level: str) -> str:
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
    engine, rows, changed_by: str, reason: str, convert=None, progress=None, dry_run: bool = False
) -> dict[str, Any]:
    """:func:`import_addresses` in a transaction of its own, committed only when no row failed and this is
    not a dry run (otherwise rolled back: nothing is written). Returns the import report."""
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
            trans.commit()
    return report


def import_addresses(conn, rows, changed_by: str, reason: str, convert=None, progress=None) -> dict[str, Any]:
    """Create every row of an import (`importing.read_rows`) on `conn`, inside the caller's transaction.

    Each row runs in a savepoint so that every bad row is found and reported, not only the first; the
    caller commits only when `errors` is empty (all or nothing). `convert(lon, lat)` → WGS84 (raises
    ValueError for a bad coordinate). Returns {"rows", "created": [...], "errors": [...]}.
    """
    from sqlalchemy.exc import DBAPIError

    from address_registry.importing import TREE_KEYS, RowError
    from address_registry.model import normalized_full_text

    _require_who(changed_by, reason)
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
        level = row.level
        parent_code = f.get("parent_code") or ""
        district = None
        if f.get("district"):
            if f["district"] not in districts:
                districts[f["district"]] = _import_district(conn, f["district"])
            district, why = districts[f["district"]]
            if district is None:
                errors.append(RowError(row.row, "district", why))
                continue
        if parent_code:
            if district and level != "road":
                parent = store.current(conn, parent_code) if codes.is_valid(parent_code) else None
                if parent is not None and parent.district_code != district:
                    errors.append(
                        RowError(
                            row.row,
                            "district",
                            f"区县与上级地址不一致 district {district} differs "
                            f"from the parent's {parent.district_code}",
                        )
                    )
                    continue
        elif level == "road":
            parent_code = district
        else:
            upper = _upper_components(conn, store.admin_unit(conn, district))
            keys = TREE_KEYS[: TREE_KEYS.index(level)]
            comps = {**upper, **{k: f[k] for k in keys}}
            try:
                comps = {**upper, **{k: canonical_own(k, f[k]) for k in keys}}
            except RegistryError:
                pass  # the parent text as given; not found below if it is malformed
            parent_code = store.active_code_with_text(conn, normalized_full_text(comps))
            if parent_code is None:
                errors.append(
                    RowError(
                        row.row,
                        "parent",
                        f"上级地址不存在（库中和本文件前面的行中都没有） parent "
                        f"address {''.join(comps.values())} not found in the "
                        "registry nor earlier in the file",
                    )
                )
                continue
        data = {
            "level": level,
            "parent_code": parent_code,
            "components": row.components(),
            "lon": lon,
            "lat": lat,
            "community_code": f.get("community_code") or None,
            "building_id": int(f["building_id"]) if f.get("building_id") else None,
            "source": "import",
            "aliases": row.aliases,
        }
        savepoint = conn.begin_nested()
        try:
            rec = create_address(conn, data, changed_by, reason)
        except RegistryError as exc:
            savepoint.rollback()
            errors.append(RowError(row.row, _import_error_field(exc, level), exc.message))
            continue
        except DBAPIError as exc:
            savepoint.rollback()
            message = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            field = "building_id" if "building_id" in message else "row"
            errors.append(RowError(row.row, field, f"数据库拒绝 rejected by the database: {message}"))
            continue
        savepoint.commit()
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
