"""一标三实 on the standard address: people (实有人口), houses (实有房屋) and units (实有单位).

Staff only (admin, street, community, grid manager, community police), within their jurisdiction: the
address's township, community, police area, or the grid / micro-grid holding its point. Personal fields are
masked by role (`gis_api.auth.classification`: names, phones and birth dates in clear for admin, police and
community staff; ID numbers for admin and police); every response with a 敏感 / 核心 field in clear appends
a ``*.read_clear`` audit entry naming the records and fields. Writes are versioned (people, houses, units)
or dated (residences, key groups), ``changed_by`` is the caller, and each is audited.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gis_api.auth import audit, masking, targets
from gis_api.auth import roles as r
from gis_api.auth.audited import audited, note_records
from gis_api.auth.deps import audit_fields, requires
from gis_api.deps import db_conn
from gis_api.params import if_match
from gis_api.schemas.residents import HouseIn, KeyGroupIn, MoveIn, PersonIn, PersonPatch, UnitIn, UnitPatch
from residents import service, store
from residents.errors import RecordNotFound
from residents.records import to_json

router = APIRouter(prefix="/residents", tags=["residents 一标三实"])

READ, WRITE = "residents:read", "residents:write"
#: response key → classification key of the personal fields
PERSON_FIELDS = {"name": "person.name", "phone": "person.phone", "id_number": "person.id_number",
                 "birth_date": "person.birth_date", "key_groups": "person_key_group.kind"}
HOUSE_FIELDS = {"landlord_ref": "house_info.landlord_ref"}
UNIT_FIELDS = {"contact_name": "org_unit.contact_name", "contact_phone": "org_unit.contact_phone"}
def resident_target(conn: Connection, code: str | None) -> dict[str, Any]:
    """The jurisdiction of an address for the three 实 (`targets.address_target`, grids included)."""
    return targets.address_target(conn, code) if code else {}


def _int_id(value: str, what: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise RecordNotFound(f"{what}不存在 no such record {value!r}")
    return int(value)


def _person_address(conn: Connection, person_id: str) -> str | None:
    """Where a person lives now (else last lived): the address their jurisdiction follows."""
    if not (person_id.isascii() and person_id.isdigit()) or len(person_id) > 18:
        return None
    return conn.execute(text("SELECT address_code FROM residence WHERE person_id = :p "
                             "ORDER BY to_date IS NULL DESC, to_date DESC, id DESC LIMIT 1"),
                        {"p": int(person_id)}).scalar()


def _address_dep(code: str, conn: Connection = Depends(db_conn, scope="function")) -> dict[str, Any]:
    """Dependency: the jurisdiction of the address in the path."""
    return resident_target(conn, code)


def _person_dep(person_id: str, conn: Connection = Depends(db_conn, scope="function")) -> dict[str, Any]:
    """Dependency: the jurisdiction of the person in the path (their current or last residence)."""
    return resident_target(conn, _person_address(conn, person_id))


def _unit_dep(unit_id: str, conn: Connection = Depends(db_conn, scope="function")) -> dict[str, Any]:
    """Dependency: the jurisdiction of the unit in the path (its address)."""
    code = None
    if (unit_id.isascii() and unit_id.isdigit()) and len(unit_id) <= 18:
        code = conn.execute(text("SELECT address_code FROM org_unit WHERE id = :i AND valid_to IS NULL"),
                            {"i": int(unit_id)}).scalar()
    return resident_target(conn, code)


def _read_person(conn: Connection, params: dict[str, str]) -> Any:
    """The audited record of a write on a person: current version and residence (unmasked, audit only)."""
    pid = params.get("person_id", "")
    p = store.person(conn, int(pid)) if (pid.isascii() and pid.isdigit()) and len(pid) <= 18 else None
    if p is None:
        return None
    res = store.current_residence(conn, p.id or 0)
    return to_json(p) | {"residence": to_json(res) if res else None}


def _read_house(conn: Connection, params: dict[str, str]) -> Any:
    h = store.house(conn, params.get("code", ""))
    return to_json(h) if h else None


def _read_unit(conn: Connection, params: dict[str, str]) -> Any:
    uid = params.get("unit_id", "")
    u = store.unit(conn, int(uid)) if (uid.isascii() and uid.isdigit()) and len(uid) <= 18 else None
    return to_json(u) if u else None


class _Shown:
    """Masks records for one caller and collects the clear reads of personal fields to audit."""

    def __init__(self, principal: r.Principal):
        self.principal = principal
        self.clear: dict[str, set[str]] = {}

    def mask(self, record: dict[str, Any], fields: dict[str, str], ref: str) -> dict[str, Any]:
        out, clear = masking.mask_record(record, fields, self.principal, in_jurisdiction=True)
        for key in clear:
            self.clear.setdefault(key, set()).add(ref)
        return out

    def audit(self, conn: Connection, request: Request, action: str) -> None:
        """One audit entry naming the records and the fields read in clear (none: nothing logged)."""
        if not self.clear:
            return
        ids = sorted({ref for refs in self.clear.values() for ref in refs})
        audit.append(conn, audit.AuditEntry.of(
            self.principal, action, record_ids=ids[:1000],
            detail={"fields": sorted(self.clear), "count": len(ids)}, **audit_fields(request)))


def _person_json(conn: Connection, p: Any, shown: _Shown, residence: Any = None) -> dict[str, Any]:
    rec = to_json(p) | {"key_groups": [g["name"] for g in store.key_groups_of(conn, p.id)] or None}
    if residence is not None:
        rec["residence"] = to_json(residence)
    return shown.mask(rec, PERSON_FIELDS, f"person:{p.id}")


# ---- reference ----

@router.get("/key-groups", dependencies=[Depends(requires(READ))],
            summary="重点人群类别 the key-group kinds (one editable table)")
def key_group_kinds(conn: Connection = Depends(db_conn, scope="function")):
    """Every key-group kind (code, Chinese and English name, order, active)."""
    return {"kinds": store.key_group_kinds(conn)}


# ---- people ----

@router.get("/addresses/{code}/people", summary="地址上的实有人口 people living at an address")
def people_at(code: str, request: Request,
              below: bool = Query(False, description="含下级（单元、楼层、室）地址 include units, floors, rooms"),
              limit: int = Query(200, ge=1, le=1000),
              conn: Connection = Depends(db_conn, scope="function"),
              principal: r.Principal = Depends(requires(READ, target=_address_dep))):
    """The people living at the address now, masked for the caller's role."""
    if store.address_state(conn, code) is None:
        raise RecordNotFound(f"标准地址不存在 no standard address {code}")
    shown = _Shown(principal)
    people = [_person_json(conn, p, shown, res) for p, res in store.people_at(conn, code, below, limit)]
    shown.audit(conn, request, "person.read_clear")
    return {"address_code": code, "total": len(people), "people": people}


