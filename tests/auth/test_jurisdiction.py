"""Jurisdiction and data protection on the real routes, with real accounts (one per role, `role_headers`)
granted real codes of the demo (`jurisdictions`): who may change what, what the public sees, and that
every write lands in the audit chain with the caller as ``changed_by``."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gis_api.auth import audit

STAFF = {"person_ref": "person:m-juris-1", "role": "网格员"}


@pytest.fixture
def cleanup_writes(engine):
    yield
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM grid_staff WHERE person_ref LIKE 'person:m-juris-%'"))
        conn.execute(text("DELETE FROM address_alias WHERE alias LIKE '矩阵别名%'"))


def _audit_rows(engine, action: str, since_id: int) -> list[dict]:
    with engine.connect() as conn:
        return [dict(x) for x in conn.execute(text(
            "SELECT id, actor, actor_role, action, record_ids, before, after, request_id, endpoint FROM audit_log "
            "WHERE action = :a AND id > :i ORDER BY id"), {"a": action, "i": since_id}).mappings()]


def _last_audit_id(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()


def _room(engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT code, full_text, community_code FROM standard_address WHERE level = 'room' "
            "AND valid_to IS NULL AND status = 'active' ORDER BY code LIMIT 1")).mappings().one())


def test_grid_manager_changes_only_the_staff_of_their_grid(anon_client, role_headers, jurisdictions, engine,
                                                            cleanup_writes):
    h = role_headers["grid_manager"]
    own, other = jurisdictions["grid"], jurisdictions["other_grid"]
    start = _last_audit_id(engine)
    denied = anon_client.put(f"/grids/{other}/staff", json=STAFF, headers=h)
    assert denied.status_code == 403 and denied.json()["error"] == "outside_jurisdiction", denied.text
    assert other not in denied.text  # no hint of the record
    listed = anon_client.get(f"/grids/{other}/staff", headers=h).json()["staff"]
    assert all(s["person_ref"] != STAFF["person_ref"] for s in listed)

    etag = anon_client.get(f"/grids/{own}/staff", headers=h).headers["etag"]
    ok = anon_client.put(f"/grids/{own}/staff", json=STAFF, headers={**h, "If-Match": etag})
    assert ok.status_code == 200, ok.text
    stale = anon_client.put(f"/grids/{own}/staff", json={**STAFF, "person_ref": "person:m-juris-2"},
                            headers={**h, "If-Match": etag})
    assert stale.status_code == 412 and stale.json()["error"] == "stale_version"
    rows = _audit_rows(engine, "grid.staff", start)
    assert len(rows) == 1  # the denied and the stale attempt wrote nothing
    assert rows[0]["actor"] == "m-grid_manager" and rows[0]["actor_role"] == "grid_manager"
    assert rows[0]["record_ids"] == [own] and rows[0]["request_id"]
    assert {"person_ref": STAFF["person_ref"], "role": STAFF["role"]} in rows[0]["after"]
    assert {"person_ref": STAFF["person_ref"], "role": STAFF["role"]} not in (rows[0]["before"] or [])
    # the community's staff may appoint in any grid of their community, not in another community's
    other_comm = anon_client.put(f"/grids/{other}/staff", json=STAFF, headers=role_headers["community"])
    assert other_comm.status_code == 403


def test_community_staff_edit_only_addresses_of_their_community(anon_client, role_headers, jurisdictions,
                                                                 engine, cleanup_writes):
    h = role_headers["community"]
    own, other = jurisdictions["address"], jurisdictions["other_address"]
    before = anon_client.get(f"/addresses/{other}").json()
    start = _last_audit_id(engine)
    for res in (
        anon_client.post(f"/addresses/{other}/retire", json={"reason": "越权测试"}, headers=h),
        anon_client.post(f"/addresses/{other}/aliases", json={"alias": "矩阵别名外"}, headers=h),
        anon_client.patch(f"/addresses/{other}", json={"reason": "越权测试", "components": {}}, headers=h),
    ):
        assert res.status_code == 403 and res.json()["error"] == "outside_jurisdiction", res.text
    assert anon_client.get(f"/addresses/{other}").json()["version"] == before["version"]
    # the public and a planner may not write at all
    assert anon_client.post(f"/addresses/{own}/aliases", json={"alias": "矩阵别名公"}).status_code == 401
    assert anon_client.post(f"/addresses/{own}/aliases", json={"alias": "矩阵别名规"},
                            headers=role_headers["planner"]).status_code == 403

    etag = anon_client.get(f"/addresses/{own}", headers=h).headers["etag"]
    ok = anon_client.post(f"/addresses/{own}/aliases", json={"alias": "矩阵别名内", "changed_by": "冒名者"},
                          headers={**h, "If-Match": etag})
    assert ok.status_code == 201, ok.text
    with engine.connect() as conn:
        who = conn.execute(text("SELECT changed_by FROM address_alias WHERE alias = '矩阵别名内'")).scalar_one()
    assert who == "m-community"  # from the login, never from the body
    rows = _audit_rows(engine, "address.alias", start)
    assert [r["actor"] for r in rows] == ["m-community"] and rows[0]["record_ids"] == [own]
    stale = anon_client.patch(f"/addresses/{own}", json={"reason": "旧版本", "components": {}},
                              headers={**h, "If-Match": '"0"'})
    assert stale.status_code == 412


def test_public_sees_no_room_level_or_personal_data(anon_client, role_headers, jurisdictions, engine):
    room = _room(engine)
    assert anon_client.get(f"/addresses/{room['code']}").status_code == 401
    assert anon_client.get(f"/addresses/{room['code']}/history").status_code == 401
    assert anon_client.get("/addresses", params={"level": "room"}).status_code == 401
    listed = anon_client.get("/addresses", params={"community_code": jurisdictions["community"],
                                                   "limit": 1000}).json()["addresses"]
    assert listed and not {a["level"] for a in listed} & {"unit", "floor", "room"}
    staff_rooms = anon_client.get("/addresses", params={"level": "room"}, headers=role_headers["community"]).json()
    assert staff_rooms["total"] > 0
    assert anon_client.get(f"/addresses/{room['code']}", headers=role_headers["police"]).status_code == 200

    public_hits = anon_client.get("/geocode", params={"q": room["full_text"], "limit": 20}).json()["results"]
    assert public_hits and not {x.get("level") for x in public_hits} & {"unit", "floor", "room"}
    assert room["full_text"].startswith(public_hits[0]["formatted"]) or public_hits[0]["level"] == "building"
    staff_hits = anon_client.get("/geocode", params={"q": room["full_text"], "limit": 20},
                                 headers=role_headers["grid_manager"]).json()["results"]
    assert staff_hits[0]["address_code"] == room["code"]

    grid = jurisdictions["grid"]
    assert "staff" not in anon_client.get(f"/grids/{grid}/stats").json()
    assert "staff" in anon_client.get(f"/grids/{grid}/stats", headers=role_headers["grid_manager"]).json()
    assert anon_client.get(f"/grids/{grid}/staff").status_code == 401
    me = anon_client.get("/auth/me", headers=role_headers["community"]).json()
    assert me["contact"]["phone"] == "139****5678"


def test_every_write_lands_in_an_intact_audit_chain(engine):
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
        assert audit.verify(conn) is None
    assert n > 0


def test_admin_imports_police_areas_through_the_api(anon_client, role_headers, engine, jurisdictions):
    with engine.connect() as conn:
        ring = conn.execute(text(
            "SELECT ST_AsGeoJSON(ST_Buffer(ST_PointOnSurface(geom)::geography, 200)::geometry) FROM admin_unit "
            "WHERE code = :c"), {"c": jurisdictions["community"]}).scalar_one()
    import json

    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "M-PA-API", "name": "测试派出所"}, "geometry": json.loads(ring)}]}
    try:
        assert anon_client.post("/police-areas", json=fc, headers=role_headers["police"]).status_code == 403
        assert anon_client.post("/police-areas", json=fc).status_code == 401
        ok = anon_client.post("/police-areas", json=fc, headers=role_headers["admin"])
        assert ok.status_code == 200 and ok.json() == {"created": 1, "updated": 0}
        listed = anon_client.get("/police-areas", headers=role_headers["police"]).json()["police_areas"]
        assert "M-PA-API" in {a["code"] for a in listed}
        bad = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "M-PA-X"},
                                                          "geometry": {"type": "Point", "coordinates": [0, 0]}}]}
        assert anon_client.post("/police-areas", json=bad, headers=role_headers["admin"]).status_code == 422
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM police_area WHERE code IN ('M-PA-API', 'M-PA-X')"))
