"""Plan the demo area's registry from plain data (roads, buildings, address points, admin units).

Pure: the store loads the inputs and applies the plan (`store.apply_plan`). The plan is
deterministic, and codes already in the registry are reused by their natural key, so re-running
the build after new data (e.g. communities) arrives changes only what changed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

import shapely
from shapely.geometry import LineString, MultiLineString, Point
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from address_registry import codes
from address_registry.numbering import (
    MAX_ROAD_DISTANCE_M,
    SHANGHAI,
    LocalProjection,
    assign_numbers,
    position_on_axis,
    road_axis,
)
from address_registry.records import AddressRecord, AliasRecord
from address_registry.textnorm import cn_to_int, house_number_parts, normalize_house_number, normalize_text

ROAD_NAME_ENDINGS = ("路", "道", "街", "弄", "巷", "里", "坊")
EXCLUDED_ROAD_WORDS = ("高架", "隧道", "匝道", "立交", "大桥", "越江", "枢纽", "入口", "出口", "辅路", "地道")
# POI kinds that name no place people address (a traffic light inside a footprint is no alias).
NON_ADDRESS_POI_KINDS = {
    "traffic_signals",
    "bus_stop",
    "toilets",
    "subway_entrance",
    "parking",
    "gate",
    "atm",
    "bench",
    "waste_basket",
    "crossing",
    "bicycle_rental",
    "platform",
    "entrance",
    "tram_stop",
    "car_sharing",
    "charging_station",
    "post_box",
}
MUNICIPALITY_NAMES = {"11": "北京市", "12": "天津市", "31": "上海市", "50": "重庆市"}
ENTRANCE_SNAP_M = 3.0


@dataclass(slots=True)
class AdminUnit:
    """A district, township or community with its polygon (WGS84)."""

    code: str
    name: str
    level: str
    geom: BaseGeometry | None = None
    parent_code: str | None = None


@dataclass(slots=True)
class RoadWay:
    """An OSM road way (WGS84 line) with its name and tags."""

    osm_id: int
    name: str
    geom: BaseGeometry
    kind: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class BuildingIn:
    """A building footprint (WGS84) with its OSM address tags, floors and households."""

    id: int
    geom: BaseGeometry
    osm_id: int | None = None
    name: str | None = None
    kind: str | None = None
    addr_street: str | None = None
    addr_housenumber: str | None = None
    floors: int | None = None
    households: int | None = None


@dataclass(slots=True)
class AddressPointIn:
    """An OSM address point (entrance or addr:* node)."""

    geom: Point
    osm_id: int | None = None
    kind: str | None = None
    name: str | None = None
    addr_street: str | None = None
    addr_housenumber: str | None = None


@dataclass(slots=True)
class PoiIn:
    """A named point of interest (its name becomes an alias of the building it lies on)."""

    name: str
    geom: Point
    kind: str | None = None


@dataclass(slots=True)
class LanduseIn:
    """A named land-use area (OSM landuse=residential → a compound 小区); `label` is its label point."""

    osm_id: int
    kind: str
    name: str
    geom: BaseGeometry
    label: Point | None = None


# land-use kinds that become compounds (小区 / 院落)
COMPOUND_KINDS = ("residential",)
# a building belongs to the compound holding at least this share of its footprint
COMPOUND_MIN_SHARE = 0.5


@dataclass(slots=True)
class RegistryPlan:
    """The planned registry: records, aliases and counts per kind."""

    records: list[AddressRecord]
    aliases: list[AliasRecord]
    stats: dict[str, int]


def clean_road_name(name: str | None) -> str | None:
    """The addressable road name of an OSM way name, or None when the way is no address road."""
    if not name:
        return None
    name = re.sub(r"\s+", "", re.sub(r"[（(].*?[)）]", "", name))
    if not name or any(w in name for w in EXCLUDED_ROAD_WORDS) or re.search(r"[0-9A-Za-z]", name):
        # a numbered lane (东方路873弄) is a house-number-level address of its road, not a road
        return None
    if not name.endswith(ROAD_NAME_ENDINGS):
        return None
    return name


_ROAD_NUMERAL = re.compile(r"([一二三四五六七八九十]+)(?=[路街道巷弄]$)")


def _digit_variant(name: str, numeral: re.Pattern) -> str | None:
    """``name`` with the Chinese numeral that ``numeral`` finds written as digits (None: no such numeral)."""
    m = numeral.search(name)
    if not m:
        return None
    return name[: m.start()] + str(cn_to_int(m.group(1))) + name[m.end() :]


def numeral_variant(road: str) -> str | None:
    """The road name as often typed with a digit: 中山东一路 → 中山东1路 (a numeral right before the suffix)."""
    return _digit_variant(road, _ROAD_NUMERAL)


_LANE_STREET = re.compile(r"^(?P<road>.+?[路街道巷])(?P<lane>\d+)弄$")


def street_and_number(
    street: str | None, number: str | None, english: dict[str, str]
) -> tuple[str, str] | None:
    """An OSM addr:street / addr:housenumber pair as (registry road name, canonical house number).

    English street names are mapped to the Chinese name of the road with that name:en; a lane written
    into the street (四川中路126弄 + 5~21) becomes the house number (126弄5-21号). None when unusable.
    """
    street = re.sub(r"\s+", "", street or "")
    if not street or not number:
        return None
    if street.isascii():
        street = english.get(_english_key(street))
        if street is None:
            return None
    house = normalize_house_number(number)
    m = _LANE_STREET.match(street)
    if m and "弄" not in house:
        street, house = m["road"], f"{m['lane']}弄{house}"
    if house_number_parts(house) is None:
        return None
    return street, house


def _english_key(name: str) -> str:
    key = name.lower().replace(".", " ")
    for long, short in (
        (" road", " rd"),
        (" street", " st"),
        (" avenue", " ave"),
        ("south ", "(s) "),
        ("north ", "(n) "),
        ("east ", "(e) "),
        ("west ", "(w) "),
    ):
        key = key.replace(long, short)
    return re.sub(r"[\s()]+", "", key)


def _upper_names(district: AdminUnit, admin_names: dict[str, str]) -> dict[str, str]:
    prov_code = district.code[:2]
    province = admin_names.get(prov_code + "0000") or MUNICIPALITY_NAMES.get(prov_code, "")
    city = admin_names.get(district.code[:4] + "00")
    if prov_code in MUNICIPALITY_NAMES or not city or city in ("市辖区", "县"):
        city = province
    return {"province": province, "city": city, "district": district.name}


class _CodeBook:
    """Assigns codes: the existing one for a known natural key, else the next free serial."""

    def __init__(self, existing: Iterable[AddressRecord]):
        self.by_key: dict[tuple, str] = {}
        # the serials: the same allocator as create_address (roads and compounds share the district as
        # parent, each level numbered on its own)
        self.serials = codes.SerialAllocator()
        self.used: set[str] = set()
        # compound code → its name in the registry (a name corrected by a person stays)
        self.compound_names: dict[str, str | None] = {}
        for rec in existing:
            key = natural_key(rec)
            if key is not None:
                self.by_key.setdefault(key, rec.code)
            if rec.level == "compound":
                self.compound_names[rec.code] = rec.components.get("compound")
                # a renamed compound is still found by its former names (`aliases`, set by the caller)
                for former in rec.aliases:
                    self.by_key.setdefault(("compound", rec.parent_code, former), rec.code)
            self.serials.see(rec.code)
            self.used.add(rec.code)

    def by_district(self) -> dict[str, _CodeBook]:
        """This book cut by district (6-digit GB/T 2260): each part holds the natural keys whose code lies in
        that district and the serials issued under its parents, so it issues the codes this book would there."""
        out: dict[str, _CodeBook] = {}

        def part(district: str) -> _CodeBook:
            book = out.get(district)
            if book is None:
                book = out[district] = _CodeBook(())
            return book

        for key, code in self.by_key.items():
            part(code[:6]).by_key[key] = code
        for district, serials in self.serials.by_district().items():
            part(district).serials = serials
        for code in self.used:
            part(code[:6]).used.add(code)
        for code, name in self.compound_names.items():
            part(code[:6]).compound_names[code] = name
        return out

    def code_for(self, key: tuple, parent_code: str, level: str) -> str:
        code = self.by_key.get(key)
        if code is not None and codes.parent_of(code) == parent_code:
            return code
        code = self.serials.next_code(parent_code, level)
        self.by_key[key] = code
        return code


def natural_key(rec: AddressRecord) -> tuple | None:
    """What makes an address the same address across builds."""
    c = rec.components
    if rec.level == "road":
        return ("road", c.get("road"))
    if rec.level == "compound":
        return ("compound", rec.parent_code, c.get("compound"))
    if rec.level == "house_number":
        return ("house_number", rec.parent_code, c.get("house_number"))
    if rec.level in ("building", "unit", "floor", "room"):
        return (rec.level, rec.parent_code, c.get(rec.level))
    return None


def _containing(tree: STRtree | None, items: list, point: BaseGeometry) -> Any:
    """The first item (lowest index) whose geometry in ``tree`` meets ``point``, or None."""
    if tree is None:
        return None
    idx = tree.query(point, predicate="intersects")
    if len(idx) == 0:
        return None
    return items[int(min(idx))]


class _AdminIndex:
    """District, township and community polygons, searchable by point (WGS84)."""

    def __init__(
        self, districts: Sequence[AdminUnit], townships: Sequence[AdminUnit], communities: Sequence[AdminUnit]
    ):
        self.districts = [d for d in districts if d.geom is not None]
        self.district_tree = STRtree([d.geom for d in self.districts]) if self.districts else None
        self.trees: list[tuple[STRtree | None, list[AdminUnit]]] = []
        for units in (townships, communities):
            units = [u for u in units if u.geom is not None]
            self.trees.append((STRtree([u.geom for u in units]), units) if units else (None, []))

    def district_for(self, point_wgs: Point) -> AdminUnit | None:
        """The district holding the point."""
        return _containing(self.district_tree, self.districts, point_wgs)

    def attach_admin(self, rec: AddressRecord, point: Point) -> None:
        """Set the record's township and community (code and component) from the polygons holding ``point``."""
        for (tree, units), key in zip(self.trees, ("township", "community"), strict=True):
            unit = _containing(tree, units, point)
            if unit is not None:
                setattr(rec, f"{key}_code", unit.code)
                rec.components[key] = unit.name


