"""The rules of the three 实 that need the database: address checks, dedupe by document, moves, versions.

Every write takes ``changed_by`` (the caller) and runs in the caller's transaction; nothing is written when
a rule fails. People, houses and units get a new version per change (the old one closed, kept);
residences and key-group flags run from a date to a date.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from geo.errors import Conflict, InvalidInput

from . import partitions, store, validate
from .errors import (
    AddressNotFound,
    AddressNotUsable,
    DuplicatePerson,
    DuplicateUnit,
    InvalidField,
    RecordNotFound,
)
from .records import (
    HOUSE_LEVELS,
    HOUSE_USES,
    OWNERSHIP_KINDS,
    REGISTRATIONS,
    RESIDENCE_LEVELS,
    SOURCES,
    UNIT_KINDS,
    UNIT_LEVELS,
    House,
    Person,
    Residence,
    Unit,
)

PERSON_FIELDS = ("name", "id_type", "id_number", "nationality", "sex", "birth_date", "phone", "registration")
HOUSE_FIELDS = ("use", "floor_area", "ownership", "tenant_count", "landlord_ref", "rent_from", "rent_to")
UNIT_FIELDS = ("name", "credit_code", "kind", "address_code", "contact_name", "contact_phone", "staff_count")


def check_address(conn: Any, code: str, levels: tuple[str, ...]) -> dict[str, Any]:
    """The address's state when it exists, is active and of one of ``levels``; else 404 / 422."""
    state = store.address_state(conn, code)
    if state is None:
        raise AddressNotFound(f"标准地址不存在 no standard address {code}", {"field": "address_code"})
    if not state["current"] or state["status"] != "active":
        raise AddressNotUsable(f"标准地址已注销 address {code} is retired", {"field": "address_code"})
    if state["level"] not in levels:
        raise AddressNotUsable(
            f"该层级地址（{state['level']}）不能登记此项，应为 {'、'.join(levels)} "
            f"an address of level {state['level']} cannot carry this record (one of {', '.join(levels)})",
            {"field": "address_code"})
    return state


