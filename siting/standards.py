"""Facility types with default service radii from GB 50180-2018《城市居住区规划设计标准》.

The standard organises community facilities by life circle (生活圈): 15-minute (walking distance
800–1000 m), 10-minute (500 m), 5-minute (300 m) and the residential block (居住街坊), table 3.0.4,
and gives each facility's service radius (服务半径) in its annex C tables (C.0.1 for the 15/10-minute
circles, C.0.2 for the 5-minute circle, C.0.3 for the block). This table is the one editable place for
those defaults: a planner may override ``radius_m`` and the distance kind per request, and the
``facility_type`` DB table (migration 0004_siting) is seeded from it.

``poi_kinds`` / ``name_patterns`` say how existing facilities are recognised among the demo POIs
(OSM/Tilezen kinds; Chinese names for schools, which OSM does not split by level).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class FacilityType:
    """A facility type with its GB 50180-2018 service radius, clause and how to find its POIs."""
    code: str
    name: str  # Chinese name, the key used by the CLI/API (`--type 幼儿园`)
    radius_m: float
    life_circle: str  # 15min | 10min | 5min | block
    clause: str
    poi_kinds: tuple[str, ...] = field(default_factory=tuple)
    name_patterns: tuple[str, ...] = field(default_factory=tuple)
    distance: str = "walk"  # the standard's radii are walking distances
    name_required: bool = False  # POI kind alone is not enough (OSM "school" has no level)

    def as_dict(self) -> dict:
        """A JSON-ready dict (tuples as lists)."""
        d = asdict(self)
        d["poi_kinds"] = list(self.poi_kinds)
        d["name_patterns"] = list(self.name_patterns)
        return d


_C01 = "GB 50180-2018 附录C 表C.0.1（十五分钟、十分钟生活圈居住区配套设施）"
_C02 = "GB 50180-2018 附录C 表C.0.2（五分钟生活圈居住区配套设施）"
_C03 = "GB 50180-2018 附录C 表C.0.3（居住街坊配套设施）"
_T304 = "GB 50180-2018 第3.0.4条 表3.0.4（生活圈居住区分级控制规模，步行距离）"

FACILITY_TYPES: tuple[FacilityType, ...] = (
    FacilityType("kindergarten", "幼儿园", 300, "5min", _C02 + "：幼儿园服务半径不宜大于300m",
                 ("kindergarten", "childcare"), ("幼儿园", "托儿所", "kindergarten")),
    FacilityType("primary_school", "小学", 500, "10min", _C01 + "：小学服务半径不宜大于500m",
                 ("school",), ("小学", "Primary School"), name_required=True),
    FacilityType("middle_school", "初中", 1000, "15min", _C01 + "：初中服务半径不宜大于1000m",
                 ("school",), ("初中", "中学", "Middle School"), name_required=True),
    FacilityType("community_service_station", "社区服务站", 300, "5min",
                 _C02 + "：社区服务站服务半径不宜大于300m",
                 ("community_centre", "townhall", "social_facility"), ("社区服务", "居委会", "居民委员会")),
    FacilityType("food_market", "菜市场", 500, "10min", _C01 + "：菜市场或生鲜超市服务半径不宜大于500m",
                 ("marketplace", "greengrocer", "supermarket"), ("菜市场", "生鲜")),
    FacilityType("elderly_day_care", "养老/日间照料", 300, "5min",
                 _C02 + "：老年人日间照料中心（托老所）服务半径不宜大于300m",
                 ("social_facility", "nursing_home"), ("养老", "敬老", "日间照料", "托老")),
    FacilityType("health_center", "社区卫生服务中心", 1000, "15min",
                 _C01 + "：社区卫生服务中心（社区医院）一般每个十五分钟生活圈设置一处，服务半径按步行距离800～1000m",
                 ("clinic", "hospital", "doctors"), ("卫生服务", "社区医院")),
    FacilityType("sports_ground_small", "小型多功能运动场地", 300, "5min",
                 _C02 + "：小型多功能运动（球类）场地服务半径不宜大于300m",
                 ("pitch", "sports_centre", "fitness_station"), ("运动场", "健身")),
    FacilityType("culture_station", "文化活动站", 500, "5min", _C02 + "：文化活动站服务半径不宜大于500m",
                 ("community_centre", "arts_centre", "library"), ("文化活动", "文化站")),
    FacilityType("bus_stop", "公交车站", 500, "10min", _C01 + "：公交车站服务半径不宜大于500m",
                 ("bus_stop",), ("公交",)),
    FacilityType("metro_station", "轨道交通站点", 800, "15min", _C01 + "：轨道交通站点服务半径不宜大于800m",
                 ("subway_entrance", "station"), ("地铁", "站")),
)

LIFE_CIRCLES = {
    "15min": (1000, _T304 + "：十五分钟生活圈 800～1000m"),
    "10min": (500, _T304 + "：十分钟生活圈 500m"),
    "5min": (300, _T304 + "：五分钟生活圈 300m"),
}

_BY_KEY = {t.name: t for t in FACILITY_TYPES} | {t.code: t for t in FACILITY_TYPES}


def facility_type(key: str) -> FacilityType:
    """Look a type up by Chinese name (幼儿园) or code (kindergarten); KeyError lists the choices."""
    try:
        return _BY_KEY[key.strip()]
    except KeyError:
        choices = "、".join(t.name for t in FACILITY_TYPES)
        raise KeyError(f"未知设施类型 {key!r}；可选：{choices}") from None