class _BuildingPoints:
    """A building's address point: the entrance within ENTRANCE_SNAP_M of its footprint, else a point on it."""

    def __init__(
        self,
        buildings: list[BuildingIn],
        address_points: Iterable[AddressPointIn],
        projection: LocalProjection,
    ):
        self.projection = projection
        self.entrances = [p for p in address_points if (p.kind or "") == "entrance"]
        to_m = projection.geom_to_metres
        self.entrance_tree = STRtree([to_m(p.geom) for p in self.entrances]) if self.entrances else None
        self.metres = {b.id: to_m(b.geom) for b in buildings}

    def point(self, b: BuildingIn) -> Point:
        """The building's address point (WGS84)."""
        gm = self.metres[b.id]
        if self.entrance_tree is not None:
            idx = self.entrance_tree.query(gm, predicate="dwithin", distance=ENTRANCE_SNAP_M)
            if len(idx):
                return self.entrances[int(min(idx))].geom
        return self.projection.geom_to_lonlat(gm.point_on_surface())


# houses[(road name, house number)] = list of (building or None, point wgs, source)
_Houses = dict[tuple[str, str], list[tuple[BuildingIn | None, Point, str]]]


@dataclass
class _PlanState:
    """What the stages of `plan_registry` share: the lookups, the code book and the growing plan."""

    book: _CodeBook
    admin: _AdminIndex
    admin_names: dict[str, str]
    projection: LocalProjection
    tick: Callable[[str, int], Any]
    stats: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    records: list[AddressRecord] = field(default_factory=list)
    aliases: list[AliasRecord] = field(default_factory=list)
    road_records: dict[str, AddressRecord] = field(default_factory=dict)
    # the address roads: cleaned name → its OSM ways, and → its axis in metres
    ways_by_name: dict[str, list[RoadWay]] = field(default_factory=lambda: defaultdict(list))
    axes: dict[str, LineString] = field(default_factory=dict)


