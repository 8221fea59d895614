"""The standard-address (标准地址) model: levels, components and the plain records the core works on.

An address is one node of a tree: district → road (街路巷) → house number (门牌号) → building (楼栋)
→ unit (单元) → floor (层) → room (户室). Province and city are implied by the district's GB/T 2260
code; township (乡镇街道) and community (村居委会) are attributes found from their polygons, not
tree parents, so that redrawing a community boundary never changes an address code.

A compound (小区 / 院落) is an address of its own (level `compound`, a child of the district beside the
roads, with its polygon in `area`); the addresses inside it carry it as an attribute (`compound_code`
and the `compound` component), again not as a tree parent: a house number belongs to its road.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Levels from coarse to fine (the `level` column and the geocoder's `level` answer).
ADMIN_LEVELS = ("province", "city", "district", "township", "community")
TREE_LEVELS = ("district", "road", "house_number", "building", "unit", "floor", "room")
LEVELS = (
    "province",
    "city",
    "district",
    "township",
    "community",
    "road",
    "compound",
    "house_number",
    "building",
    "unit",
    "floor",
    "room",
)
# Levels a row of `standard_address` may have.
REGISTRY_LEVELS = ("road", "compound", "house_number", "building", "unit", "floor", "room")
LEVEL_RANK = {name: i for i, name in enumerate(LEVELS)}

# Parent level of each registry (tree) level.
PARENT_LEVEL = {
    "road": "district",
    "house_number": "road",
    "building": "house_number",
    "unit": "building",
    "floor": "unit",
    "room": "floor",
}

# Components of an address, coarse to fine; the formatted text is their concatenation.
COMPONENT_KEYS = (
    "province",
    "city",
    "district",
    "township",
    "community",
    "road",
    "house_number",
    "compound",
    "building",
    "unit",
    "floor",
    "room",
)
# Components that identify an address (the normalised full text is made from these only; township,
# community and compound names describe it but may change without the address changing).
IDENTIFYING_KEYS = (
    "province",
    "city",
    "district",
    "road",
    "house_number",
    "building",
    "unit",
    "floor",
    "room",
)

SOURCES = ("osm", "generated", "import", "manual", "synthetic")
STATUSES = ("active", "retired")


@dataclass(slots=True)
class AddressRecord:
    """One current standard address as the core sees it (a row of `standard_address`)."""

    code: str
    level: str
    components: dict[str, str]
    lon: float | None = None
    lat: float | None = None
    parent_code: str | None = None
    district_code: str | None = None
    township_code: str | None = None
    community_code: str | None = None
    building_id: int | None = None
    compound_code: str | None = None
    # a compound's polygon (shapely, WGS84); None for every other level
    area: Any = None
    source: str = "generated"
    status: str = "active"
    version: int = 1
    aliases: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def formatted(self) -> str:
        """The formatted full text."""
        return format_components(self.components)

    @property
    def normalized(self) -> str:
        """The normalised full text (the unique key among active addresses)."""
        return normalized_full_text(self.components, self.level)


@dataclass(slots=True)
class AliasRecord:
    """Another name of an address: a former road name, a POI or compound name, a common variant."""

    address_code: str
    alias: str
    kind: str = "variant"  # former_name | poi | compound | variant
    source: str = "osm"


def format_components(components: dict[str, str]) -> str:
    """The formatted full text (e.g. 上海市黄浦区外滩街道中山东一路3号): components concatenated in order.

    A city equal to its province (直辖市: 上海市) is written once.
    """
    return _join_components(components, COMPONENT_KEYS)


def normalized_full_text(components: dict[str, str], level: str | None = None) -> str:
    """The key that must be unique among active addresses: identifying components, normalised.

    For a compound itself its name identifies it (district + compound name)."""
    from address_registry.textnorm import normalize_text

    keys = ("province", "city", "district", "compound") if level == "compound" else IDENTIFYING_KEYS
    return normalize_text(_join_components(components, keys))


def _join_components(components: dict[str, str], keys) -> str:
    """The given components in order, a city equal to its province (直辖市) written once."""
    parts = []
    for key in keys:
        value = components.get(key)
        if not value:
            continue
        if key == "city" and value == components.get("province"):
            continue
        parts.append(value)
    return "".join(parts)
