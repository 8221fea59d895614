"""Forward geocoder over the registry: free text → standard addresses, best first.

Pure and in memory (plain records in, plain dicts out). How a query is matched:

1. `normalize_text` (full-width, Chinese numerals before number words, 栋/座/号楼 → 幢, 门 → 单元,
   户 → 室, phone numbers and punctuation dropped).
2. A left-to-right longest-match scan against a dictionary of every known name: province/city,
   district (also without 区/新区), township and community (also without 街道/镇/居委会…), road names,
   and aliases (former road names, building and POI names). The scan is indexed by first character,
   so it costs a few dict look-ups per character.
3. The text after the matched road (or alias) is read as house number (32号, 32-1号, 12弄3号, 附5号,
   a bare 32), building (3幢), unit (2单元), floor (3层) and room (301室, or 3-2-301).
4. No road or alias found → fuzzy: the text before the first digit is compared with every road and
   alias name (rapidfuzz, normalised InDel similarity), both as characters and as pinyin syllables
   (pypinyin, toneless), so a homophone slip of the input method (宁波路 → 宁博路) still ranks its road
   first; candidates whose house number exists win.
5. A compound (小区) name — the compound's own name or an alias — answers at level `compound`; text
   after it is looked up among the addresses inside the compound (崂山三村12号, 崂山三村3幢201室).
6. The house number is looked up under the road; then building / unit / floor / room under it (a
   level the query skipped is allowed: every node is indexed under all its ancestors). A missing
   house number is interpolated along the road axis between the nearest known numbers of the same
   parity (`level = "house_number_interpolated"`); failing that the road itself is returned.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pypinyin import lazy_pinyin
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein
from shapely.geometry import LineString, Point

from address_registry import accuracy, codes
from address_registry.interpolation import (
    DEFAULT_SLOPE_M,
    Anchor,
    RoadNumbering,
    estimate,
    fit_road,
    global_slope,
    point_at,
)
from address_registry.numbering import SHANGHAI, LocalProjection, road_axis, signed_offset
from address_registry.records import LEVEL_RANK, AddressRecord, AliasRecord, format_components
from address_registry.textnorm import house_number_parts, normalize_text

_HOUSE = re.compile(r"(?:(?P<lane>\d+)弄)?(?P<fu>附)?(?P<main>\d+)(?:[甲乙丙丁a-z])?(?:-(?P<sub>\d+))?号")
_LANE = re.compile(r"(?P<lane>\d+)弄")
_BARE = re.compile(r"^(?P<main>\d+)(?:-(?P<sub>\d+))?(?![\d幢单层室])")
_TRIPLE = re.compile(r"^(?P<b>\d+)-(?P<u>\d+)-(?P<r>\d+)")
_BUILDING = re.compile(r"(\d+)幢")
_UNIT = re.compile(r"(\d+)单元")
_FLOOR = re.compile(r"(\d+)层")
_ROOM = re.compile(r"(\d+)室")
_TRAILING_ROOM = re.compile(r"^(\d{3,4})(?!\d)")
_FIRST_DIGIT = re.compile(r"\d")

ADMIN_SUFFIXES = {
    "district": ("新区", "区", "县"),
    "township": ("街道办事处", "街道", "镇", "乡"),
    "community": ("居民委员会", "村民委员会", "居委会", "村委会", "社区", "村"),
}
# score of an estimated place, relative to the road match's (address_registry.interpolation kinds)
EST_SCORE = {"interpolated": 0.8, "extrapolated": 0.7, "road_stretch": 0.6}
EST_CACHE_MAX = 200_000
# how deep a lane (弄) runs from the road, added to the evidence of a lane number's estimate
LANE_DEPTH_M = 60.0
# score of a generated number the road's real numbers place elsewhere (still first: the registry's own)
GENERATED_CONTRADICTED = 0.9
# at equal score and level, real numbers before generated ones before estimates
SOURCE_RANK = {"osm": 0, "import": 0, "manual": 0, "generated": 1}
FUZZY_CUTOFF = 60.0
# a fuzzy match is trusted only when close in spelling, ahead of the next name by this many points and
# in the district the query names; otherwise it stays a candidate at this fraction of its similarity
FUZZY_MARGIN = 3.0
UNSURE = 0.45
# score factor of an answer through a name several places share
SHARED_NAME = 0.45
# endings of building / mall / compound names: a query that is such a name may be part of a longer one
NAME_SUFFIXES = ("大厦", "大楼", "百货", "商城", "商场", "中心", "广场", "小区", "花园", "公寓", "饭店", "酒店",
                 "宾馆", "银行", "医院", "学校", "公园", "新村", "苑", "城")
# footprint extent assumed for an address without a footprint (an OSM address point)
DEFAULT_EXTENT_M = 20.0
SOUND_WEIGHT = 0.97
EXACT_BONUS = 3.0
SUB_LEVELS = ("building", "unit", "floor", "room")
# corpus labels that carry address content (person, assist, redundant, otherinfo, country are dropped)
PARSER_KEEP = {
    "prov",
    "city",
    "district",
    "devzone",
    "town",
    "community",
    "road",
    "subroad",
    "roadno",
    "subroadno",
    "poi",
    "subpoi",
    "houseno",
    "cellno",
    "floorno",
    "roomno",
}


@dataclass(slots=True)
class AdminName:
    """A district / township / community that a query can name (for hints and admin-level answers)."""

    code: str
    name: str
    level: str
    lon: float | None = None
    lat: float | None = None
    parent_code: str | None = None
    # metres from the point to the farthest corner of the unit's polygon (None: the level's default)
    extent_m: float | None = None


@dataclass(slots=True)
class ParsedTail:
    """House number and sub-levels read from the text after a road or a name."""

    house: str | None = None
    house_parts: dict | None = None
    building: str | None = None
    unit: str | None = None
    floor: str | None = None
    room: str | None = None
    # the text after the house number (floors, rooms, shop names…): kept as the answer's `detail`
    rest: str = ""

    def sub_keys(self) -> list[str]:
        """The building, unit, floor and room given, coarse to fine."""
        return [k for k in (self.building, self.unit, self.floor, self.room) if k]


def parse_tail(tail: str) -> ParsedTail:
    """House number and sub-levels from the normalised text that follows a road or a name."""
    out = ParsedTail()
    rest = tail
    m = _HOUSE.search(tail)
    if m:
        out.house = m.group(0)
        rest = tail[m.end() :]
    else:
        m = _LANE.search(tail)
        if m:
            out.house = m.group(0)
            rest = tail[m.end() :]
        else:
            m = _BARE.match(tail)
            if m:
                out.house = m.group(0) + "号"
                rest = tail[m.end() :]
    if out.house:
        out.house_parts = house_number_parts(out.house)
    out.rest = rest
    t = _TRIPLE.match(rest)
    if t:
        out.building, out.unit, out.room = f"{t['b']}幢", f"{t['u']}单元", f"{t['r']}室"
        return out
    for attr, pattern in (("building", _BUILDING), ("unit", _UNIT), ("floor", _FLOOR), ("room", _ROOM)):
        mm = pattern.search(rest)
        if mm:
            setattr(out, attr, mm.group(0))
    if out.room is None and (out.unit or out.building or out.floor):
        last = max((rest.rfind(k) + len(k) for k in (out.building, out.unit, out.floor) if k), default=0)
        mm = _TRAILING_ROOM.match(rest[last:])
        if mm:
            out.room = mm.group(1) + "室"
    return out


def _with_detail(res: dict, tail: ParsedTail) -> dict:
    """The answer with the text after its house number as `detail` when the answer stops above the
    levels that text names (a floor, a room, a shop name kept, not lost)."""
    if tail.rest and res["level"] not in ("unit", "floor", "room"):
        res["detail"] = tail.rest
    return res


def _short_names(name: str, level: str) -> list[str]:
    out = [name]
    for suffix in ADMIN_SUFFIXES.get(level, ()):
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            out.append(name[: -len(suffix)])
            break
    return out


class Geocoder:
    """In-memory index of the registry; `geocode(text)` answers in tens of microseconds."""

    def __init__(
        self,
        records: Iterable[AddressRecord],
        aliases: Iterable[AliasRecord] = (),
        road_lines: dict[str, Sequence[LineString]] | None = None,
        admin_units: Iterable[AdminName] = (),
        projection: LocalProjection = SHANGHAI,
        parser: Callable[[str], Sequence[Any]] | None = None,
        radius_model: dict[str, tuple[float, float]] | None = None,
        extents: dict[str, float] | None = None,
    ):
        self.projection = projection
        # per house number / building: metres from its point to the farthest corner of its footprints
        # (store.footprint_extents); the evidence of a surveyed or named answer's radius
        self.extents = extents or {}
        # (base, spread) of the radius per accuracy kind (address_registry.accuracy.MODEL); the benchmark
        # passes others when it calibrates
        self._radius_model = radius_model if radius_model is not None else dict(accuracy.MODEL)
        self._extent_cache: dict[str, float] = {}
        # (road code, number) → the estimated answer (numbers repeat; cleared when anchors change)
        self._est_cache: dict[tuple[str, int], dict] = {}
        # generated house code → metres between it and where the real numbers put its number
        self._apart_cache: dict[str, float] = {}
        # optional free-text parser (address_registry.parsing.parse): used only when the matcher finds
        # no street-level answer, to drop what it labels as noise (person, redundant, otherinfo…)
        self.parser = parser
        self.by_code: dict[str, AddressRecord] = {}
        for rec in records:
            if rec.status == "active":
                self.by_code[rec.code] = rec
        self.admin: dict[str, AdminName] = {a.code: a for a in admin_units}
        # kept for `update` (address_registry.geocoder_update): the names and lines the index was built from
        self._aliases: list[AliasRecord] = list(aliases)
        self._road_lines: dict[str, Sequence[LineString]] = dict(road_lines or {})
        # parent code → child codes (sorted), road and compound codes, province / city names in use
        self._children: dict[str, list[str]] = defaultdict(list)
        self._named: set[str] = set()
        self._uppers: Counter[str] = Counter()
        # (ancestor code, normalised own component) → code, for every ancestor up to the house level
        self.below: dict[tuple[str, str], str] = {}
        # (compound code, normalised house number or building label) → addresses inside the compound
        self.in_compound: dict[tuple[str, str], list[str]] = defaultdict(list)
        # house numbers that are ranges (151-171号) → the keys of the numbers they hold
        self._range_keys: dict[str, set[tuple[str, str]]] = {}
        self._syllables: dict[str, str] = {}
        self._char_sound: dict[str, str] = {}  # per character: the same on both sides, and fast
        self._norm_memo: dict[str, str] = {}
        ordered = sorted(self.by_code.items())
        self._index_records(ordered)
        self._index_ranges(ordered)
        self._index_names()
        self._build_axes()

    # -- index building (in this order: the order of `names` decides ties) -------------------------
    def _index_records(self, ordered: list[tuple[str, AddressRecord]]) -> None:
        """The children, name and compound indexes, and each address under its ancestors (`below`)."""
        for code, rec in ordered:
            self._index_one(code, rec)
            if rec.level in ("house_number",) + SUB_LEVELS:
                self._index_below(code, rec)

    def _index_one(self, code: str, rec: AddressRecord) -> None:
        """Everything about one record but `below` (callers go in code order, so the lists stay sorted)."""
        if rec.parent_code is not None:
            self._children[rec.parent_code].append(code)
        if rec.compound_code and rec.level in ("house_number", "building"):
            own = self._norm(rec.components.get(rec.level, ""))
            self.in_compound[(rec.compound_code, own)].append(code)
        if rec.level in ("road", "compound"):
            self._named.add(code)
        for key in ("province", "city"):
            if rec.components.get(key):
                self._uppers[rec.components[key]] += 1

    def _below_keys(self, code: str, rec: AddressRecord) -> list[tuple[str, str]]:
        """The `below` keys the record is a candidate for: (ancestor, own) up to its road or house number."""
        own = self._norm(rec.components.get(rec.level, ""))
        out = []
        parent = rec.parent_code
        depth = 0
        while parent is not None and depth < 5:
            out.append((parent, own))
            prec = self.by_code.get(parent)
            if prec is None or prec.level in ("road", "house_number"):
                break
            parent = prec.parent_code
            depth += 1
        return out

    def _index_below(self, code: str, rec: AddressRecord) -> None:
        """(ancestor, own component) → code for each ancestor up to the house number (at most five)."""
        for key in self._below_keys(code, rec):
            self.below.setdefault(key, code)

    def _index_ranges(self, ordered: list[tuple[str, AddressRecord]]) -> None:
        """A number inside a range address (南京东路161号 within 151-171号) finds the range."""
        for code, rec in ordered:
            keys = self._range_keys_of(rec)
            if keys:
                self._range_keys[code] = keys
                for key in sorted(keys, key=lambda k: house_number_parts(k[1])["main"]):  # type: ignore[index]
                    self.below.setdefault(key, code)

    def _range_keys_of(self, rec: AddressRecord) -> set[tuple[str, str]]:
        if rec.level != "house_number" or rec.parent_code is None:
            return set()
        parts = house_number_parts(self._norm(rec.components.get("house_number", "")))
        if not parts or "range" not in parts:
            return set()
        lane = f"{parts['lane']}弄" if parts["lane"] is not None else ""
        return {(rec.parent_code, f"{lane}{n}号") for n in range(parts["range"][0], parts["range"][1] + 1, 2)}

    def _index_names(self) -> None:
        """The name tables of the scan and the fuzzy match, from the roads, compounds, admin units and
        aliases (in this order: the order of `names` decides ties). Rebuilt whole by `update`: they are
        small (names, not addresses)."""
        names: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.roads_by_name: dict[str, list[str]] = defaultdict(list)
        norm = self._norm
        for code in sorted(self._named):
            rec = self.by_code[code]
            if rec.level == "compound":
                key = norm(rec.components.get("compound", ""))
                if len(key) >= 2:
                    names[key].append(("alias", code))
            else:
                key = norm(rec.components.get("road", ""))
                self.roads_by_name[key].append(code)
                names[key].append(("road", code))
        # full admin names (not short forms such as 浦东, which may start a road name) are skipped
        # before fuzzy matching
        self.full_admin: set[str] = set()
        self._index_admin_names(names)
        self._index_aliases(names, self._aliases)
        # a road name or alias wins over a short admin name at the same place in the scan
        self.names: dict[str, list[tuple[str, str]]] = {k: list(dict.fromkeys(v)) for k, v in names.items()}
        lens: dict[str, set[int]] = defaultdict(set)
        for key in self.names:
            lens[key[0]].add(len(key))
        self.lens_by_char = {ch: sorted(ls, reverse=True) for ch, ls in lens.items()}
        self.shared_names = self._shared_names()
        self.alias_choices = sorted(k for k, v in self.names.items() if any(kind == "alias" for kind, _ in v))
        self.fuzzy_choices = [
            k for k, v in self.names.items() if any(kind in ("road", "alias") for kind, _ in v)
        ]
        self.fuzzy_sounds = [self._sound(k) for k in self.fuzzy_choices]

    def _index_admin_names(self, names: dict[str, list[tuple[str, str]]]) -> None:
        """Admin units by full and short name; provinces and cities of the registry (and without 省/市)."""
        for a in self.admin.values():
            for i, short in enumerate(_short_names(a.name, a.level)):
                names[self._norm(short)].append(("admin", a.code))
                if i == 0:
                    self.full_admin.add(self._norm(short))
        for prov in sorted(self._uppers):
            if prov:
                names[self._norm(prov)].append(("province", prov))
                self.full_admin.add(self._norm(prov))
                if prov.endswith(("省", "市")) and len(prov) > 2:
                    names[self._norm(prov[:-1])].append(("province", prov))

    def _index_aliases(self, names: dict[str, list[tuple[str, str]]], aliases: Iterable[AliasRecord]) -> None:
        """Aliases of active addresses (two characters at least)."""
        for al in aliases:
            key = self._norm(al.alias)
            if key and al.address_code in self.by_code and len(key) >= 2:
                names[key].append(("alias", al.address_code))

    def _norm(self, name: str) -> str:
        """normalize_text of a name or an own component (3幢, 301室: few distinct values), remembered: the
        build normalises every address's own component and `update` rebuilds the name tables."""
        got = self._norm_memo.get(name)
        if got is None:
            got = self._norm_memo[name] = normalize_text(name)
        return got

    def _sound(self, text: str) -> str:
        """The text's pinyin, one private-use character per syllable (homophones become equal)."""
        cache = self._char_sound
        out = []
        for c in text:
            code = cache.get(c)
            if code is None:
                syl = lazy_pinyin(c)[0] if "\u3400" <= c <= "\u9fff" else c
                code = self._syllables.get(syl)
                if code is None:
                    code = self._syllables[syl] = chr(0xF0000 + len(self._syllables))
                cache[c] = code
            out.append(code)
        return "".join(out)

    @property
    def radius_model(self) -> dict[str, tuple[float, float]]:
        """(base, spread) of the radius per accuracy kind (address_registry.accuracy.MODEL by default)."""
        return self._radius_model

    @radius_model.setter
    def radius_model(self, model: dict[str, tuple[float, float]]) -> None:
        self._radius_model = model
        self._est_cache.clear()
        self._apart_cache.clear()

    def _shared_names(self) -> set[str]:
        """Names (aliases) that several places more than 100 m apart share (a chain's shops): an answer
        through one of them is a doubtful candidate."""
        out = set()
        for key, refs in self.names.items():
            pts = []
            for kind, ref in refs:
                rec = self.by_code.get(ref) if kind == "alias" else None
                if rec is not None and rec.lon is not None:
                    pts.append(self.projection.forward(rec.lon, rec.lat))
            if len(pts) > 1:
                xy = np.array(pts, dtype=float)
                if float(np.ptp(xy, axis=0).max()) > 100.0:
                    out.add(key)
        return out

    # -- fuzzy confidence ------------------------------------------------------------------------
    def _close_spelling(self, head: str, head_sound: str, choice: str, contained: bool) -> bool:
        """A fuzzy name is close when it sounds the same (an input-method slip), or differs by one
        character in a name of four or more, or is a known name with one stray character before it."""
        if len(head) == len(choice) and head_sound == self._sound(choice):
            return True
        d = Levenshtein.distance(head, choice)
        if d <= 1 and (min(len(head), len(choice)) >= 4 or contained):
            return True
        return False

    def _unique_containing(self, head: str) -> str:
        """The one building / mall / compound name that contains ``head`` when ``head`` is itself such a
        name (ends in 大厦, 中心, 商城… and has four characters or more): 国际会议中心 → 上海国际会议中心."""
        if len(head) < 4 or not head.endswith(NAME_SUFFIXES):
            return ""
        found = ""
        for choice in self.alias_choices:
            if head in choice and choice != head:
                if found:
                    return ""
                found = choice
        return found

    def _same_place(self, ref: str, admin_hint: set[str]) -> bool:
        """False when the query names a district and the candidate lies in another one."""
        districts = {c for c in admin_hint if self.admin.get(c) is not None and self.admin[c].level == "district"}
        if not districts:
            return True
        rec = self.by_code.get(ref)
        return rec is None or rec.district_code in districts

    # -- interpolation frame -------------------------------------------------------------------
    def _build_axes(self) -> None:
        self.axes: dict[str, LineString] = {}
        # per road with an axis: what its anchors say about its numbering (address_registry.interpolation)
        self.numbering: dict[str, RoadNumbering] = {}
        self._road_anchors: dict[str, list[Anchor]] = {}
        self.global_slope = DEFAULT_SLOPE_M
        self.houses_on_road: dict[str, list[str]] = defaultdict(list)
        parents = sorted({rec.parent_code for rec in self.by_code.values()
                          if rec.level == "house_number" and rec.parent_code and rec.lon is not None}
                         | {c for c in self._named if self.by_code[c].level == "road"})
        for parent in parents:
            self._place_axis(parent)
        for road_code in self.axes:
            self._index_road_anchors(road_code)
        self.global_slope = global_slope(list(self.numbering.values()))
        for road_code, numbering in self.numbering.items():
            if not numbering.slope_learned:
                self._index_road_anchors(road_code)

    def _place_axis(self, parent: str) -> None:
        """The axis of a road (or of the parent of some house numbers): its lines when it is the first road
        (in code order) of its name, else a straight axis through its house numbers; and its houses."""
        self.axes.pop(parent, None)
        self.numbering.pop(parent, None)
        self._road_anchors.pop(parent, None)
        self.houses_on_road.pop(parent, None)
        houses = [c for c in self._children.get(parent, ())
                  if self.by_code[c].level == "house_number" and self.by_code[c].lon is not None]
        axis = None
        rec = self.by_code.get(parent)
        if rec is not None and rec.level == "road":
            name = rec.components.get("road")
            lines = self._road_lines.get(name) if name is not None else None
            first = min((c for c in self.roads_by_name.get(normalize_text(name or ""), ())
                         if self.by_code[c].components.get("road") == name), default=None)
            if lines and first == parent:
                axis = road_axis([self.projection.geom_to_metres(g) for g in lines])
        if axis is None and houses:
            axis = self._axis_from_points([self.by_code[c] for c in houses])
        if axis is not None:
            self.axes[parent] = axis
            if houses:
                self.houses_on_road[parent] = houses

    def _axis_from_points(self, houses: list[AddressRecord]) -> LineString | None:
        """A road without a line in the road table (a pedestrian street): a straight axis along the main
        direction of its house numbers, 100 m beyond the outermost, oriented by the numbering rule."""
        xy = np.array([self.projection.forward(h.lon, h.lat) for h in houses], dtype=float)
        if len(xy) < 2:
            return None
        centre = xy.mean(axis=0)
        _, _, vt = np.linalg.svd(xy - centre)
        direction = vt[0]
        t = (xy - centre) @ direction
        lo, hi = float(t.min()) - 100.0, float(t.max()) + 100.0
        line = LineString([tuple(centre + lo * direction), tuple(centre + hi * direction)])
        return road_axis([line])

    def _index_road_anchors(self, road_code: str) -> None:
        """The road's plain house numbers as anchors (number, m along the axis, offset, real) and the
        numbering fitted to them."""
        axis = self.axes[road_code]
        anchors = []
        for code in self.houses_on_road.get(road_code, ()):
            rec = self.by_code.get(code)
            if rec is None:
                continue
            parts = house_number_parts(self._norm(rec.components.get("house_number", "")))
            if (
                not parts
                or parts["lane"] is not None
                or parts["fu"]
                or parts.get("lane_only")
                or (parts["sub"] is not None and "range" not in parts)
            ):
                continue
            x, y = self.projection.forward(rec.lon, rec.lat)
            p = Point(float(x), float(y))
            m, off = axis.project(p), signed_offset(axis, p)
            real = rec.source != "generated"
            for n in parts.get("range", (parts["main"],)):
                anchors.append(Anchor(n, m, off, real, code, p.x, p.y))
        # kept: a new global slope refits the roads that did not learn their own without re-projecting
        self._road_anchors[road_code] = anchors
        self.numbering[road_code] = fit_road(axis.length, anchors, self.global_slope)

    def _drop_anchors(self, roads: set) -> dict:
        """Re-fit the numbering of ``roads`` from the records now present; returns what to restore."""
        self._est_cache.clear()
        self._apart_cache.clear()
        saved = {}
        for road_code in roads:
            if road_code in self.axes:
                saved[road_code] = (self.numbering.get(road_code), self._road_anchors.get(road_code))
                self._index_road_anchors(road_code)
        return saved

    def _restore_anchors(self, saved: dict) -> None:
        self._est_cache.clear()
        self._apart_cache.clear()
        for road_code, (numbering, anchors) in saved.items():
            if numbering is not None:
                self.numbering[road_code] = numbering
            if anchors is not None:
                self._road_anchors[road_code] = anchors

    # -- matching ----------------------------------------------------------------------------
    def _scan(self, t: str) -> list[tuple[int, int, str]]:
        hits = []
        i, n = 0, len(t)
        names, lens_by_char = self.names, self.lens_by_char
        while i < n:
            lens = lens_by_char.get(t[i])
            if lens:
                for length in lens:
                    if i + length <= n and t[i : i + length] in names:
                        hits.append((i, i + length, t[i : i + length]))
                        i += length
                        break
                else:
                    i += 1
            else:
                i += 1
        return hits

    def geocode(self, text: str, limit: int = 5) -> list[dict[str, Any]]:
        """Best-first matches of free text: dicts with address_code, formatted, components, lon, lat,
        level and score (0–1)."""
        results = self._geocode(text, limit)
        if self.parser is not None and (
            not results or results[0]["level"] in ("district", "township", "community")
        ):
            cleaned = self._parser_cleaned(text)
            if cleaned and cleaned != text:
                again = self._geocode(cleaned, limit)
                if again and (not results or again[0]["level"] not in ("district", "township", "community")):
                    for res in again:
                        res["score"] = round(res["score"] * 0.9, 4)
                    return again
        return results

    def _parser_cleaned(self, text: str) -> str | None:
        if self.parser is None:
            return None
        try:
            components = self.parser(text)
        except Exception:  # a parser failure must never fail a geocode; the plain answer stands
            return None
        keep = [c for c in components if getattr(c, "label", None) in PARSER_KEEP]
        return "".join(c.text for c in sorted(keep, key=lambda c: c.start)) or None

    def _geocode(self, text: str, limit: int) -> list[dict[str, Any]]:  # noqa: C901  (the per-query hot path: one pass, no extra calls)
        t = normalize_text(text)
        if not t:
            return []
        hits = self._scan(t)
        admin_hint: set[str] = set()
        admin_only: list[str] = []
        anchors = []
        for _start, end, key in hits:
            for kind, ref in self.names[key]:
                if kind == "admin":
                    admin_hint.add(ref)
                    admin_only.append(ref)
                elif kind in ("road", "alias"):
                    anchors.append((end, key, ref))
        results: dict[str, dict] = {}
        m = _FIRST_DIGIT.search(t)
        cut = 0
        for start, end, key in hits:
            if (
                start == cut
                and key in self.full_admin
                and all(k in ("admin", "province") for k, _ in self.names[key])
            ):
                cut = end
        first_anchor = min(
            (h for h in hits if any(k in ("road", "alias") for k, _ in self.names[h[2]])), default=None
        )
        if first_anchor is not None and first_anchor[0] == cut:
            for end, key, ref in anchors:
                tail = parse_tail(t[end:])
                for res in self._resolve(ref, tail, SHARED_NAME if key in self.shared_names else 1.0):
                    self._keep(results, _with_detail(res, tail))
        else:
            # no name found, or unexplained characters right before it (洞江阴街: a slip for 东江阴街
            # that happens to contain 江阴街): compare the whole street part with every name
            if first_anchor is not None:
                head_end = m.start() if m and m.start() >= first_anchor[1] else first_anchor[1]
            else:
                head_end = m.start() if m and m.start() > cut else len(t)
            head = t[cut:head_end]
            if len(head) >= 2:
                tail = parse_tail(t[head_end:])
                head_sound = self._sound(head)
                sims: dict[str, float] = {}
                pool = {
                    c
                    for c, _, _ in process.extract(
                        head, self.fuzzy_choices, scorer=fuzz.ratio, limit=6, score_cutoff=FUZZY_CUTOFF
                    )
                }
                # homophones (the usual IME slip: 宁波路 typed 宁博路) score almost as high as the name
                pool |= {
                    self.fuzzy_choices[idx]
                    for _c, _s, idx in process.extract(
                        head_sound, self.fuzzy_sounds, scorer=fuzz.ratio, limit=6, score_cutoff=FUZZY_CUTOFF
                    )
                }
                exact = {
                    key for _s, _e, key in hits if any(k in ("road", "alias") for k, _ in self.names[key])
                }
                for choice in pool | exact:
                    chars = fuzz.ratio(head, choice)
                    # equal sounds, then the closer spelling (陕夕南路: 陕西南路 before 山西南路)
                    sim = (
                        max(chars, SOUND_WEIGHT * fuzz.ratio(head_sound, self._sound(choice))) + 0.02 * chars
                    )
                    if choice in exact:
                        sim += EXACT_BONUS
                    sims[choice] = min(100.0, sim)
                part_of = self._unique_containing(head)
                if part_of:
                    sims[part_of] = max(sims.get(part_of, 0.0), 100.0 - 1.0)
                ranked = sorted(sims.values(), reverse=True)
                for choice, sim in sims.items():
                    if sim == ranked[0]:
                        runner_up = ranked[1] if len(ranked) > 1 else 0.0
                    else:
                        runner_up = ranked[0]
                    close = self._close_spelling(head, head_sound, choice, choice in exact)
                    for kind, ref in self.names[choice]:
                        if kind in ("road", "alias"):
                            # a building or shop name is trusted only when it sounds the same (前汇丰银行大楼
                            # is not 汇丰银行大楼)
                            same_sound = len(head) == len(choice) and head_sound == self._sound(choice)
                            named = same_sound or (kind == "alias" and choice == part_of)
                            sure = (
                                (close if kind == "road" else named)
                                and sim - runner_up >= FUZZY_MARGIN
                                and self._same_place(ref, admin_hint)
                            )
                            for res in self._resolve(ref, tail, (0.95 if sure else UNSURE) * sim / 100.0):
                                self._keep(results, _with_detail(res, tail))
        if not results and admin_only:
            for code in admin_only:
                a = self.admin[code]
                self._keep(results, self._admin_result(a, 0.6))
        if admin_hint and results:
            for res in results.values():
                codes_of = {
                    res["components"].get("_district_code"),
                    res["components"].get("_township_code"),
                    res["components"].get("_community_code"),
                }
                if not (codes_of & admin_hint) and res["level"] not in ("district", "township", "community"):
                    res["score"] *= 0.85
        ordered = sorted(
            results.values(),
            key=lambda r: (
                -r["score"],
                -LEVEL_RANK.get(r["level"].replace("_interpolated", ""), 0),
                SOURCE_RANK.get(r["source"], 2),
                r["address_code"],
            ),
        )
        out = []
        for res in ordered[:limit]:
            res["components"] = {k: v for k, v in res["components"].items() if not k.startswith("_")}
            res["score"] = round(res["score"], 4)
            out.append(res)
        return out

    def coarsen(self, results: list[dict], hidden_levels: frozenset[str]) -> list[dict]:
        """The results with each one at a hidden level (unit / floor / room: homes) replaced by its nearest
        visible ancestor (the building or house number), best score kept, order kept."""
        out: dict[str, dict] = {}
        for res in results:
            if res["level"] in hidden_levels:
                rec = self.by_code.get(res["address_code"])
                while rec is not None and rec.level in hidden_levels:
                    rec = self.by_code.get(rec.parent_code or "")
                if rec is None:
                    continue
                res = self._result(rec, rec.level, res["score"])
                res["components"] = {k: v for k, v in res["components"].items() if not k.startswith("_")}
            if res["address_code"] not in out or out[res["address_code"]]["score"] < res["score"]:
                out[res["address_code"]] = res
        return list(out.values())

    @staticmethod
    def _keep(results: dict, res: dict) -> None:
        key = res["address_code"] + "|" + res["level"] + "|" + res["formatted"]
        if key not in results or results[key]["score"] < res["score"]:
            results[key] = res

    def _result(self, rec: AddressRecord, level: str, score: float, **over) -> dict:
        comps: dict[str, Any] = dict(rec.components)
        comps["_district_code"] = rec.district_code
        comps["_township_code"] = rec.township_code
        comps["_community_code"] = rec.community_code
        lon, lat = rec.lon, rec.lat
        if "components" in over:
            comps.update(over["components"])
        if "lon" in over:
            lon, lat = over["lon"], over["lat"]
        kind, source, radius = over.get("accuracy"), over.get("source"), over.get("radius_m")
        if kind is None:
            kind, source, radius = self._accuracy_of(rec)
        out = {
            "address_code": rec.code,
            "formatted": format_components({k: v for k, v in comps.items() if not k.startswith("_")}),
            "components": comps,
            "lon": lon,
            "lat": lat,
            "level": level,
            "score": score,
            "accuracy": kind,
            "radius_m": radius,
            "source": source,
        }
        if "anchors" in over:
            out["anchors"] = over["anchors"]
            out["evidence_m"] = over["evidence_m"]
        return out

    def _accuracy_of(self, rec: AddressRecord) -> tuple[str, str | None, int]:
        """(accuracy kind, source, radius) of a registry address answered as it is."""
        if rec.level == "road":
            axis = self.axes.get(rec.code)
            return "road", rec.source, accuracy.radius_m("road", axis.length / 2 if axis is not None else 500.0, self.radius_model)
        if rec.level == "compound":
            return "compound", rec.source, accuracy.radius_m("compound", self._compound_extent(rec), self.radius_model)
        house = rec
        while house.level in SUB_LEVELS and house.parent_code in self.by_code:
            house = self.by_code[house.parent_code]
        kind = "generated" if house.source == "generated" else "surveyed"
        return kind, house.source, accuracy.radius_m(kind, self._extent(rec), self.radius_model)

    def _extent(self, rec: AddressRecord) -> float:
        """Footprint extent of the record, or of the building / house number it lies in (default 20 m)."""
        while rec is not None:
            got = self.extents.get(rec.code)
            if got is not None:
                return got
            rec = self.by_code.get(rec.parent_code or "")  # type: ignore[assignment]
        return DEFAULT_EXTENT_M

    def _compound_extent(self, rec: AddressRecord) -> float:
        """Metres from the compound's point to the farthest corner of its area (cached)."""
        got = self._extent_cache.get(rec.code)
        if got is None:
            got = 200.0
            if rec.area is not None and rec.lon is not None:
                try:
                    area_m = self.projection.geom_to_metres(rec.area)
                    x, y = self.projection.forward(rec.lon, rec.lat)
                    got = float(shapely.hausdorff_distance(Point(float(x), float(y)), area_m.boundary))
                except (shapely.errors.GEOSException, ValueError, TypeError, AttributeError):
                    got = 200.0
            self._extent_cache[rec.code] = got
        return got

    def _admin_result(self, a: AdminName, score: float) -> dict:
        try:
            code = codes.admin_code(a.code)
        except codes.CodeError:
            code = a.code
        return {
            "address_code": code,
            "formatted": a.name,
            "components": {a.level: a.name},
            "lon": a.lon,
            "lat": a.lat,
            "level": a.level,
            "score": score,
            "accuracy": a.level,
            "radius_m": accuracy.radius_m(a.level, 0.0, self.radius_model)
            if a.extent_m is None
            else int(round(a.extent_m)),
            "source": None,
        }

    def _resolve(self, code: str, tail: ParsedTail, base: float) -> list[dict]:
        """Results for an anchor (a road or an aliased address) and the parsed rest of the query."""
        rec = self.by_code.get(code)
        if rec is None:
            return []
        out = []
        if rec.level == "compound":
            return self._resolve_compound(rec, tail, base)
        if rec.level == "road":
            if tail.house:
                house_code = self.below.get((code, tail.house))
                if house_code is None and tail.house_parts and tail.house_parts.get("sub") is not None:
                    # 32-1号 unknown: its main number 32号 is the nearest real address
                    main = tail.house[: tail.house.index("-")] + "号"
                    house_code = self.below.get((code, main))
                    if house_code is not None:
                        base *= 0.85
                if house_code is not None:
                    return self._house_answers(rec, house_code, tail, base)
                est = self._interpolate(rec, tail)
                if est is not None:
                    return [est | {"score": base * EST_SCORE[est["accuracy"]]}]
                return [self._result(rec, "road", base * 0.6)]
            return [self._result(rec, "road", base * (1.0 if not tail.sub_keys() else 0.8))]
        # an aliased address (usually a house number or building): descend from it
        if tail.house and rec.level == "house_number":
            road = self.by_code.get(rec.parent_code or "")
            if road is not None:
                hc = self.below.get((road.code, tail.house))
                if hc is not None and hc != rec.code:
                    out.append(self._descend(hc, tail, base * 0.9))
        out.append(self._descend(rec.code, tail, base, from_alias=True))
        return out

    def _resolve_compound(self, rec: AddressRecord, tail: ParsedTail, base: float) -> list[dict]:
        """A compound and the rest of the query: a house number or building inside it, else the compound."""
        if tail.house:
            hits = self.in_compound.get((rec.code, tail.house), [])
            if not hits and tail.house_parts and tail.house_parts.get("sub") is not None:
                hits = self.in_compound.get((rec.code, tail.house[: tail.house.index("-")] + "号"), [])
                base *= 0.85
            if hits:
                share = 1.0 if len(hits) == 1 else 0.9
                return [self._descend(c, tail, base * share) for c in hits]
            return [self._result(rec, "compound", base * 0.6)]
        if tail.building:
            hits = self.in_compound.get((rec.code, tail.building), [])
            if len(hits) == 1:
                rest = ParsedTail(unit=tail.unit, floor=tail.floor, room=tail.room)
                return [self._descend(hits[0], rest, base)]
        return [self._result(rec, "compound", base * (1.0 if not tail.sub_keys() else 0.8))]

    def _descend(self, code: str, tail: ParsedTail, score: float, from_alias: bool = False) -> dict:
        current = code
        missed = 0
        for key in tail.sub_keys():
            child = self.below.get((current, key))
            if child is None and key.endswith("室") and tail.floor is None:
                room_no = key[:-1]
                if len(room_no) >= 3:
                    floor_key = f"{int(room_no[:-2])}层"
                    fl = self.below.get((current, floor_key))
                    if fl is not None:
                        child = self.below.get((fl, key))
            if child is None:
                missed += 1
                continue
            current = child
        rec = self.by_code[current]
        if missed:
            score *= 0.9 if current != code else 0.8
        if from_alias and current == code and rec.level in ("house_number", "building"):
            # a building or POI name on this footprint: the place is the footprint, whatever its number's source
            kind = "named"
            return self._result(rec, rec.level, score, accuracy=kind, source=rec.source,
                                radius_m=accuracy.radius_m(kind, self._extent(rec), self.radius_model))
        return self._result(rec, rec.level, score)

    def _house_answers(self, road: AddressRecord, house_code: str, tail: ParsedTail, base: float) -> list[dict]:
        """A house number found under its road. A generated one (a guess of the odd / even rule) on a
        road with real numbers is checked against where those put it: inside that estimate's radius it
        answers with that radius; farther, it still answers first (it is the registry's own address, on
        its plates) but with a score of 0.9 and a radius that covers the estimate too, and the estimate
        follows as the second candidate (where the real numbering puts that number)."""
        res = self._descend(house_code, tail, base)
        house = self.by_code[house_code]
        numbering = self.numbering.get(road.code)
        if house.source != "generated" or numbering is None or not numbering.real or house.lon is None:
            return [res]
        est = self._interpolate(road, tail)
        if est is None:
            return [res]
        apart = self._apart_cache.get(house_code)
        if apart is None:
            x0, y0 = self.projection.forward(est["lon"], est["lat"])
            x1, y1 = self.projection.forward(house.lon, house.lat)
            apart = self._apart_cache[house_code] = math.hypot(float(x0 - x1), float(y0 - y1))
        if apart <= est["radius_m"]:
            res["radius_m"] = max(res["radius_m"], est["radius_m"]) if est["accuracy"] == "road_stretch" else est["radius_m"]
            return [res]
        res["score"] = base * GENERATED_CONTRADICTED
        res["radius_m"] = int(round(apart + est["radius_m"]))
        return [res, est | {"score": base * EST_SCORE[est["accuracy"]]}]

    def _interpolate(self, road: AddressRecord, tail: ParsedTail) -> dict | None:
        """Where a number the registry lacks should be on its road (address_registry.interpolation):
        level `house_number_interpolated` (interpolated / extrapolated) or `road` (a road stretch)."""
        parts = tail.house_parts
        if not parts or parts["fu"]:
            return None
        # a lane (12弄3号, or 12弄 alone) opens onto the road at its own number: placed there, with the
        # lane's depth added to the evidence
        lane = parts["lane"] if parts["lane"] is not None else (parts["main"] if parts.get("lane_only") else None)
        number = lane if lane is not None else parts["main"]
        key = (road.code, number)
        if lane is None and key in self._est_cache:  # read-only: callers copy it (`est | {...}`)
            return self._est_cache[key]
        axis = self.axes.get(road.code)
        numbering = self.numbering.get(road.code)
        if axis is None or numbering is None:
            return None
        est = estimate(numbering, number)
        if lane is not None:
            est.evidence_m += LANE_DEPTH_M
        x, y = est.xy if est.xy is not None else point_at(axis, est.m, est.offset)
        lon, lat = self.projection.inverse(x, y)
        level = "road" if est.kind == "road_stretch" else "house_number_interpolated"
        out = self._result(
            road,
            level,
            0.8,
            lon=float(lon),
            lat=float(lat),
            components={"house_number": tail.house if lane is not None else f"{parts['main']}号"},
            accuracy=est.kind,
            radius_m=accuracy.radius_m(est.kind, est.evidence_m, self.radius_model),
            source=None,
            anchors=[f"{n}号" for n in est.anchors],
            evidence_m=round(est.evidence_m, 1),
        )
        if lane is None and len(self._est_cache) < EST_CACHE_MAX:
            self._est_cache[key] = out
        return out

    # -- incremental update ------------------------------------------------------------------------
    def update(
        self,
        records: Iterable[AddressRecord],
        removed: Iterable[str] = (),
        aliases: Iterable[AliasRecord] | None = None,
        extents: dict[str, float] | None = None,
        road_lines: Mapping[str, Sequence[LineString]] | None = None,
    ) -> dict[str, int]:
        """Apply registry changes in place, with the answers a new `Geocoder` over the changed registry gives.

        ``records``: the current version of each changed address (a retired one leaves the index);
        ``removed``: codes that have no current version any more; ``aliases``: every current alias, when
        they changed; ``extents``: footprint extents of the changed codes; ``road_lines``: lines of roads
        the index has not seen. Costs what the changed addresses touch (their ancestors' subtrees, their
        roads' numbering) plus the name tables, not the registry's size."""
        incoming = {r.code: r for r in records}
        gone = set(removed) | set(incoming)
        if road_lines:
            self._road_lines.update(road_lines)
        if aliases is not None:
            self._aliases = list(aliases)
        # the `below` keys and roads the changed addresses (and what hangs under them) held before …
        keys, parents, touched_before = self._affected(gone)
        # Concurrent readers (geocodes on other threads) must never meet a code that is not in `by_code`:
        # new versions go in first, `below` moves next, and the removed codes leave `by_code` last.
        for code in sorted(c for c in gone if c in self.by_code):
            self._unindex_one(code, self.by_code[code])
            self._range_keys.pop(code, None)
        for code, rec in sorted(incoming.items()):
            if rec.status == "active":
                self.by_code[code] = rec
                self._insert_one(code, rec)
        # … and hold now
        keys_now, parents_now, touched_now = self._affected({c for c, r in incoming.items() if r.status == "active"})
        direct, ranged = self._candidates(touched_now)
        for key in keys | keys_now:
            cur = self.below.get(key)
            if cur is None:
                # nothing held the key before: only what changed can hold it now
                best = direct.get(key) or ranged.get(key)
            elif cur in touched_before or cur in touched_now or cur in self._range_keys:
                best = self._best_below(key)  # its holder moved or left: look among all that may hold it
            else:
                best = min(cur, direct[key]) if key in direct else cur
            if best is None:
                self.below.pop(key, None)
            else:
                self.below[key] = best
        for code in gone:
            now = incoming.get(code)
            if now is None or now.status != "active":
                self.by_code.pop(code, None)
            self.extents.pop(code, None)
            if extents is not None and code in extents and code in self.by_code:
                self.extents[code] = extents[code]
        self._index_names()
        self._est_cache.clear()
        self._apart_cache.clear()
        self._extent_cache.clear()
        self._refit(parents | parents_now)
        return {"changed": len(incoming), "removed": sum(1 for c in gone if c not in self.by_code),
                "keys": len(keys | keys_now)}

    def _candidates(self, codes_in: set[str]) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]:
        """Per `below` key, the smallest of these codes that holds it directly, and through a range."""
        direct: dict[tuple[str, str], str] = {}
        ranged: dict[tuple[str, str], str] = {}
        for code in codes_in:
            rec = self.by_code[code]
            if rec.level not in ("house_number",) + SUB_LEVELS:
                continue
            for key in self._below_keys(code, rec):
                if key not in direct or code < direct[key]:
                    direct[key] = code
            for key in self._range_keys.get(code, ()):
                if key not in ranged or code < ranged[key]:
                    ranged[key] = code
        return direct, ranged

    def _affected(self, codes_in: set[str]) -> tuple[set[tuple[str, str]], set[str], set[str]]:
        """The `below` keys of these addresses and of everything under them (those addresses: the third
        item), and the roads (house-number parents) whose numbering they take part in, with every road of
        the same name."""
        touched = {c for c in codes_in if c in self.by_code}
        touched |= self._descendants(touched)
        keys: set[tuple[str, str]] = set()
        parents: set[str] = set()
        for code in touched:
            rec = self.by_code[code]
            keys.update(self._all_keys(code, rec))
            if rec.level == "house_number" and rec.parent_code is not None:
                parents.add(rec.parent_code)
            elif rec.level == "road":
                parents.add(code)
                name = rec.components.get("road")
                parents.update(c for c in self._named if self.by_code[c].components.get("road") == name)
        return keys, parents, touched

    def knows_road_lines(self, name: str) -> bool:
        """Whether the index holds lines of the road ``name`` (an `update` of a new road needs them)."""
        return name in self._road_lines

    def _all_keys(self, code: str, rec: AddressRecord) -> list[tuple[str, str]]:
        if rec.level not in ("house_number",) + SUB_LEVELS:
            return []
        return self._below_keys(code, rec) + sorted(self._range_keys_of(rec))

    def _descendants(self, codes_in: set[str]) -> set[str]:
        out: set[str] = set()
        stack = list(codes_in)
        while stack:
            for child in self._children.get(stack.pop(), ()):
                if child not in out and child not in codes_in:
                    out.add(child)
                    stack.append(child)
        return out

    def _unindex_one(self, code: str, rec: AddressRecord) -> None:
        if rec.parent_code is not None:
            siblings = self._children.get(rec.parent_code)
            if siblings is not None and code in siblings:
                siblings.remove(code)
                if not siblings:
                    del self._children[rec.parent_code]
        if rec.compound_code and rec.level in ("house_number", "building"):
            key = (rec.compound_code, self._norm(rec.components.get(rec.level, "")))
            members = self.in_compound.get(key)
            if members is not None and code in members:
                members.remove(code)
                if not members:
                    del self.in_compound[key]
        self._named.discard(code)
        for k in ("province", "city"):
            value = rec.components.get(k)
            if value:
                self._uppers[value] -= 1
                if self._uppers[value] <= 0:
                    del self._uppers[value]

    def _insert_one(self, code: str, rec: AddressRecord) -> None:
        """`_index_one` out of code order: the lists stay sorted."""
        ranged = self._range_keys_of(rec)
        if ranged:
            self._range_keys[code] = ranged
        if rec.parent_code is not None:
            bisect.insort(self._children[rec.parent_code], code)
        if rec.compound_code and rec.level in ("house_number", "building"):
            own = self._norm(rec.components.get(rec.level, ""))
            bisect.insort(self.in_compound[(rec.compound_code, own)], code)
        if rec.level in ("road", "compound"):
            self._named.add(code)
        for key in ("province", "city"):
            if rec.components.get(key):
                self._uppers[rec.components[key]] += 1

    def _best_below(self, key: tuple[str, str]) -> str | None:
        """What a full build puts at ``key``: the smallest code among the addresses that name it under that
        ancestor (reached through buildings, units and floors only, five levels at most), else the smallest
        range house number holding it."""
        anc, own = key
        best: str | None = None
        frontier = [anc]
        for _depth in range(5):
            nxt = []
            for parent in frontier:
                for child in self._children.get(parent, ()):
                    rec = self.by_code[child]
                    if rec.level in ("house_number",) + SUB_LEVELS and (best is None or child < best):
                        if self._norm(rec.components.get(rec.level, "")) == own:
                            best = child
                    if rec.level not in ("road", "house_number"):
                        nxt.append(child)
            frontier = nxt
            if not frontier:
                break
        if best is not None:
            return best
        ranged = [c for c in self._children.get(anc, ()) if key in self._range_keys.get(c, ())]
        return min(ranged) if ranged else None

    def _refit(self, parents: set[str]) -> None:
        """Axes and numbering of these roads (or house-number parents) again, then the global slope."""
        for parent in sorted(parents):
            self._place_axis(parent)
            if parent in self.axes:
                self._index_road_anchors(parent)
        slope = global_slope(list(self.numbering.values()))
        if slope != self.global_slope:
            self.global_slope = slope
            for road_code, numbering in list(self.numbering.items()):
                if not numbering.slope_learned:
                    self.numbering[road_code] = fit_road(self.axes[road_code].length,
                                                         self._road_anchors[road_code], slope)

    @contextmanager
    def held_out(self, codes_out: Iterable[str]) -> Iterator[None]:
        """Within the block the index behaves as if the addresses ``codes_out``, their descendants (buildings,
        units, rooms) and the numbers of a range they carry were not in the registry; restored on exit.
        Used by the leave-one-out evaluation (benchmarks/bench_geocode.py), no registry rebuild."""
        drop = set(codes_out)
        children: dict[str, list[str]] = defaultdict(list)
        for code, rec in self.by_code.items():
            if rec.parent_code:
                children[rec.parent_code].append(code)
        stack = list(drop)
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in drop:
                    drop.add(child)
                    stack.append(child)
        saved_records = {c: self.by_code.pop(c) for c in drop if c in self.by_code}
        saved_below = {k: v for k, v in self.below.items() if v in drop}
        for k in saved_below:
            del self.below[k]
        saved_compound = {k: list(v) for k, v in self.in_compound.items() if drop.intersection(v)}
        for k, v in saved_compound.items():
            self.in_compound[k] = [c for c in v if c not in drop]
        roads = {r.parent_code for r in saved_records.values() if r.level == "house_number"}
        saved_anchors = self._drop_anchors(roads)
        try:
            yield
        finally:
            self.by_code.update(saved_records)
            self.below.update(saved_below)
            self.in_compound.update(saved_compound)
            self._restore_anchors(saved_anchors)

    def geocode_many(self, texts: Iterable[str], limit: int = 1) -> list[list[dict]]:
        """:meth:`geocode` for each text, in order."""
        return [self.geocode(t, limit) for t in texts]

    def __len__(self) -> int:
        return len(self.by_code)