def plan_registry(
    districts: list[AdminUnit],
    roads: list[RoadWay],
    buildings: list[BuildingIn],
    address_points: Sequence[AddressPointIn] = (),
    pois: Sequence[PoiIn] = (),
    townships: Sequence[AdminUnit] = (),
    communities: Sequence[AdminUnit] = (),
    admin_names: dict[str, str] | None = None,
    existing: Sequence[AddressRecord] = (),
    projection: LocalProjection = SHANGHAI,
    progress: Callable[[str, int], Any] | None = None,
    landuse: Sequence[LanduseIn] = (),
) -> RegistryPlan:
    """The registry the data implies: roads, house numbers (real or generated), buildings, compounds
    (小区, from named residential land use) and aliases.

    Four stages over one `_PlanState`: roads (`_plan_roads`), houses (`_plan_houses`), their address
    records (`_emit_houses`), compounds (`_compounds`, then `assign_compounds`). `plan_houses` runs the
    first two and makes the compound records; the third is what `address_registry.province` runs per
    district on Dask."""
    # the same arguments, passed by name: the two signatures are one list, kept equal by
    # tests/address_registry/test_build.py::test_plan_houses_takes_plan_registry_arguments
    hp = plan_houses(districts=districts, roads=roads, buildings=buildings, address_points=address_points, pois=pois,
                     townships=townships, communities=communities, admin_names=admin_names, existing=existing,
                     projection=projection, progress=progress, landuse=landuse)
    _emit_houses(hp.state, hp.ordered, hp.metres, _PoiNames(pois))
    hp.state.stats["in_compound"] = assign_compounds(hp.state.records, hp.shared.compounds, buildings)
    return finish_plan(hp)


def _plan_through_houses(
    districts: Sequence[AdminUnit],
    roads: Iterable[RoadWay],
    buildings: list[BuildingIn],
    address_points: Sequence[AddressPointIn],
    townships: Sequence[AdminUnit],
    communities: Sequence[AdminUnit],
    admin_names: dict[str, str] | None,
    existing: Sequence[AddressRecord],
    projection: LocalProjection,
    progress: Callable[[str, int], Any] | None,
) -> tuple[_PlanState, _Houses, _BuildingPoints]:
    """Stages 1 and 2 (roads; which building carries which number): the state, the houses, the points."""
    state = _PlanState(
        book=_CodeBook(existing),
        admin=_AdminIndex(districts, townships, communities),
        admin_names=admin_names or {},
        projection=projection,
        tick=progress or (lambda stage, n: None),
    )
    _plan_roads(state, roads)
    points = _BuildingPoints(buildings, address_points, projection)
    houses = _plan_houses(state, buildings, address_points, points, _prior_numbers(existing))
    return state, houses, points


def _plan(state: _PlanState) -> RegistryPlan:
    """The plan of a finished state: its records, counts and aliases (those that are road names dropped)."""
    # an alias equal to a registry road name would hijack that road: drop it
    road_keys = {normalize_text(n) for n in state.road_records}
    aliases = [
        a for a in state.aliases if normalize_text(a.alias) not in road_keys and normalize_text(a.alias)
    ]
    return RegistryPlan(records=state.records, aliases=aliases, stats=dict(state.stats))


def _prior_numbers(existing: Iterable[AddressRecord]) -> dict[int, tuple[Any, Any]]:
    """Building id → (road, house number) of the generated numbers already in the registry (kept)."""
    return {
        r.building_id: (r.components.get("road"), r.components.get("house_number"))
        for r in existing
        if r.level == "house_number" and r.building_id is not None and r.source == "generated"
    }


# -- stage 1: roads, one address per cleaned name; its axis in metres ------------------------------


def _plan_roads(state: _PlanState, roads: Iterable[RoadWay]) -> None:
    """Group the ways by cleaned name, build each road's axis and emit one road address per axis."""
    to_m = state.projection.geom_to_metres
    for way in roads:
        name = clean_road_name(way.name)
        if name and way.geom is not None and not way.geom.is_empty:
            state.ways_by_name[name].append(way)
    for name in sorted(state.ways_by_name):
        axis = road_axis([to_m(w.geom) for w in state.ways_by_name[name]])
        if axis is not None:
            state.axes[name] = axis
        state.tick("roads", 1)
    for name, axis in state.axes.items():
        _make_road(state, name, _road_point(state, name, axis))
    # de-duplicate road aliases
    state.aliases = list({(a.address_code, a.alias): a for a in state.aliases}.values())


