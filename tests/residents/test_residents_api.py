"""The residents API on the demo: policies by role and jurisdiction, masking, clear-read audit, writes."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from residents import validate as v

BASE = "/residents/addresses/{}/"


def _id(seq: int, born: str = "19750315", region: str = "310101") -> str:
    body = f"{region}{born}{seq:03d}"
    return body + v.id_check_char(body)


@pytest.fixture(scope="module", autouse=True)
def _cleanup(engine):
    """What these tests commit through the API is removed afterwards (audit entries stay: append-only)."""
    yield
    with engine.begin() as conn:
        ids = "SELECT id FROM person WHERE changed_by LIKE 'm-%'"
        conn.execute(text(f"DELETE FROM person_key_group WHERE person_id IN ({ids})"))
        conn.execute(text(f"DELETE FROM residence WHERE person_id IN ({ids})"))
        conn.execute(text("DELETE FROM person WHERE changed_by LIKE 'm-%'"))
        conn.execute(text("DELETE FROM house_info WHERE changed_by LIKE 'm-%'"))
        conn.execute(text("DELETE FROM org_unit WHERE changed_by LIKE 'm-%'"))


def _last_audit(engine, action: str) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT actor, actor_role, action, record_ids, detail FROM audit_log "
                                "WHERE action = :a ORDER BY id DESC LIMIT 1"), {"a": action}).mappings().first()
    return dict(row) if row else None


@pytest.fixture(scope="module")
def person(client, demo_addresses):
    """A person recorded by the admin at the first community's house number."""
    res = client.post(BASE.format(demo_addresses["house_number"]) + "people", json={
        "name": "欧阳测试", "id_number": _id(21), "phone": "13912345678", "registration": "户籍",
        "from_date": "2021-03-01"})
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["sex"] == "M" and body["birth_date"] == "1975-03-15" and body["source"] == "grid"
    assert body["id_number"] == _id(21)  # the admin reads it in clear (audited)
    return body


def test_public_and_planner_are_refused(anon_client, role_headers, demo_addresses):
    url = BASE.format(demo_addresses["house_number"]) + "people"
    assert anon_client.get(url).status_code == 401
    assert anon_client.post(url, json={"name": "x"}).status_code == 401
    assert anon_client.get(url, headers=role_headers["planner"]).status_code == 403
    assert anon_client.get(url, headers=role_headers["system"]).status_code == 403


def test_dedupe_answers_409_with_the_existing_id(client, person, demo_addresses):
    res = client.post(BASE.format(demo_addresses["house_number"]) + "people",
                      json={"name": "重复", "id_number": _id(21)})
    assert res.status_code == 409 and res.json()["error"] == "duplicate_person"
    assert res.json()["detail"]["existing_id"] == person["id"]


def test_invalid_id_number_is_422_naming_the_field(client, demo_addresses):
    bad = _id(22)[:17] + ("0" if _id(22)[17] != "0" else "1")
    res = client.post(BASE.format(demo_addresses["house_number"]) + "people", json={"name": "坏号", "id_number": bad})
    assert res.status_code == 422 and res.json()["error"] == "invalid_id_number"
    assert res.json()["detail"]["field"] == "id_number"


def _shown(anon_client, headers, code, person_id):
    res = anon_client.get(BASE.format(code) + "people", headers=headers)
    assert res.status_code == 200, res.text
    return next(p for p in res.json()["people"] if p["id"] == person_id)


def test_masking_by_role_and_clear_reads_audited(anon_client, role_headers, person, demo_addresses, engine):
    code = demo_addresses["house_number"]
    community = _shown(anon_client, role_headers["community"], code, person["id"])
    assert community["name"] == "欧阳测试" and community["phone"] == "13912345678"
    assert community["id_number"] == _id(21)[:6] + "********" + _id(21)[-4:]
    entry = _last_audit(engine, "person.read_clear")
    assert entry["actor"] == "m-community" and f"person:{person['id']}" in entry["record_ids"]
    assert "id_number" not in entry["detail"]["fields"] and "name" in entry["detail"]["fields"]

    police = _shown(anon_client, role_headers["police"], code, person["id"])
    assert police["id_number"] == _id(21) and police["name"] == "欧阳测试"
    entry = _last_audit(engine, "person.read_clear")
    assert entry["actor"] == "m-police" and "id_number" in entry["detail"]["fields"]

    street = _shown(anon_client, role_headers["street"], code, person["id"])
    assert street["name"] == "欧**试" and street["phone"] == "139****5678"
    assert street["id_number"].startswith("310101****") and street["birth_date"] != "1975-03-15"
    assert _last_audit(engine, "person.read_clear")["actor"] == "m-police"  # nothing in clear: no entry


def test_outside_jurisdiction_is_403(anon_client, role_headers, person, demo_addresses):
    for role in ("community", "police", "street"):
        res = anon_client.get(BASE.format(demo_addresses["other_house_number"]) + "people",
                              headers=role_headers[role])
        assert res.status_code == 403 and res.json()["error"] == "outside_jurisdiction", role
    res = anon_client.get(f"/residents/people/{person['id']}", headers=role_headers["community"])
    assert res.status_code == 200 and res.json()["name"] == "欧阳测试"


