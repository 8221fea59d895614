"""Plain records of the three 实 on a standard address: people, residences, houses, units, key groups."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

#: 户籍、常住、流动、境外 registration status of a person
REGISTRATIONS = ("户籍", "常住", "流动", "境外")
#: 实有房屋 use
HOUSE_USES = ("自住", "出租", "空置", "商用", "其他")
#: 产权性质 ownership kind
OWNERSHIP_KINDS = ("商品房", "公房", "私房", "单位产权", "其他")
#: unit kinds (实有单位)
UNIT_KINDS = ("企业", "个体工商户", "机关", "事业单位", "社会组织", "其他")
#: record sources: collected by grid staff, imported from the police extract, or generated demo data
SOURCES = ("grid", "police", "synthetic")
#: address levels that can carry a house record / a residence / a unit
HOUSE_LEVELS = ("house_number", "building", "room")
RESIDENCE_LEVELS = ("house_number", "building", "unit", "floor", "room")
UNIT_LEVELS = ("house_number", "building", "unit", "floor", "room")
#: 重点人群 kinds seeded by the migration (code, Chinese name, English name); the table stays editable
KEY_GROUP_KINDS = (
    ("elderly_alone", "独居老人", "elderly living alone"),
    ("elderly_disabled", "失能老人", "disabled elderly"),
    ("elderly_hardship", "特殊困难老人", "elderly in special hardship"),
    ("minor", "未成年人", "minor"),
    ("disabled", "残疾人", "person with a disability"),
    ("mental_disorder", "精神障碍患者", "person with a mental disorder"),
    ("community_correction", "社区矫正对象", "person under community correction"),
    ("left_behind_child", "留守儿童", "left-behind child"),
    ("low_income", "低保对象", "minimum-subsistence recipient"),
)


@dataclass(kw_only=True)
class _Versioned:
    """What every versioned record carries: its version, when it held, who changed it."""

    version: int = 1
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    changed_by: str = "system"


@dataclass
class Person(_Versioned):
    """One version of a person (实有人口); ``id`` is stable across versions."""

    name: str
    id_type: str = "citizen_id"
    id_number: str | None = None
    nationality: str = "CHN"
    sex: str | None = None
    birth_date: date | None = None
    phone: str | None = None
    registration: str = "常住"
    source: str = "grid"
    id: int | None = None


@dataclass
class Residence:
    """A person living at a standard address from one date to another (open: ``to_date`` None)."""

    person_id: int
    address_code: str
    from_date: date
    to_date: date | None = None
    id: int | None = None
    changed_by: str = "system"
    source: str = "grid"


@dataclass
class House(_Versioned):
    """One version of the house record (实有房屋) of a building- or room-level address."""

    address_code: str
    use: str
    floor_area: float | None = None
    ownership: str | None = None
    tenant_count: int | None = None
    landlord_ref: str | None = None
    rent_from: date | None = None
    rent_to: date | None = None
    source: str = "grid"


@dataclass
class Unit(_Versioned):
    """One version of a unit / organisation (实有单位) at an address; ``id`` is stable across versions."""

    name: str
    address_code: str
    credit_code: str | None = None
    kind: str = "企业"
    contact_name: str | None = None
    contact_phone: str | None = None
    staff_count: int | None = None
    source: str = "grid"
    id: int | None = None


@dataclass
class KeyGroupFlag:
    """A person flagged in a key group (重点人群) from one date to another."""

    person_id: int
    kind: str
    from_date: date
    to_date: date | None = None
    note: str | None = None
    changed_by: str = "system"
    extra: dict[str, Any] = field(default_factory=dict)


def to_json(record: Any) -> dict[str, Any]:
    """A record as JSON-able dict (dates as ISO text)."""
    out = asdict(record)
    return {k: v.isoformat() if isinstance(v, date | datetime) else v for k, v in out.items()}