def _road_point(state: _PlanState, name: str, axis: LineString) -> Point:
    """The road's point: the middle of its axis, or, when that lies outside every district, a point of its
    ways inside the district holding most of them."""
    admin = state.admin
    mid = state.projection.geom_to_lonlat(axis.interpolate(0.5, normalized=True))
    if admin.district_for(mid) is not None or admin.district_tree is None:
        return mid
    lines = shapely.union_all([w.geom for w in state.ways_by_name[name]])
    best, best_len = None, 0.0
    for i in admin.district_tree.query(lines, predicate="intersects"):
        length = lines.intersection(admin.districts[int(i)].geom).length
        if length > best_len:
            best, best_len = admin.districts[int(i)], length
    if best is None:
        return mid
    part = lines.intersection(best.geom)
    return (
        part.interpolate(0.5, normalized=True)
        if part.geom_type == "LineString"
        else part.representative_point()
    )


def _make_road(state: _PlanState, name: str, point_wgs: Point) -> AddressRecord | None:
    """Emit the road address ``name`` at ``point_wgs`` (None outside every district), with its name aliases."""
    district = state.admin.district_for(point_wgs)
    if district is None:
        return None
    dcode = codes.district_code(district.code)
    code = state.book.code_for(("road", name), dcode, "road")
    rec = AddressRecord(
        code=code,
        level="road",
        parent_code=dcode,
        district_code=district.code,
        components={**_upper_names(district, state.admin_names), "road": name},
        lon=point_wgs.x,
        lat=point_wgs.y,
        source="osm",
    )
    state.road_records[name] = rec
    state.records.append(rec)
    state.stats["road"] += 1
    for way in state.ways_by_name.get(name, []):
        for tag in ("old_name", "alt_name", "short_name", "official_name"):
            value = (way.tags or {}).get(tag)
            for alias in str(value or "").split(";"):
                alias = alias.strip()
                if alias and alias != name:
                    kind = "former_name" if tag == "old_name" else "variant"
                    state.aliases.append(AliasRecord(code, alias, kind, "osm"))
    digits = numeral_variant(name)
    if digits:
        state.aliases.append(AliasRecord(code, digits, "variant", "generated"))
    return rec


# -- stage 2: houses, buildings with their own address tags, address points, then generated --------


def _plan_houses(
    state: _PlanState,
    buildings: list[BuildingIn],
    address_points: Iterable[AddressPointIn],
    points: _BuildingPoints,
    prior_numbers: dict[int, tuple[Any, Any]],
) -> _Houses:
    """Every house number with the buildings (or the address point) that carry it."""
    houses, tagged_ids = _tagged_houses(state, buildings, address_points, points)
    taken = _taken_numbers(houses)
    untagged = [b for b in buildings if b.osm_id not in tagged_ids]
    items_by_road = _place_untagged(state, untagged, points, prior_numbers, houses, taken)
    building_by_id = {b.id: b for b in buildings}
    for name, items in sorted(items_by_road.items()):
        numbers = assign_numbers(items, taken[name])
        for bid, n in numbers.items():
            b = building_by_id[bid]
            houses[(name, f"{n}号")].append((b, points.point(b), "generated"))
    return houses


def _english_names(ways_by_name: dict[str, list[RoadWay]]) -> dict[str, str]:
    """English road name key (`_english_key` of name:en) → the Chinese registry road name."""
    english: dict[str, str] = {}
    for name, ways in ways_by_name.items():
        for way in ways:
            en = (way.tags or {}).get("name:en")
            if en:
                english.setdefault(_english_key(en), name)
    return english


def _tagged_houses(
    state: _PlanState,
    buildings: list[BuildingIn],
    address_points: Iterable[AddressPointIn],
    points: _BuildingPoints,
) -> tuple[_Houses, set]:
    """The house numbers OSM gives: buildings with address tags, then address points (not entrances) of
    numbers no building has. Returns the houses and the OSM ids of the tagged buildings."""
    english = _english_names(state.ways_by_name)
    houses: _Houses = defaultdict(list)
    tagged_ids = set()
    for b in sorted(buildings, key=lambda b: b.id):
        key = street_and_number(b.addr_street, b.addr_housenumber, english)
        if key is not None:
            houses[key].append((b, points.point(b), "osm"))
            tagged_ids.add(b.osm_id)
        elif b.addr_street or b.addr_housenumber:
            state.stats["osm_address_unusable"] += 1
    for p in address_points:
        if (p.kind or "") == "entrance" or p.osm_id in tagged_ids:
            continue
        key = street_and_number(p.addr_street, p.addr_housenumber, english)
        if key is not None and key not in houses:
            houses[key].append((None, p.geom, "osm"))
    return houses, tagged_ids


def _taken_numbers(houses: _Houses) -> dict[str, set[int]]:
    """Per road, the plain main numbers already used (a range takes every number of its side)."""
    taken: dict[str, set[int]] = defaultdict(set)
    for street, number in houses:
        parts = house_number_parts(number)
        if parts and parts["lane"] is None and not parts["fu"]:
            if "range" in parts:
                taken[street].update(range(parts["range"][0], parts["range"][1] + 1, 2))
            elif parts["sub"] is None:
                taken[street].add(parts["main"])
    return taken


