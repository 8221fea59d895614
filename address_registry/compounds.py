"""Compounds (小区) registered or corrected by a person, with their geometry rules.

A compound is drawn as a polygon: it must be a valid polygon (never repaired), lie inside one district
(COMPOUND_DISTRICT_MIN_SHARE of its area), not overlap another active compound beyond
COMPOUND_MAX_OVERLAP, and have a name unique in its district. The addresses inside it (the build's rule,
`build.assign_compounds`) carry it as an attribute and get new versions when it is drawn, redrawn or
renamed, in the caller's transaction.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from sqlalchemy import text

from address_registry import codes, store
from address_registry.build import assign_compounds, compound_variant
from address_registry.errors import AddressConflict, InvalidAddress
from address_registry.geocoder_cache import mark_stale
from address_registry.records import AddressRecord, AliasRecord, normalized_full_text
from address_registry.rules import (
    add_alias,
    canonical_own,
    check_consistency,
    check_unique_text,
    next_code,
    place,
    require_who,
    reread,
    upper_components,
)
from address_registry.textnorm import normalize_text
from geo.crs import CrsError, check_in_china, geometry_to_wgs84, in_china, normalize_crs

# the district must hold this share of a compound's area (district boundaries are drawn coarsely)
COMPOUND_DISTRICT_MIN_SHARE = 0.99
# two active compounds may overlap by at most this share of the smaller one (shared walls, drawing slack)
COMPOUND_MAX_OVERLAP = 0.05


def area_from_geojson(obj: Any):
    """A GeoJSON Polygon / MultiPolygon (or a Feature holding one) as a shapely geometry, coordinates as
    given (no CRS change); InvalidAddress (field `area`) when it is no such geometry.

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
    """The compound polygon as a MultiPolygon, or InvalidAddress saying why it is unusable (not repaired)."""
    import numpy as np
    import shapely

    if geom is None:
        raise InvalidAddress("小区必须提供范围 a compound needs an area (GeoJSON polygon)", {"field": "area"})
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidAddress(
            f"小区范围应为面 the area must be a polygon, got {geom.geom_type}", {"field": "area"}
        )
    if geom.is_empty or not bool(np.isfinite(shapely.get_coordinates(geom)).all()):
        raise InvalidAddress("小区范围为空或坐标无效 the area is empty or not finite", {"field": "area"})
    if not geom.is_valid:
        why = shapely.is_valid_reason(geom)
        raise InvalidAddress(
            f"小区范围不是有效的面（如自相交） the area polygon is invalid: {why}",
            {"field": "area", "reason": why},
        )
    if geom.area <= 0:
        raise InvalidAddress("小区范围面积为零 the area polygon has no area", {"field": "area"})
    return geom if geom.geom_type == "MultiPolygon" else shapely.MultiPolygon([geom])


def area_wgs84(area: dict[str, Any], crs: str):
    """A request's GeoJSON polygon as a shapely geometry in WGS84: every vertex inside China (InvalidAddress
    otherwise, with the count), then converted from ``crs`` (GCJ-02 → WGS84). A GCJ-02 polygon's validity
    is checked on the polygon as given (the user's drawing), and again after conversion by the caller."""
    import shapely

    geom = area_from_geojson(area)
    crs = normalize_crs(crs)
    coords = shapely.get_coordinates(geom)
    bad = [tuple(c) for c in coords if not (bool(in_china(c[0], c[1])) and all(map(math.isfinite, c)))]
    if bad:
        try:
            check_in_china(*bad[0])
        except CrsError as exc:
            raise InvalidAddress(
                f"小区范围有 {len(bad)} 个顶点无效或不在中国境内 {len(bad)} vertex(es) of the area invalid or "
                f"outside China: {exc}",
                {"field": "area", "vertices_outside": len(bad)},
            ) from exc
    if crs == "gcj02":
        check_area(geom)
    return geometry_to_wgs84(geom, crs)


