"""The service on the demo's real addresses, each test in a rolled-back transaction."""

from __future__ import annotations

from datetime import date

import pytest

from address_registry.lifecycle import retire_address
from geo.errors import Conflict, InvalidInput, NotFound, StaleVersion
from residents import service, store
from residents import validate as v
from residents.errors import DuplicatePerson, DuplicateUnit


def _id(seq: int, born: str = "19800101", region: str = "310101") -> str:
    body = f"{region}{born}{seq:03d}"
    return body + v.id_check_char(body)


def test_create_person_derives_and_dedupes(rolled_back, demo_addresses):
    p, res = service.create_person(rolled_back, {"name": "测试甲", "id_number": _id(11), "phone": "139 1234 5678"},
                                   "tester", demo_addresses["room"], date(2020, 1, 1))
    assert p.sex == "M" and p.birth_date == date(1980, 1, 1) and p.phone == "13912345678"
    assert res is not None and res.address_code == demo_addresses["room"] and res.to_date is None
    with pytest.raises(DuplicatePerson) as err:
        service.create_person(rolled_back, {"name": "别名", "id_number": _id(11)}, "tester")
    assert err.value.detail["existing_id"] == p.id
    assert isinstance(err.value, Conflict)


def test_sex_contradicting_the_id_number_is_refused(rolled_back):
    with pytest.raises(InvalidInput):
        service.create_person(rolled_back, {"name": "测试乙", "id_number": _id(12), "sex": "M"}, "tester")


def test_update_person_keeps_versions(rolled_back, demo_addresses):
    p, _ = service.create_person(rolled_back, {"name": "测试丙", "id_number": _id(13)}, "tester")
    q = service.update_person(rolled_back, p.id, {"phone": "021-63211234"}, "editor", expected_version=1)
    assert q.version == 2 and q.phone == "021-63211234" and q.changed_by == "editor" and q.sex == "M"
    assert [x.version for x in store.person_history(rolled_back, p.id)] == [1, 2]
    with pytest.raises(StaleVersion):
        service.update_person(rolled_back, p.id, {"name": "x"}, "editor", expected_version=1)


def test_move_closes_the_old_residence(rolled_back, demo_addresses):
    p, _ = service.create_person(rolled_back, {"name": "测试丁", "id_number": _id(14)}, "tester",
                                 demo_addresses["room"], date(2020, 1, 1))
    service.move_person(rolled_back, p.id, demo_addresses["other_room"], date(2024, 6, 1), "mover")
    hist = store.residences(rolled_back, p.id)
    assert [(r.address_code, r.from_date, r.to_date) for r in hist] == [
        (demo_addresses["room"], date(2020, 1, 1), date(2024, 6, 1)),
        (demo_addresses["other_room"], date(2024, 6, 1), None)]
    with pytest.raises(Conflict):
        service.move_person(rolled_back, p.id, demo_addresses["other_room"], None, "mover")
    with pytest.raises(InvalidInput):
        service.move_person(rolled_back, p.id, demo_addresses["room"], date(2023, 1, 1), "mover")


def test_house_versions_and_bad_addresses(rolled_back, demo_addresses):
    h = service.record_house(rolled_back, demo_addresses["room"], {"use": "自住", "floor_area": 78.5}, "tester")
    assert h.version == 1 and h.floor_area == 78.5
    h2 = service.record_house(rolled_back, demo_addresses["room"], {
        "use": "出租", "floor_area": 78.5, "tenant_count": 3, "landlord_ref": "房东甲",
        "rent_from": "2025-01-01", "rent_to": "2026-01-01"}, "tester", expected_version=1)
    assert h2.version == 2 and h2.tenant_count == 3
    assert [x.use for x in store.house_history(rolled_back, demo_addresses["room"])] == ["自住", "出租"]
    with pytest.raises(InvalidInput):
        service.record_house(rolled_back, demo_addresses["building"], {"use": "自住", "tenant_count": 2}, "t")
    with pytest.raises(NotFound):
        service.record_house(rolled_back, "310101999999999999999", {"use": "空置"}, "tester")
    retire_address(rolled_back, demo_addresses["other_room"], "tester", "测试注销")
    with pytest.raises(InvalidInput) as err:
        service.record_house(rolled_back, demo_addresses["other_room"], {"use": "空置"}, "tester")
    assert "注销" in err.value.message


def test_units_dedupe_by_credit_code(rolled_back, demo_addresses):
    u = service.create_unit(rolled_back, {"name": "测试商店", "credit_code": "91350100M000100Y43", "kind": "企业",
                                          "address_code": demo_addresses["building"], "staff_count": 3}, "tester")
    assert u.id and u.version == 1
    with pytest.raises(DuplicateUnit):
        service.create_unit(rolled_back, {"name": "另一家", "credit_code": "91350100M000100Y43",
                                          "address_code": demo_addresses["building"]}, "tester")
    with pytest.raises(InvalidInput):
        service.create_unit(rolled_back, {"name": "坏代码", "credit_code": "91350100M000100Y44",
                                          "address_code": demo_addresses["building"]}, "tester")
    u2 = service.update_unit(rolled_back, u.id, {"staff_count": 5}, "editor")
    assert u2.version == 2 and [x.staff_count for x in store.unit_history(rolled_back, u.id)] == [3, 5]


def test_key_groups(rolled_back):
    p, _ = service.create_person(rolled_back, {"name": "测试戊", "id_number": _id(15, "19400101")}, "tester")
    assert {k["name"] for k in store.key_group_kinds(rolled_back)} >= {"独居老人", "社区矫正对象"}
    assert service.set_key_group(rolled_back, p.id, "elderly_alone", True, "tester")
    assert not service.set_key_group(rolled_back, p.id, "elderly_alone", True, "tester")
    assert [g["kind"] for g in store.key_groups_of(rolled_back, p.id)] == ["elderly_alone"]
    assert service.set_key_group(rolled_back, p.id, "elderly_alone", False, "tester")
    assert store.key_groups_of(rolled_back, p.id) == []
    with pytest.raises(InvalidInput):
        service.set_key_group(rolled_back, p.id, "no_such_kind", True, "tester")