def _choice(field: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise InvalidField(field, f"应为 {'、'.join(allowed)} 之一", f"one of {', '.join(allowed)}")


def _text(field: str, value: Any, required: bool = False) -> str | None:
    s = value.strip() if isinstance(value, str) else value
    if required and not s:
        raise InvalidField(field, "不能为空", "is required")
    if s is not None and len(s) > 200:
        raise InvalidField(field, "过长（最多 200 字）", "too long (at most 200 characters)")
    return s or None


def _as_date(field: str, value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidField(field, "日期格式应为 YYYY-MM-DD", "a date is YYYY-MM-DD") from None


def checked_person(p: Person) -> Person:
    """The person with normalised document and phone, sex and birth date derived from a citizen ID.

    A given sex or birth date that contradicts the ID number is refused (422)."""
    p.name = _text("name", p.name, required=True) or ""
    _choice("registration", p.registration, REGISTRATIONS)
    _choice("source", p.source, SOURCES)
    _choice("sex", p.sex, ("M", "F"))
    p.birth_date = _as_date("birth_date", p.birth_date)
    p.nationality = (p.nationality or "CHN").strip().upper()
    if len(p.nationality) != 3 or not p.nationality.isalpha():
        raise InvalidField("nationality", "国籍应为 ISO 3166 三位字母代码", "an ISO 3166 alpha-3 code")
    if p.id_number:
        p.id_number, parsed = validate.document(p.id_type, p.id_number)
        if parsed is not None:
            if p.sex is not None and p.sex != parsed.sex:
                raise InvalidField("sex", "与身份号码不符", "does not match the ID number")
            if p.birth_date is not None and p.birth_date != parsed.birth_date:
                raise InvalidField("birth_date", "与身份号码不符", "does not match the ID number")
            p.sex, p.birth_date = parsed.sex, parsed.birth_date
    if p.phone:
        p.phone = validate.phone(p.phone)
    return p


def _dedupe(conn: Any, p: Person, own_id: int | None = None) -> None:
    if not p.id_number:
        return
    found = store.person_by_document(conn, p.id_type, p.id_number)
    if found is not None and found != own_id:
        raise DuplicatePerson(f"该证件号码已登记（人员 {found}） a person with this document is already recorded "
                              f"(id {found})", {"field": "id_number", "existing_id": found})


def create_person(conn: Any, data: dict[str, Any], changed_by: str, address_code: str | None = None,
                  from_date: date | None = None) -> tuple[Person, Residence | None]:
    """A new person (deduped by document: 409 naming the existing id), living at ``address_code`` if given."""
    p = checked_person(Person(**{k: v for k, v in data.items() if k in (*PERSON_FIELDS, "source")},
                              changed_by=changed_by))
    if address_code is not None:
        check_address(conn, address_code, RESIDENCE_LEVELS)
    _dedupe(conn, p)
    p.id = store.next_person_id(conn)
    stored = store.insert_person(conn, p)
    res = None
    if address_code is not None:
        res = store.open_residence(conn, Residence(stored.id or 0, address_code, from_date or date.today(),
                                                   changed_by=changed_by, source=p.source))
    return stored, res


def get_person(conn: Any, person_id: int, lock: bool = False) -> Person:
    """The current version of a person, else 404."""
    p = store.person(conn, person_id, lock=lock)
    if p is None:
        raise RecordNotFound(f"人员不存在 no person {person_id}")
    return p


def update_person(conn: Any, person_id: int, changes: dict[str, Any], changed_by: str,
                  expected_version: int | None = None) -> Person:
    """A new version of a person with ``changes`` (412 when ``expected_version`` is not the current one)."""
    from geo.errors import StaleVersion

    old = get_person(conn, person_id, lock=True)
    if expected_version is not None and expected_version != old.version:
        raise StaleVersion(f"人员已被修改（当前版本 {old.version}） person changed (current version {old.version})")
    new = replace(old, **{k: v for k, v in changes.items() if k in PERSON_FIELDS},
                  version=old.version + 1, changed_by=changed_by, valid_from=None, valid_to=None)
    if "id_number" in changes or "id_type" in changes:
        if "sex" not in changes:
            new.sex = None
        if "birth_date" not in changes:
            new.birth_date = None
    checked_person(new)
    _dedupe(conn, new, own_id=person_id)
    store.close_person(conn, person_id)
    return store.insert_person(conn, new)


def move_person(conn: Any, person_id: int, address_code: str, on: date | None, changed_by: str) -> Residence:
    """Move a person: the current residence closes on ``on`` (default today), a new one opens; history kept."""
    get_person(conn, person_id, lock=True)
    check_address(conn, address_code, RESIDENCE_LEVELS)
    on = on or date.today()
    cur = store.current_residence(conn, person_id, lock=True)
    if cur is not None:
        if cur.address_code == address_code:
            raise Conflict(f"已居住于该地址 person {person_id} already lives at {address_code}",
                           {"field": "address_code"})
        if on < cur.from_date:
            raise InvalidInput(f"迁入日期早于上一居住起始日 {cur.from_date} the move date is before the current "
                               f"residence began ({cur.from_date})", {"field": "from_date"})
        store.close_residence(conn, cur.id or 0, on, changed_by)
    return store.open_residence(conn, Residence(person_id, address_code, on, changed_by=changed_by))


def _checked_house(h: House) -> House:
    _choice("use", h.use, HOUSE_USES)
    _choice("ownership", h.ownership, OWNERSHIP_KINDS)
    _choice("source", h.source, SOURCES)
    if h.floor_area is not None and not 0 < float(h.floor_area) < 1_000_000:
        raise InvalidField("floor_area", "建筑面积应大于 0", "must be positive")
    if h.tenant_count is not None and h.tenant_count < 0:
        raise InvalidField("tenant_count", "不能为负", "cannot be negative")
    h.rent_from, h.rent_to = _as_date("rent_from", h.rent_from), _as_date("rent_to", h.rent_to)
    if h.use != "出租" and (h.tenant_count or h.rent_from or h.rent_to):
        raise InvalidField("use", "只有出租房屋登记租住信息", "rental details need use 出租")
    if h.rent_from and h.rent_to and h.rent_to < h.rent_from:
        raise InvalidField("rent_to", "租期结束早于开始", "ends before it begins")
    h.landlord_ref = _text("landlord_ref", h.landlord_ref)
    return h


def record_house(conn: Any, address_code: str, data: dict[str, Any], changed_by: str,
                 expected_version: int | None = None, partition_ready: bool = False) -> House:
    """Record (or re-record: a new version) the house details of a building- or room-level address.

    The address's district gets its own partition of `house_info` first when it has none (migration 0018;
    its rows leave the default partition, in this transaction), so a house written singly lands where a
    bulk import would put it. ``partition_ready``: the caller (a bulk import) has ensured it already."""
    from geo.errors import StaleVersion

    check_address(conn, address_code, HOUSE_LEVELS)
    if not partition_ready and (district := partitions.district_of(address_code)):
        partitions.ensure_partitions(conn, [district])  # before this transaction touches house_info
    old = store.house(conn, address_code, lock=True)
    if expected_version is not None and (old.version if old else 0) != expected_version:
        raise StaleVersion(f"房屋信息已被修改 house record changed (current version {old.version if old else 0})")
    h = _checked_house(House(address_code=address_code, changed_by=changed_by,
                             version=(old.version + 1) if old else 1,
                             **{k: v for k, v in data.items() if k in (*HOUSE_FIELDS, "source")}))
    if old is not None:
        store.close_house(conn, address_code)
    return store.insert_house(conn, h)


def _checked_unit(conn: Any, u: Unit, own_id: int | None = None) -> Unit:
    u.name = _text("name", u.name, required=True) or ""
    _choice("kind", u.kind, UNIT_KINDS)
    _choice("source", u.source, SOURCES)
    u.contact_name = _text("contact_name", u.contact_name)
    if u.contact_phone:
        u.contact_phone = validate.phone(u.contact_phone, "contact_phone")
    if u.staff_count is not None and u.staff_count < 0:
        raise InvalidField("staff_count", "不能为负", "cannot be negative")
    check_address(conn, u.address_code, UNIT_LEVELS)
    if u.credit_code:
        u.credit_code = validate.credit_code(u.credit_code)
        found = store.unit_by_credit_code(conn, u.credit_code)
        if found is not None and found != own_id:
            raise DuplicateUnit(f"该统一社会信用代码已登记（单位 {found}） a unit with this credit code is already "
                                f"recorded (id {found})", {"field": "credit_code", "existing_id": found})
    return u


def create_unit(conn: Any, data: dict[str, Any], changed_by: str) -> Unit:
    """A new unit at an address (deduped by credit code: 409 naming the existing id)."""
    u = _checked_unit(conn, Unit(changed_by=changed_by, **{k: v for k, v in data.items()
                                                             if k in (*UNIT_FIELDS, "source")}))
    u.id = store.next_unit_id(conn)
    return store.insert_unit(conn, u)


def get_unit(conn: Any, unit_id: int, lock: bool = False) -> Unit:
    """The current version of a unit, else 404."""
    u = store.unit(conn, unit_id, lock=lock)
    if u is None:
        raise RecordNotFound(f"单位不存在 no unit {unit_id}")
    return u


def update_unit(conn: Any, unit_id: int, changes: dict[str, Any], changed_by: str,
                expected_version: int | None = None) -> Unit:
    """A new version of a unit with ``changes``."""
    from geo.errors import StaleVersion

    old = get_unit(conn, unit_id, lock=True)
    if expected_version is not None and expected_version != old.version:
        raise StaleVersion(f"单位已被修改（当前版本 {old.version}） unit changed (current version {old.version})")
    new = replace(old, **{k: v for k, v in changes.items() if k in UNIT_FIELDS},
                  version=old.version + 1, changed_by=changed_by, valid_from=None, valid_to=None)
    _checked_unit(conn, new, own_id=unit_id)
    store.close_unit(conn, unit_id)
    return store.insert_unit(conn, new)


def set_key_group(conn: Any, person_id: int, kind: str, on: bool, changed_by: str, when: date | None = None,
                  note: str | None = None) -> bool:
    """Flag (``on``) or unflag a person in a key group; False when nothing changed."""
    get_person(conn, person_id)
    if not store.key_group_kind_exists(conn, kind):
        raise InvalidField("kind", f"未知重点人群类别 {kind}", f"unknown key-group kind {kind}")
    when = when or date.today()
    if on:
        return store.flag_key_group(conn, person_id, kind, when, note, changed_by)
    return store.unflag_key_group(conn, person_id, kind, when)


def _synthetic_rows(conn: Any, batch: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """The rows of a batch of generated dwellings, skipping documents / credit codes already recorded."""
    people = [sp for d in batch for sp in d.people]
    taken = store.existing_documents(conn, [sp.person.id_number for sp in people if sp.person.id_number])
    people = [sp for sp in people if sp.person.id_number not in taken]
    units = [u for d in batch for u in d.units]
    used = store.existing_credit_codes(conn, [u.credit_code for u in units if u.credit_code])
    units = [u for u in units if u.credit_code not in used]
    out: dict[str, list[dict[str, Any]]] = {"person": [], "residence": [], "person_key_group": [],
                                            "house_info": [], "org_unit": []}
    for pid, sp in zip(store.take_ids(conn, "person_id_seq", len(people)), people, strict=True):
        p = sp.person
        out["person"].append({k: getattr(p, k) for k in PERSON_FIELDS} | {
            "id": pid, "source": p.source, "changed_by": p.changed_by, "change_reason": "synthetic demo"})
        out["residence"].append({"person_id": pid, "address_code": sp.address_code, "from_date": sp.from_date,
                                 "source": p.source, "changed_by": p.changed_by})
        out["person_key_group"] += [{"person_id": pid, "kind": k, "from_date": sp.from_date, "source": p.source,
                                     "changed_by": p.changed_by} for k in sp.key_groups]
    for d in batch:
        h = d.house
        out["house_info"].append({k: getattr(h, k) for k in HOUSE_FIELDS} | {
            "address_code": h.address_code, "source": h.source, "changed_by": h.changed_by,
            "change_reason": "synthetic demo"})
    for uid, u in zip(store.take_ids(conn, "org_unit_id_seq", len(units)), units, strict=True):
        out["org_unit"].append({k: getattr(u, k) for k in UNIT_FIELDS} | {
            "id": uid, "source": u.source, "changed_by": u.changed_by, "change_reason": "synthetic demo"})
    return out


def load_synthetic(conn: Any, seed: int, community: str | None = None, batch_size: int = 200,
                   progress: Any = None) -> dict[str, int]:
    """Generate the demo's synthetic residents, houses and units and insert what is missing (idempotent:
    a dwelling that already has its synthetic house record is skipped). ``progress(iterable, total)`` wraps
    the batches (a progress bar). Counts of what was inserted."""
    from . import synthetic

    rows = store.dwellings(conn, community)
    done = store.synthetic_done(conn, [code for code, _, _ in rows])
    todo = [synthetic.Dwelling(code, level, hh) for code, level, hh in rows if code not in done]
    counts = {"dwellings": len(rows), "skipped": len(done), "person": 0, "house_info": 0, "org_unit": 0,
              "person_key_group": 0}
    # the districts' partitions of the houses table exist before their rows arrive (migration 0018)
    partitions.ensure_partitions(conn, {d for w in todo if (d := partitions.district_of(w.address_code))})
    generated = synthetic.generate(todo, seed)
    batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
    for chunk in (progress(batches, len(batches)) if progress else batches):
        batch = [next(generated) for _ in chunk]
        for table, table_rows in _synthetic_rows(conn, batch).items():
            store.bulk_insert(conn, table, table_rows)
            if table in counts:
                counts[table] += len(table_rows)
    return counts