def _compound_district(conn, area) -> dict:
    """The district holding (nearly) all of the polygon, or InvalidAddress naming the districts it meets."""
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
    unit = store.admin_unit(conn, shares[0]["code"])
    assert unit is not None  # the shares are of this table's units
    return unit


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
    upper: dict[str, str] = {
        k: rec.components[k] for k in ("province", "city", "district") if k in rec.components
    }
    full = [normalized_full_text({**upper, "compound": n}, "compound") for n in variants]
    assert rec.district_code is not None  # a compound always lies in a district
    owner = store.compound_with_name(
        conn, rec.district_code, full, [normalize_text(n) for n in variants], exclude_code=rec.code
    )
    if owner is not None:
        raise AddressConflict(
            f"本区县已有同名小区 an active compound named {name} exists in the district: {owner}",
            {"existing_code": owner, "normalized_text": rec.normalized},
        )


def _check_compound_overlap(conn, rec: AddressRecord) -> None:
    """InvalidAddress when the area overlaps an active compound by more than COMPOUND_MAX_OVERLAP."""
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
    joined: list[str] = []
    left: list[str] = []
    changed: list[AddressRecord] = []
    for old, new in zip(candidates, work, strict=True):
        if old.compound_code == new.compound_code or code not in (old.compound_code, new.compound_code):
            continue  # unchanged, or a matter between other compounds
        new.version = old.version + 1
        changed.append(new)
        (joined if new.compound_code == code else left).append(new.code)
    store.replace_versions(conn, changed, changed_by, why)
    return {"joined": joined, "left": left}


def _add_compound_aliases(conn, code: str, name: str, changed_by: str, source: str = "manual") -> None:
    """The compound's name and its digit variant as aliases."""
    store.add_alias(conn, AliasRecord(code, name, "compound", source), changed_by)
    variant = compound_variant(name)
    if variant:
        store.add_alias(conn, AliasRecord(code, variant, "variant", source), changed_by)


def lock_compounds(conn) -> None:
    """Serialise compound registration and correction (transaction-scoped advisory lock), taken before the
    name and overlap checks so two concurrent requests cannot both pass them."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('shequ_compound_registry'))"))


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
    require_who(changed_by, reason)
    lock_compounds(conn)
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
    upper = upper_components(conn, district)
    check_consistency(components, upper)
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
    check_unique_text(conn, rec)
    _check_compound_overlap(conn, rec)
    rec.code = rec.compound_code = next_code(conn, dcode, "compound")
    store.insert_version(conn, rec, changed_by, reason)
    _add_compound_aliases(conn, rec.code, name, changed_by)
    for alias in data.get("aliases") or []:
        add_alias(conn, rec.code, alias if isinstance(alias, dict) else {"alias": alias}, changed_by)
    members = _update_members(
        conn, rec, changed_by, f"新建小区 compound {rec.code} {name} registered: {reason}"
    )
    mark_stale(conn)
    return reread(conn, rec.code), members


def correct_compound(
    conn, old: AddressRecord, data: dict[str, Any], changed_by: str, reason: str
) -> tuple[AddressRecord, dict[str, list[str]]]:
    """Correct a compound: its name (members follow, `_rename_compound`), its `area` (validated like a new
    one; it must stay in its district; membership recomputed, joiners and leavers get new versions) and
    its label point (inside the area; a label the new area leaves is moved to a point on its surface)."""
    lock_compounds(conn)
    comps = dict(data.get("components") or {})
    new = replace(old, components=dict(old.components), extra=dict(old.extra))
    if "compound" in comps:
        new.components["compound"] = canonical_own("compound", comps.pop("compound"))
    check_consistency(
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
        place(conn, new, data.get("community_code"))
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
    check_unique_text(conn, new)
    if area_changed:
        _check_compound_overlap(conn, new)
    if store.same_content(old, new):
        raise InvalidAddress("没有任何变化 the correction changes nothing")
    new.version = old.version + 1
    store.close_current(conn, old.code)
    store.insert_version(conn, new, changed_by, reason)
    members: dict[str, list[str]] = {"joined": [], "left": []}
    if area_changed:
        members = _update_members(
            conn, new, changed_by, f"小区范围更正 compound {old.code} area corrected: {reason}"
        )
    if renamed:
        _rename_compound(conn, new, old.components["compound"], changed_by, reason)
    mark_stale(conn)
    return reread(conn, old.code), members


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