def _place_untagged(
    state: _PlanState,
    untagged: list[BuildingIn],
    points: _BuildingPoints,
    prior_numbers: dict[int, tuple[Any, Any]],
    houses: _Houses,
    taken: dict[str, set[int]],
) -> dict[str, list[tuple[int, float, bool]]]:
    """Buildings without an address: a generated number kept from the registry when its road is still
    near, else a place on the nearest road's axis to be numbered. Returns road → (building id, metre, left)."""
    road_names = sorted(state.axes)
    road_lines_m = [state.axes[n] for n in road_names]
    road_tree = STRtree(road_lines_m) if road_lines_m else None
    items_by_road: dict[str, list[tuple[int, float, bool]]] = defaultdict(list)
    to_m = state.projection.geom_to_metres
    for b in sorted(untagged, key=lambda b: b.id):
        state.tick("buildings", 1)
        if road_tree is None:
            break
        point = points.point(b)
        pm = to_m(point)
        prior = prior_numbers.get(b.id)
        if prior and prior[0] in state.axes and state.axes[prior[0]].distance(pm) <= MAX_ROAD_DISTANCE_M:
            houses[(prior[0], prior[1])].append((b, point, "generated"))
            parts = house_number_parts(prior[1])
            if parts:
                taken[prior[0]].add(parts["main"])
            continue
        idx = road_tree.query_nearest(pm, max_distance=MAX_ROAD_DISTANCE_M)
        if len(idx) == 0:
            state.stats["building_without_road"] += 1
            continue
        name = road_names[int(min(idx))]
        m, left = position_on_axis(state.axes[name], pm)
        items_by_road[name].append((b.id, m, left))
    return items_by_road


# -- stage 3: emit house and building records ------------------------------------------------------


class _PoiNames:
    """Named POIs (not of the kinds that are no address), searchable by footprint."""

    def __init__(self, pois: Iterable[PoiIn]):
        self.pois = [p for p in pois if p.name and (p.kind or "") not in NON_ADDRESS_POI_KINDS]
        self.tree = STRtree([p.geom for p in self.pois]) if self.pois else None

    def within(self, geom: BaseGeometry) -> list[str]:
        """Names of the POIs meeting ``geom``, in input order."""
        if self.tree is None:
            return []
        return [
            self.pois[i].name for i in sorted(int(j) for j in self.tree.query(geom, predicate="intersects"))
        ]


def _add_building_aliases(state: _PlanState, rec: AddressRecord, b: BuildingIn, pois: _PoiNames) -> None:
    """The building's name and the POIs on it become aliases (kind poi) of ``rec``."""
    names = []
    if b.name:
        names.append((b.name, "poi"))
    names.extend((name, "poi") for name in pois.within(b.geom))
    seen = set()
    for alias, kind in names:
        if alias not in seen:
            seen.add(alias)
            state.aliases.append(AliasRecord(rec.code, alias, kind, "osm"))


def _house_sort_key(item):
    (street, number), _ = item
    parts = house_number_parts(number) or {}
    return (street, parts.get("lane") or 0, parts.get("main") or 0, parts.get("sub") or 0, number)


_HouseItem = tuple[tuple[str, str], list[tuple[BuildingIn | None, Point, str]]]


def sorted_houses(houses: _Houses) -> list[_HouseItem]:
    """The houses in emission order: road, lane, main number, sub-number (the order codes are issued in)."""
    return sorted(houses.items(), key=_house_sort_key)


def _emit_houses(
    state: _PlanState, ordered: Iterable[_HouseItem], metres: dict[int, BaseGeometry], pois: _PoiNames
) -> None:
    """One house-number record per house (its road made if it has no axis), in ``ordered`` order; then its
    buildings and dwellings."""
    for (street, number), members in ordered:
        _emit_one(state, street, number, members, metres, pois)


def _emit_one(
    state: _PlanState, street: str, number: str, members: list, metres: dict[int, BaseGeometry], pois: _PoiNames
) -> None:
    """The records of one house: its road first when the road has none yet, the house number, its buildings."""
    road = state.road_records.get(street)
    if road is None:
        road = _make_road(state, street, members[0][1])
        if road is None:
            state.stats["house_outside_districts"] += 1
            return
    house, bmembers = _emit_house(state, road, number, members, metres)
    if len(bmembers) == 1 and not is_apartment_block(bmembers[0][0]):
        _add_building_aliases(state, house, bmembers[0][0], pois)
        return
    if len(bmembers) == 1:
        _add_building_aliases(state, house, bmembers[0][0], pois)
    _emit_buildings(state, house, bmembers, pois)


def _emit_house(
    state: _PlanState, road: AddressRecord, number: str, members: list, metres: dict[int, BaseGeometry]
) -> tuple[AddressRecord, list]:
    """The house-number record at its largest building's point; returns it and its building members."""
    sources = {m[2] for m in members}
    source = "osm" if "osm" in sources else "generated"
    bmembers = [m for m in members if m[0] is not None]
    main = max(bmembers, key=lambda m: metres[m[0].id].area) if bmembers else members[0]
    point = main[1]
    code = state.book.code_for(("house_number", road.code, number), road.code, "house_number")
    comps = {k: v for k, v in road.components.items() if k in ("province", "city", "district", "road")}
    comps["house_number"] = number
    house = AddressRecord(
        code=code,
        level="house_number",
        parent_code=road.code,
        district_code=road.district_code,
        components=comps,
        lon=point.x,
        lat=point.y,
        building_id=main[0].id if main[0] is not None else None,
        source=source,
    )
    state.admin.attach_admin(house, point)
    state.records.append(house)
    state.stats[f"house_number_{source}"] += 1
    return house, bmembers


def _emit_buildings(state: _PlanState, house: AddressRecord, bmembers: list, pois: _PoiNames) -> None:
    """Several footprints share one number (or one apartment block gets its rooms): 1幢, 2幢… from north
    to south, then west to east; an apartment block also gets its units, floors and rooms."""
    comps = house.components  # with the house's township and community: a building's own polygons win below
    ordered = sorted(bmembers, key=lambda m: (-round(m[1].y, 5), m[1].x, m[0].id))
    for k, (b, bpoint, bsource) in enumerate(ordered, start=1):
        label = f"{k}幢"
        bcode = state.book.code_for(("building", house.code, label), house.code, "building")
        brec = AddressRecord(
            code=bcode,
            level="building",
            parent_code=house.code,
            district_code=house.district_code,
            components={**comps, "building": label},
            lon=bpoint.x,
            lat=bpoint.y,
            building_id=b.id,
            source=bsource,
        )
        state.admin.attach_admin(brec, bpoint)
        state.records.append(brec)
        state.stats["building"] += 1
        if len(bmembers) > 1:
            _add_building_aliases(state, brec, b, pois)
        if is_apartment_block(b):
            for rec in dwelling_records(brec, b, state.book):
                state.records.append(rec)
                state.stats[rec.level] += 1


