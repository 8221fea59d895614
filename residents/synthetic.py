"""Synthetic residents, houses and units for the demo: reproducible, clearly marked, never real people.

Pure: dwellings in (address code, level, households), records out. Each dwelling draws from its own random
stream seeded by ``(seed, address code)``, so the same seed gives the same people whatever subset is asked
for, and a re-run adds exactly what is missing. Everything carries ``source = 'synthetic'``; names come from
the small fixed lists below; phones use the ``170-0000`` block; ID numbers pass GB 11643 (their region is the
address's district for 户籍 residents) and credit codes pass GB 32100, but none stands for anybody.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from . import validate
from .records import House, Person, Unit

SOURCE = "synthetic"
DEFAULT_SEED = 20240612
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任沈姚卢"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国晓红玉兰志强海燕文博子涵欣怡浩然梓轩雨桐思远"
FOREIGN = (("USA", "Synthetic Smith"), ("JPN", "Synthetic Sato"), ("KOR", "Synthetic Kim"),
           ("FRA", "Synthetic Martin"), ("DEU", "Synthetic Muller"))
#: regions of the non-local (流动) residents' ID numbers: provincial capitals' districts
MIGRANT_REGIONS = ("340102", "410105", "510104", "320102", "420102", "430102", "360102", "130102")
HOUSEHOLD_SIZES = ((1, 22), (2, 33), (3, 22), (4, 15), (5, 8))
UNIT_NAMES = ("示例便利店", "示例餐饮店", "示例理发店", "示例药房", "示例洗衣店", "示例文印社", "示例水果店", "示例快递点")
#: one synthetic unit every this many house-number dwellings
UNIT_EVERY = 25


@dataclass(frozen=True)
class Dwelling:
    """A place people live: a room, or a building / house number without rooms, with its household count."""

    address_code: str
    level: str
    households: int


@dataclass
class SyntheticPerson:
    """A generated person, where they live and their key-group flags."""

    person: Person
    address_code: str
    from_date: date
    key_groups: list[str] = field(default_factory=list)


@dataclass
class SyntheticDwelling:
    """Everything generated for one dwelling."""

    address_code: str
    house: House
    people: list[SyntheticPerson]
    units: list[Unit]


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def _phone(rng: random.Random) -> str:
    return f"1700000{rng.randrange(10_000):04d}"


def _birth(rng: random.Random, today: date, age: int) -> date:
    return today - timedelta(days=age * 365 + rng.randrange(1, 365))


class _Ids:
    """Unique ID numbers across one generation (a clash bumps the sequence code)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def make(self, rng: random.Random, region: str, born: date, sex: str) -> str:
        seq = rng.randrange(0, 999)
        for _ in range(1000):
            seq = seq - seq % 2 + (1 if sex == "M" else 0)  # 17th digit: odd male, even female
            body = f"{region}{born:%Y%m%d}{seq:03d}"
            number = body + validate.id_check_char(body)
            if number not in self.used:
                self.used.add(number)
                return number
            seq = (seq + 2) % 1000
        raise RuntimeError("ID number space exhausted")  # pragma: no cover - 500 per region and day

    def passport(self, rng: random.Random) -> str:
        """A unique passport-like number ``SX`` + 7 digits (the ``SX`` marks it synthetic)."""
        while True:
            number = f"SX{rng.randrange(10**7):07d}"
            if number not in self.used:
                self.used.add(number)
                return number


def _household(rng: random.Random, d: Dwelling, ids: _Ids, today: date) -> list[SyntheticPerson]:
    size = rng.choices([s for s, _ in HOUSEHOLD_SIZES], [w for _, w in HOUSEHOLD_SIZES])[0]
    kind = rng.choices(("户籍", "常住", "流动", "境外"), (60, 20, 18, 2))[0]
    region = d.address_code[:6] if kind in ("户籍", "常住") else rng.choice(MIGRANT_REGIONS)
    moved_in = today - timedelta(days=rng.randrange(30, 20 * 365))
    head_age = rng.randrange(25, 88) if size > 1 else rng.randrange(22, 92)
    ages = [head_age]
    if size >= 2:
        ages.append(max(20, head_age + rng.randrange(-5, 6)))
    ages += [max(0, min(head_age - 20, 40)) - rng.randrange(0, 18) for _ in range(size - len(ages))]
    out: list[SyntheticPerson] = []
    for i, age in enumerate(ages):
        sex = rng.choice("MF") if i != 1 else ("F" if out[0].person.sex == "M" else "M")
        born = _birth(rng, today, max(age, 0))
        if kind == "境外":
            nationality, name = rng.choice(FOREIGN)
            p = Person(name=name, id_type="passport", id_number=ids.passport(rng), nationality=nationality,
                       sex=sex, birth_date=born, registration=kind, source=SOURCE, changed_by="synthetic")
        else:
            number = ids.make(rng, region, born, sex)
            p = Person(name=_name(rng), id_number=number, sex=sex, birth_date=born,
                       phone=_phone(rng) if age >= 16 else None, registration=kind, source=SOURCE,
                       changed_by="synthetic")
        flags = []
        if size == 1 and age >= 70:
            flags.append("elderly_alone")
        if rng.random() < 0.015:
            flags.append("disabled")
        if rng.random() < 0.02 and kind == "户籍":
            flags.append("low_income")
        out.append(SyntheticPerson(p, d.address_code, max(moved_in, born), flags))
    return out


def _house(rng: random.Random, d: Dwelling, people: list[SyntheticPerson], households: int) -> House:
    migrants = sum(1 for sp in people if sp.person.registration in ("流动", "境外"))
    if not people:
        use = "空置"
    elif migrants * 2 > len(people):
        use = "出租"
    else:
        use = "自住"
    area = round(rng.uniform(35, 140) * (households if d.level != "room" else 1), 1)
    rental = use == "出租"
    return House(address_code=d.address_code, use=use, floor_area=area,
                 ownership=rng.choice(("商品房", "公房", "私房")), tenant_count=len(people) if rental else None,
                 landlord_ref="示例房东" if rental else None, source=SOURCE, changed_by="synthetic")


def credit_code(rng: random.Random, region: str) -> str:
    """A GB 32100-valid credit code (工商 9, 企业 1) with a random organisation code."""
    body = "91" + region + "".join(rng.choice(validate.CREDIT_CHARSET) for _ in range(9))
    return body + validate.credit_check_char(body)


def generate(dwellings: Iterable[Dwelling], seed: int = DEFAULT_SEED,
             today: date = date(2026, 1, 1)) -> Iterator[SyntheticDwelling]:
    """Households, a house record and (for some house numbers) a unit per dwelling, in input order.

    ``today`` is fixed by default so that ages and dates are reproducible too."""
    ids = _Ids()
    for n, d in enumerate(sorted(dwellings, key=lambda x: x.address_code)):
        rng = random.Random(f"{seed}:{d.address_code}")
        people: list[SyntheticPerson] = []
        vacant = rng.random() < 0.06
        households = max(1, d.households)
        if not vacant:
            for _ in range(households):
                people += _household(rng, d, ids, today)
        units = []
        if d.level == "house_number" and n % UNIT_EVERY == 0:
            units.append(Unit(name=rng.choice(UNIT_NAMES), address_code=d.address_code,
                              credit_code=credit_code(rng, d.address_code[:6]), kind=rng.choice(("企业", "个体工商户")),
                              contact_name=_name(rng), contact_phone=_phone(rng), staff_count=rng.randrange(1, 12),
                              source=SOURCE, changed_by="synthetic"))
        yield SyntheticDwelling(d.address_code, _house(rng, d, people, households), people, units)
