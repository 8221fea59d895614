"""The staff side of wrong-plate reports: listed within jurisdiction (the address's community, grid, police
area…), closed or dismissed (with a reason) and reopened, each change audited; bad input is a clear 4xx."""

from __future__ import annotations

import pytest
from sqlalchemy import text


@pytest.fixture
def reports(engine, jurisdictions):
    from gis_api import plates

    with engine.begin() as conn:
        mine = plates.add_report(conn, jurisdictions["address"], "damaged", "字迹不清", "anonymous")
        other = plates.add_report(conn, jurisdictions["other_address"], "wrong_place", None, "anonymous")
    yield mine["id"], other["id"]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM plate_report WHERE id = ANY(:i)"), {"i": [mine["id"], other["id"]]})


def test_list_within_jurisdiction(anon_client, role_headers, reports, jurisdictions):
    mine, other = reports
    seen = anon_client.get("/plate-reports", params={"state": "open"}, headers=role_headers["community"])
    assert seen.status_code == 200
    ids = {r["id"] for r in seen.json()["reports"]}
    assert mine in ids and other not in ids
    admin = {r["id"] for r in anon_client.get("/plate-reports", headers=role_headers["admin"]).json()["reports"]}
    assert {mine, other} <= admin
    one = anon_client.get("/plate-reports", params={"address_code": jurisdictions["address"]},
                          headers=role_headers["police"]).json()["reports"]
    assert [r["id"] for r in one if r["id"] == mine] == [mine] and one[0]["kind_title"]
    assert anon_client.get("/plate-reports").status_code == 401
    assert anon_client.get("/plate-reports", headers=role_headers["planner"]).status_code == 403


def test_close_dismiss_reopen(anon_client, role_headers, reports, engine):
    mine, other = reports
    h = role_headers["community"]
    url = f"/plate-reports/{mine}/state"
    assert anon_client.post(url, json={"state": "dismissed"}, headers=h).status_code == 422
    assert anon_client.post(url, json={"state": "gone"}, headers=h).status_code == 422
    ok = anon_client.post(url, json={"state": "corrected", "reason": "已更换"}, headers=h)
    assert ok.status_code == 200 and ok.json()["state"] == "corrected" and ok.json()["state_reason"] == "已更换"
    assert anon_client.post(url, json={"state": "corrected"}, headers=h).status_code == 409
    assert anon_client.post(url, json={"state": "open"}, headers=h).json()["state"] == "open"
    # outside the jurisdiction: 403; unknown report: 404 for the admin
    out = anon_client.post(f"/plate-reports/{other}/state", json={"state": "corrected"}, headers=h)
    assert out.status_code == 403
    assert anon_client.post("/plate-reports/99999999/state", json={"state": "corrected"},
                            headers=role_headers["admin"]).status_code == 404
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'plate.report_state' AND "
                              ":r = ANY(record_ids)"), {"r": f"plate_report:{mine}"}).scalar()
    assert n == 2