@router.post("/addresses/{code}/people", status_code=201, summary="登记实有人口 record a person at an address",
             dependencies=[audited("person.create")])
def create_person(code: str, body: PersonIn, request: Request,
                  conn: Connection = Depends(db_conn, scope="function"),
                  principal: r.Principal = Depends(requires(WRITE, target=_address_dep))):
    """A new person living at the address (409 with ``existing_id`` when the document is already recorded)."""
    data = body.model_dump(exclude={"from_date"}) | {"source": "grid"}
    p, res = service.create_person(conn, data, principal.actor, code, body.from_date)
    note_records(request, f"person:{p.id}", code)
    shown = _Shown(principal)
    out = _person_json(conn, p, shown, res)
    shown.audit(conn, request, "person.read_clear")
    return out


@router.get("/people/{person_id}", summary="人员详情与居住史 a person with residences and key groups")
def get_person(person_id: str, request: Request, conn: Connection = Depends(db_conn, scope="function"),
               principal: r.Principal = Depends(requires(READ, target=_person_dep))):
    """The current version, every residence (history) and current key-group flags, masked for the role."""
    p = service.get_person(conn, _int_id(person_id, "人员"))
    shown = _Shown(principal)
    out = _person_json(conn, p, shown)
    out["residences"] = [to_json(x) for x in store.residences(conn, p.id or 0)]
    shown.audit(conn, request, "person.read_clear")
    return out


@router.get("/people/{person_id}/history", summary="人员信息全部版本 every version of a person")
def person_history(person_id: str, request: Request, conn: Connection = Depends(db_conn, scope="function"),
                   principal: r.Principal = Depends(requires(READ, target=_person_dep))):
    """Every version of the person, oldest first, masked for the role (clear reads audited)."""
    versions = store.person_history(conn, _int_id(person_id, "人员"))
    if not versions:
        raise RecordNotFound(f"人员不存在 no person {person_id}")
    shown = _Shown(principal)
    out = [shown.mask(to_json(v), PERSON_FIELDS, f"person:{v.id}") for v in versions]
    shown.audit(conn, request, "person.read_clear")
    return {"person_id": versions[0].id, "versions": out}


@router.patch("/people/{person_id}", summary="更正人员信息（保留旧版本） correct a person, keeping versions",
              dependencies=[audited("person.update", read=_read_person)])
def update_person(person_id: str, body: PersonPatch, request: Request,
                  conn: Connection = Depends(db_conn, scope="function"), expected: str | None = Depends(if_match),
                  principal: r.Principal = Depends(requires(WRITE, target=_person_dep))):
    """A new version with the given fields (412 when If-Match / ``version`` is not the current version)."""
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    version = int(expected) if expected and (expected.isascii() and expected.isdigit()) else body.version
    p = service.update_person(conn, _int_id(person_id, "人员"), changes, principal.actor, version)
    shown = _Shown(principal)
    out = _person_json(conn, p, shown)
    shown.audit(conn, request, "person.read_clear")
    return out


@router.post("/people/{person_id}/move", summary="人员迁居（旧居住关系结束，保留历史） move a person",
             dependencies=[audited("person.move", read=_read_person)])