# -- stage 4: compounds, one per name; the addresses inside carry it -------------------------------


def _compounds(
    state: _PlanState, landuse: Iterable[LanduseIn], existing: Iterable[AddressRecord]
) -> tuple[list[AddressRecord], list[AliasRecord], list[AddressRecord]]:
    """The compound records and aliases land use gives, and every compound addresses may fall in: those and
    the ones a person registered (POST /addresses), which are in no land use and keep their members too."""
    compound_recs, compound_aliases = compound_records(
        landuse, state.admin.district_for, state.book, state.admin_names, state.admin.attach_admin
    )
    planned = {c.code for c in compound_recs}
    registered = [
        r
        for r in existing
        if r.level == "compound" and r.status == "active" and r.area is not None and r.code not in planned
    ]
    return compound_recs, compound_aliases, [*compound_recs, *registered]


_COMPOUND_NUMERAL = re.compile(r"([一二三四五六七八九十]+)(?=(村|街坊|坊|小区|期|苑|号院)$)")


def compound_variant(name: str) -> str | None:
    """The compound name as often typed with a digit: 崂山三村 → 崂山3村, 梅园三街坊 → 梅园3街坊."""
    return _digit_variant(name, _COMPOUND_NUMERAL)


def merge_compounds(landuse: Iterable[LanduseIn]) -> list[tuple[str, BaseGeometry, Point]]:
    """(name, polygon, label point) per compound name: the polygons of one name merged (OSM draws a
    小区 as several areas), the label point kept only when it lies inside, else a point on the surface."""
    by_name: dict[str, list[LanduseIn]] = defaultdict(list)
    for lu in landuse:
        name = re.sub(r"\s+", "", lu.name or "")
        if name and (lu.kind or "") in COMPOUND_KINDS and lu.geom is not None and not lu.geom.is_empty:
            by_name[name].append(lu)
    out = []
    for name in sorted(by_name):
        parts = by_name[name]
        area = shapely.union_all([shapely.make_valid(p.geom) for p in parts])
        polys = [g for g in shapely.get_parts(area) if g.geom_type == "Polygon" and not g.is_empty]
        if not polys:
            continue
        area = shapely.MultiPolygon(polys)
        label = next((p.label for p in parts if p.label is not None and area.contains(p.label)), None)
        out.append((name, area, label if label is not None else area.point_on_surface()))
    return out


def compound_records(
    landuse: Iterable[LanduseIn],
    district_for: Callable[[Point], AdminUnit | None],
    book: _CodeBook,
    admin_names: dict[str, str],
    attach_admin: Callable[[AddressRecord, Point], None],
) -> tuple[list[AddressRecord], list[AliasRecord]]:
    """Compound addresses (level `compound`, child of the district) and their name aliases."""
    records, aliases = [], []
    for name, area, label in merge_compounds(landuse):
        district = district_for(label)
        if district is None:
            continue
        dcode = codes.district_code(district.code)
        code = book.code_for(("compound", dcode, name), dcode, "compound")
        # matched through a former name: renamed in the registry, whose name wins over the source's
        current = book.compound_names.get(code) or name
        rec = AddressRecord(
            code=code,
            level="compound",
            parent_code=dcode,
            district_code=district.code,
            components={**_upper_names(district, admin_names), "compound": current},
            lon=label.x,
            lat=label.y,
            area=area,
            compound_code=code,
            source="osm",
        )
        attach_admin(rec, label)
        records.append(rec)
        if current != name:
            continue  # the rename wrote the aliases (the source's name is a former name)
        aliases.append(AliasRecord(code, name, "compound", "osm"))
        variant = compound_variant(name)
        if variant:
            aliases.append(AliasRecord(code, variant, "variant", "generated"))
    return records, aliases


def assign_compounds(
    records: list[AddressRecord], compounds: list[AddressRecord], buildings: Iterable[BuildingIn]
) -> int:
    """Give every address inside a compound its `compound_code` and `compound` component.

    An address linked to a building follows the building (in the compound holding at least half of
    its footprint); a house number without a footprint follows its point. Returns how many changed."""
    if not compounds:
        return 0
    tree = STRtree([c.area for c in compounds])
    of_building: dict[int, AddressRecord] = {}
    for b in buildings:
        if b.geom is None or b.geom.is_empty or b.geom.area == 0:
            continue
        best, best_share = None, 0.0
        for i in tree.query(b.geom, predicate="intersects"):
            share = b.geom.intersection(compounds[int(i)].area).area / b.geom.area
            if share > best_share:
                best, best_share = compounds[int(i)], share
        if best is not None and best_share >= COMPOUND_MIN_SHARE:
            of_building[b.id] = best
    n = 0
    for rec in records:
        if rec.level in ("road", "compound"):
            continue
        compound = None
        if rec.building_id is not None:
            compound = of_building.get(rec.building_id)
        elif rec.lon is not None:
            idx = tree.query(Point(rec.lon, rec.lat), predicate="intersects")
            compound = compounds[int(min(idx))] if len(idx) else None
        if compound is not None:
            rec.compound_code = compound.code
            rec.components["compound"] = compound.components["compound"]
            n += 1
    return n