def test_grid_manager_within_their_grid(anon_client, role_headers, engine):
    with engine.connect() as conn:
        grid = conn.execute(text("SELECT g.code FROM user_grant g JOIN app_user u ON u.id = g.user_id "
                                 "WHERE u.name = 'm-grid_manager' AND g.kind = 'grid'")).scalar()
        inside = conn.execute(text(
            "SELECT min(a.code) FROM standard_address a JOIN grid g ON g.code = :g AND g.valid_to IS NULL "
            "AND ST_Intersects(g.geom, a.geom) WHERE a.valid_to IS NULL AND a.level = 'house_number'"),
            {"g": grid}).scalar()
    if inside is None:
        pytest.skip("no house number inside the test grid")
    res = anon_client.get(BASE.format(inside) + "people", headers=role_headers["grid_manager"])
    assert res.status_code == 200, res.text


def test_move_and_history_through_the_api(client, anon_client, role_headers, demo_addresses):
    created = client.post(BASE.format(demo_addresses["house_number"]) + "people",
                          json={"name": "迁居测试", "id_number": _id(23), "from_date": "2020-01-01"}).json()
    pid = created["id"]
    # the community cannot move someone into another community's address
    res = anon_client.post(f"/residents/people/{pid}/move", headers=role_headers["community"],
                           json={"address_code": demo_addresses["other_house_number"], "from_date": "2024-05-01"})
    assert res.status_code == 403
    res = client.post(f"/residents/people/{pid}/move",
                      json={"address_code": demo_addresses["other_house_number"], "from_date": "2024-05-01"})
    assert res.status_code == 200, res.text
    hist = res.json()["residences"]
    assert [(h["address_code"], h["to_date"]) for h in hist] == [
        (demo_addresses["house_number"], "2024-05-01"), (demo_addresses["other_house_number"], None)]
    # the person now lies in the other community: the first community's staff lose sight of them
    assert anon_client.get(f"/residents/people/{pid}", headers=role_headers["community"]).status_code == 403


def test_patch_person_with_if_match(client, person):
    url = f"/residents/people/{person['id']}"
    res = client.patch(url, json={"phone": "021-63211234"}, headers={"If-Match": '"1"'})
    assert res.status_code == 200 and res.json()["version"] == 2
    assert client.patch(url, json={"phone": "13800000000"}, headers={"If-Match": '"1"'}).status_code == 412
    bad = client.patch(url, json={"phone": "12345"})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "phone"
    versions = client.get(url + "/history").json()["versions"]
    assert [(x["version"], x["phone"]) for x in versions] == [(1, "13912345678"), (2, "021-63211234")]
    assert versions[0]["valid_to"] is not None and versions[1]["valid_to"] is None


def test_house_record_and_bad_addresses(client, demo_addresses, engine):
    code = demo_addresses["house_number"]
    res = client.put(BASE.format(code) + "house", json={"use": "出租", "floor_area": 65.5, "tenant_count": 2,
                                                       "landlord_ref": "房东乙", "rent_from": "2025-01-01"})
    assert res.status_code == 200, res.text
    assert res.json()["version"] == 1
    got = client.get(BASE.format(code) + "house").json()
    assert got["house"]["use"] == "出租" and len(got["history"]) == 1
    assert client.put(BASE.format("310101999999999999999") + "house", json={"use": "空置"}).status_code == 404
    with engine.connect() as conn:
        road = conn.execute(text("SELECT min(code) FROM standard_address WHERE level = 'road' "
                                 "AND valid_to IS NULL")).scalar()
    res = client.put(BASE.format(road) + "house", json={"use": "空置"})
    assert res.status_code == 422 and res.json()["error"] == "address_not_usable"
    assert _last_audit(engine, "house.record")["record_ids"] == [code]


def test_units(client, anon_client, role_headers, demo_addresses):
    url = BASE.format(demo_addresses["house_number"]) + "units"
    bad = client.post(url, json={"name": "坏代码公司", "credit_code": "91350100M000100Y44"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_credit_code"
    res = client.post(url, json={"name": "测试便利店", "credit_code": "91350100M000100Y43", "kind": "企业",
                                 "contact_name": "张三", "contact_phone": "13912345678", "staff_count": 4})
    assert res.status_code == 201, res.text
    assert client.post(url, json={"name": "x", "credit_code": "91350100M000100Y43"}).status_code == 409
    street = anon_client.get(url, headers=role_headers["street"]).json()["units"]
    assert street[0]["contact_name"] == "张*" and street[0]["contact_phone"] == "139****5678"
    patched = client.patch(f"/residents/units/{res.json()['id']}", json={"staff_count": 6})
    assert patched.status_code == 200 and patched.json()["version"] == 2


def test_key_groups_api(client, person):
    kinds = client.get("/residents/key-groups").json()["kinds"]
    assert "社区矫正对象" in {k["name"] for k in kinds}
    res = client.post(f"/residents/people/{person['id']}/key-groups", json={"kind": "disabled"})
    assert res.status_code == 200 and res.json()["changed"] is True
    assert client.get(f"/residents/people/{person['id']}").json()["key_groups"] == ["残疾人"]