def move_person(person_id: str, body: MoveIn, conn: Connection = Depends(db_conn, scope="function"),
                principal: r.Principal = Depends(requires(WRITE, target=_person_dep))):
    """Close the current residence on ``from_date`` and open one at ``address_code`` (within the caller's
    jurisdiction too); every residence, oldest first."""
    r.require(principal, WRITE, resident_target(conn, body.address_code))
    pid = _int_id(person_id, "人员")
    service.move_person(conn, pid, body.address_code, body.from_date, principal.actor)
    return {"person_id": pid, "residences": [to_json(x) for x in store.residences(conn, pid)]}


@router.post("/people/{person_id}/key-groups", summary="标记或取消重点人群 flag / unflag a key group",
             dependencies=[audited("person.key_group", read=_read_person)])
def set_key_group(person_id: str, body: KeyGroupIn, conn: Connection = Depends(db_conn, scope="function"),
                  principal: r.Principal = Depends(requires(WRITE, target=_person_dep))):
    """Flag (``on``) or unflag; ``changed`` false when the flag already was as asked."""
    pid = _int_id(person_id, "人员")
    changed = service.set_key_group(conn, pid, body.kind, body.on, principal.actor, body.on_date, body.note)
    return {"person_id": pid, "changed": changed}


# ---- houses ----

@router.get("/addresses/{code}/house", summary="实有房屋信息及历史 the house record of an address, with history")
def get_house(code: str, request: Request, conn: Connection = Depends(db_conn, scope="function"),
              principal: r.Principal = Depends(requires(READ, target=_address_dep))):
    """The current house record (null when none) and every version, oldest first."""
    if store.address_state(conn, code) is None:
        raise RecordNotFound(f"标准地址不存在 no standard address {code}")
    shown = _Shown(principal)
    versions = [shown.mask(to_json(h), HOUSE_FIELDS, f"house:{code}") for h in store.house_history(conn, code)]
    shown.audit(conn, request, "house.read_clear")
    current = versions[-1] if versions and versions[-1]["valid_to"] is None else None
    return {"address_code": code, "house": current, "history": versions}


@router.put("/addresses/{code}/house", summary="登记或更正实有房屋（新版本） record the house details",
            dependencies=[audited("house.record", read=_read_house)])
def record_house(code: str, body: HouseIn, conn: Connection = Depends(db_conn, scope="function"),
                 expected: str | None = Depends(if_match),
                 principal: r.Principal = Depends(requires(WRITE, target=_address_dep))):
    """A building- or room-level address (or a lane house's number): 404 unknown, 422 retired or another level."""
    version = int(expected) if expected and (expected.isascii() and expected.isdigit()) else body.version
    h = service.record_house(conn, code, body.model_dump(exclude={"version"}) | {"source": "grid"},
                             principal.actor, version)
    return to_json(h)


# ---- units ----

@router.get("/addresses/{code}/units", summary="地址上的实有单位 units at an address")
def units_at(code: str, request: Request, conn: Connection = Depends(db_conn, scope="function"),
             principal: r.Principal = Depends(requires(READ, target=_address_dep))):
    """Current units at the address, contacts masked for the role."""
    if store.address_state(conn, code) is None:
        raise RecordNotFound(f"标准地址不存在 no standard address {code}")
    shown = _Shown(principal)
    units = [shown.mask(to_json(u), UNIT_FIELDS, f"unit:{u.id}") for u in store.units_at(conn, code)]
    shown.audit(conn, request, "unit.read_clear")
    return {"address_code": code, "units": units}


@router.post("/addresses/{code}/units", status_code=201, summary="登记实有单位 record a unit at an address",
             dependencies=[audited("unit.create")])
def create_unit(code: str, body: UnitIn, request: Request, conn: Connection = Depends(db_conn, scope="function"),
                principal: r.Principal = Depends(requires(WRITE, target=_address_dep))):
    """A new unit (409 with ``existing_id`` when the credit code is already recorded)."""
    u = service.create_unit(conn, body.model_dump() | {"address_code": code, "source": "grid"}, principal.actor)
    note_records(request, f"unit:{u.id}", code)
    return to_json(u)


@router.patch("/units/{unit_id}", summary="更正实有单位（保留旧版本） correct a unit, keeping versions",
              dependencies=[audited("unit.update", read=_read_unit)])
def update_unit(unit_id: str, body: UnitPatch, conn: Connection = Depends(db_conn, scope="function"),
                expected: str | None = Depends(if_match),
                principal: r.Principal = Depends(requires(WRITE, target=_unit_dep))):
    """A new version with the given fields; moving it to another address needs jurisdiction there too."""
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    if changes.get("address_code"):
        r.require(principal, WRITE, resident_target(conn, changes["address_code"]))
    version = int(expected) if expected and (expected.isascii() and expected.isdigit()) else body.version
    return to_json(service.update_unit(conn, _int_id(unit_id, "单位"), changes, principal.actor, version))