APARTMENT_KINDS = ("apartments", "residential", "dormitory")
ROOMS_PER_FLOOR_PER_UNIT = 2


def is_apartment_block(b: BuildingIn) -> bool:
    """Blocks of flats get generated units, floors and rooms (lane houses and offices do not)."""
    return (b.kind or "") in APARTMENT_KINDS and (b.households or 0) > 0 and (b.floors or 0) >= 2


def dwelling_plan(households: int, floors: int) -> list[tuple[int, int, int]]:
    """(unit, floor, room number) of each household of a block of flats: the documented layout.

    Two flats per floor and unit (room numbers floor·100 + 1 and + 2: 301室, 302室); as many units as
    needed to hold the households (``ceil(households / (2 · floors))``); flats filled unit by unit,
    floor by floor from the ground, so the last unit may stop below the roof.
    """
    per_unit = ROOMS_PER_FLOOR_PER_UNIT * floors
    units = max(1, -(-households // per_unit))
    out: list[tuple[int, int, int]] = []
    for u in range(1, units + 1):
        for f in range(1, floors + 1):
            for r in range(1, ROOMS_PER_FLOOR_PER_UNIT + 1):
                if len(out) == households:
                    return out
                out.append((u, f, f * 100 + r))
    return out


def dwelling_records(building: AddressRecord, b: BuildingIn, book: _CodeBook) -> list[AddressRecord]:
    """Generated unit, floor and room addresses of a block of flats (`source = generated`)."""
    out: list[AddressRecord] = []
    made: dict[tuple, AddressRecord] = {}
    assert b.floors is not None and b.households is not None  # a block of flats (is_apartment_block)
    floors = min(int(b.floors), 999)
    for u, f, room in dwelling_plan(min(int(b.households), 99 * floors * ROOMS_PER_FLOOR_PER_UNIT), floors):
        chain = [("unit", f"{u}单元", (u,)), ("floor", f"{f}层", (u, f)), ("room", f"{room}室", (u, f, room))]
        parent = building
        for level, label, key in chain:
            rec = made.get(key)
            if rec is None:
                code = book.code_for((level, parent.code, label), parent.code, level)
                rec = AddressRecord(
                    code=code,
                    level=level,
                    parent_code=parent.code,
                    district_code=building.district_code,
                    township_code=building.township_code,
                    community_code=building.community_code,
                    components={**parent.components, level: label},
                    lon=building.lon,
                    lat=building.lat,
                    building_id=building.building_id,
                    source="generated",
                )
                made[key] = rec
                out.append(rec)
            parent = rec
    return out


# -- the emission partitioned by district (issue 14 §3: the registry of many districts on Dask) ------
#
# Stages 1 and 2 see the whole area (a road is one address across districts; a road's numbers need all
# of its buildings) and stay on the driver. Stage 3, the bulk of the work (house numbers, buildings and
# the units, floors and rooms of every block of flats), splits by district: every code a house's records
# get lies under its road, and its road under one district, so each district's serials are issued by its
# own partition, in the global order restricted to it, and come out the same. Stage 4's compound records
# (codes under the district, untouched by stage 3) are made on the driver first and broadcast; each partition
# then finds the compound of its own records.


@dataclass
class EmitShared:
    """What every partition reads: the admin polygons, their names and the POIs (broadcast once)."""

    districts: list[AdminUnit]
    townships: list[AdminUnit]
    communities: list[AdminUnit]
    admin_names: dict[str, str]
    pois: list[PoiIn]
    compounds: list[AddressRecord]


@dataclass
class EmitPartition:
    """One district's share of stage 3: its houses with their place in the global order, its roads, the
    ways of the roads it may make, its part of the code book and its buildings' footprints in metres."""

    district: str
    houses: list[tuple[int, _HouseItem]]
    roads: dict[str, AddressRecord]
    ways: dict[str, list[RoadWay]]
    book: _CodeBook
    metres: dict[int, BaseGeometry]


@dataclass
class EmitResult:
    """A partition's records and aliases per house (keyed by its place in the global order) as plain tuples of
    their fields — a slotted dataclass pickles 3–4× slower than its tuple, and the answers are the bulk of what
    travels back — and its counts."""

    district: str
    chunks: list[tuple[int, list[tuple], list[tuple]]]
    stats: dict[str, int]


_record_row = attrgetter(*(f.name for f in fields(AddressRecord)))
_alias_row = attrgetter(*(f.name for f in fields(AliasRecord)))


@dataclass
class HousePlan:
    """The driver's state after stages 1 and 2, the houses in emission order and the compound records (stage
    4's first half: their codes are issued under the district, apart from every code stage 3 issues)."""

    state: _PlanState
    ordered: list[_HouseItem]
    metres: dict[int, BaseGeometry]
    shared: EmitShared
    compounds: list[AddressRecord]
    compound_aliases: list[AliasRecord]


def plan_houses(
    districts: list[AdminUnit],
    roads: list[RoadWay],
    buildings: list[BuildingIn],
    address_points: Sequence[AddressPointIn] = (),
    pois: Sequence[PoiIn] = (),
    townships: Sequence[AdminUnit] = (),
    communities: Sequence[AdminUnit] = (),
    admin_names: dict[str, str] | None = None,
    existing: Sequence[AddressRecord] = (),
    projection: LocalProjection = SHANGHAI,
    progress: Callable[[str, int], Any] | None = None,
    landuse: Sequence[LanduseIn] = (),
) -> HousePlan:
    """Stages 1 and 2 of `plan_registry` (same arguments) and its compound records."""
    state, houses, points = _plan_through_houses(
        districts, roads, buildings, address_points, townships, communities, admin_names, existing, projection,
        progress,
    )
    compound_recs, compound_aliases, targets = _compounds(state, landuse, existing)
    shared = EmitShared(list(districts), list(townships), list(communities), state.admin_names, list(pois), targets)
    return HousePlan(state, sorted_houses(houses), points.metres, shared, compound_recs, compound_aliases)


def _house_district(state: _PlanState, street: str, items: list[tuple[int, _HouseItem]]) -> str | None:
    """The district whose partition emits the houses of ``street``: its road's, else the district of the
    first house (in emission order) inside one (where stage 3 makes the road); None when none is inside."""
    road = state.road_records.get(street)
    if road is not None:
        return road.district_code
    for _, (_, members) in items:
        district = state.admin.district_for(members[0][1])
        if district is not None:
            return district.code
    return None


def emission_partitions(hp: HousePlan) -> list[EmitPartition]:
    """Stage 3 cut by district (largest first): every house goes with its road's district. The houses of a
    road outside every district are counted here and emitted nowhere, as in `plan_registry`."""
    state = hp.state
    by_street: dict[str, list[tuple[int, _HouseItem]]] = defaultdict(list)
    for i, item in enumerate(hp.ordered):
        by_street[item[0][0]].append((i, item))
    books = state.book.by_district()
    parts: dict[str, EmitPartition] = {}
    for street, items in by_street.items():
        district = _house_district(state, street, items)
        if district is None:
            state.stats["house_outside_districts"] += len(items)
            continue
        part = parts.get(district)
        if part is None:
            book = books.get(district) or _CodeBook(())
            part = parts[district] = EmitPartition(district, [], {}, {}, book, {})
        part.houses.extend(items)
        road = state.road_records.get(street)
        if road is not None:
            part.roads[street] = road
        else:
            part.ways[street] = state.ways_by_name.get(street, [])
        for _, (_, members) in items:
            for b, _, _ in members:
                if b is not None:
                    part.metres[b.id] = hp.metres[b.id]
    out = sorted(parts.values(), key=lambda p: (-len(p.houses), p.district))
    for part in out:
        part.houses.sort(key=lambda h: h[0])
    return out


def emit_partition(shared: EmitShared, part: EmitPartition) -> EmitResult:
    """Stage 3 of one district (pure): the records of its houses, in the global order restricted to it."""
    state, bounds = emit_records(shared, part)
    chunks = [
        (i, list(map(_record_row, state.records[r0:r1])), list(map(_alias_row, state.aliases[a0:a1])))
        for i, r0, r1, a0, a1 in bounds
    ]
    return EmitResult(part.district, chunks, dict(state.stats))


#: a house's place in the global order and the bounds of its records and aliases in an emitted state
HouseBounds = tuple[int, int, int, int, int]


def emit_records(shared: EmitShared, part: EmitPartition) -> tuple[_PlanState, list[HouseBounds]]:
    """Stage 3 of one district (pure): the state holding its records and aliases (``state.records``,
    ``state.aliases``, ``state.stats``) and, per house, ``(place in the global order, first record, end, first
    alias, end)``."""
    state = _PlanState(
        book=part.book,
        admin=_AdminIndex(shared.districts, shared.townships, shared.communities),
        admin_names=shared.admin_names,
        projection=SHANGHAI,  # not read by stage 3
        tick=lambda stage, n: None,
        road_records=dict(part.roads),
    )
    state.ways_by_name.update(part.ways)
    pois = _PoiNames(shared.pois)
    bounds: list[HouseBounds] = []
    for i, ((street, number), members) in part.houses:
        r0, a0 = len(state.records), len(state.aliases)
        _emit_one(state, street, number, members, part.metres, pois)
        bounds.append((i, r0, len(state.records), a0, len(state.aliases)))
    # stage 4's second half for these records: each follows its building (all of them in this partition)
    buildings = {b.id: b for _, (_, members) in part.houses for b, _, _ in members if b is not None}
    state.stats["in_compound"] = assign_compounds(state.records, shared.compounds, list(buildings.values()))
    return state, bounds


def merge_emitted(hp: HousePlan, results: Sequence[EmitResult]) -> None:
    """The partitions' records and aliases appended to the driver's state in the global order, counts added."""
    state = hp.state
    for _, rows, alias_rows in sorted((c for r in results for c in r.chunks), key=lambda c: c[0]):
        for row in rows:
            rec = AddressRecord(*row)
            state.records.append(rec)
            if rec.level == "road":  # made by stage 3: a road without an axis
                state.road_records[rec.components["road"]] = rec
        state.aliases.extend(AliasRecord(*a) for a in alias_rows)
    for r in results:
        for key, n in r.stats.items():
            state.stats[key] += n


def finish_plan(hp: HousePlan) -> RegistryPlan:
    """The compound records after the emitted ones (their compounds already found): the plan."""
    state = hp.state
    state.records.extend(hp.compounds)
    state.aliases.extend(hp.compound_aliases)
    state.stats["compound"] = len(hp.compounds)
    state.stats["in_compound"] += 0  # counted by the emission (per partition); present (0) when none is in one
    return _plan(state)


def lines_of(geom: BaseGeometry) -> list[LineString]:
    if isinstance(geom, MultiLineString):
        return list(geom.geoms)
    return [geom]


__all__ = [
    "AdminUnit",
    "RoadWay",
    "BuildingIn",
    "AddressPointIn",
    "PoiIn",
    "LanduseIn",
    "RegistryPlan",
    "plan_registry",
    "plan_houses",
    "emission_partitions",
    "emit_partition",
    "emit_records",
    "merge_emitted",
    "finish_plan",
    "clean_road_name",
    "natural_key",
    "shapely",
]
