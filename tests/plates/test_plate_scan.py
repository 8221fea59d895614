"""The plate scan on the demo: the JSON a scan reads (masked for the public, clear and audited for staff
in the jurisdiction), the HTML page (local assets only, 400 / 404 pages), the QR's signed link and the
"wrong plate" report (a stored task and an audit entry)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from address_registry.codes import with_check
from address_registry.plates import plate_check, plate_url

STAFF_NAME = "测试网格员王小明"


@pytest.fixture(scope="module")
def key(app, client):
    from gis_api.auth.secrets import load_or_create

    return load_or_create("plate-hmac", app.state.auth_settings)


@pytest.fixture(scope="module")
def plate(jurisdictions, key, role_headers):
    """A real house-number address of the first community (inside the test police area) and its check."""
    code = jurisdictions["address"]
    return code, plate_check(code, key)


@pytest.fixture(scope="module")
def grid_staff(engine, plate):
    """A current 兼职网格员 on the grid covering the plate's address (committed; removed afterwards)."""
    from address_registry import store
    from grid_builder.service import assign_grid_staff
    from grid_builder.store import locate

    with engine.connect() as conn:
        rec = store.current(conn, plate[0])
        grid = locate(conn, rec.lon, rec.lat)["grid"]
    assert grid is not None, "the demo address lies in no grid"
    out = assign_grid_staff(engine, grid["code"], STAFF_NAME, "兼职网格员")
    yield grid["code"]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM grid_staff WHERE id = :i"), {"i": out["assignment"]["id"]})
        if out.get("closed"):
            conn.execute(text("UPDATE grid_staff SET valid_to = NULL WHERE id = :i"), {"i": out["closed"]["id"]})


def _audit(engine, action: str, code: str, since: int) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, actor, actor_role, action, record_ids, detail FROM audit_log "
                                 "WHERE id > :s AND action = :a AND :c = ANY(record_ids) ORDER BY id"),
                            {"s": since, "a": action, "c": code}).mappings().all()
    return [dict(r) for r in rows]


def _last_audit_id(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()


def test_public_sees_address_and_masked_contacts(anon_client, engine, plate, grid_staff):
    code, check = plate
    since = _last_audit_id(engine)
    res = anon_client.get(f"/plates/{code}", params={"c": check})
    assert res.status_code == 200, res.text
    d = res.json()
    assert d["code"] == code and d["formatted"] and d["level"] == "house_number" and d["level_title"] == "门牌号"
    assert d["grid"]["code"] == grid_staff and d["community"] is not None
    staff = [s for s in d["contacts"]["grid_staff"] if s["grid_code"] == grid_staff and s["role"] == "兼职网格员"]
    assert staff and staff[0]["person_ref"] != STAFF_NAME and "*" in staff[0]["person_ref"]
    police = [p for p in d["contacts"]["police"] if p["police_area"] == "M-PA-1"]
    assert police and police[0]["phone"] == "139****5678"  # the test police account's phone, masked
    assert "13912345678" not in res.text and STAFF_NAME not in res.text
    assert d["contacts"]["masked"] is True and d["user"] is None
    assert res.headers["cache-control"] == "no-store"
    assert not _audit(engine, "plate.contacts_read", code, since)  # nothing read in clear


def test_admin_and_police_see_contacts_in_clear_audited(client, anon_client, role_headers, engine, plate, grid_staff):
    code, check = plate
    since = _last_audit_id(engine)
    res = client.get(f"/plates/{code}", params={"c": check})
    assert res.status_code == 200, res.text
    d = res.json()
    assert any(s["person_ref"] == STAFF_NAME for s in d["contacts"]["grid_staff"])
    assert any(p["phone"] == "13912345678" for p in d["contacts"]["police"] if p["police_area"] == "M-PA-1")
    entries = _audit(engine, "plate.contacts_read", code, since)
    assert len(entries) == 1 and entries[0]["actor_role"] == "admin"
    assert any("contact_phone" in f for f in entries[0]["detail"]["clear_fields"])

    # the 社区民警 granted the police area over the address: in clear, audited
    res = anon_client.get(f"/plates/{code}", params={"c": check}, headers=role_headers["police"])
    assert res.status_code == 200
    assert any(p["phone"] == "13912345678" for p in res.json()["contacts"]["police"])
    assert [e["actor"] for e in _audit(engine, "plate.contacts_read", code, since)] == ["m-client-admin", "m-police"]

    # a grid manager may not read the phones in clear (classification): masked, nothing audited
    res = anon_client.get(f"/plates/{code}", params={"c": check}, headers=role_headers["grid_manager"])
    assert res.status_code == 200 and "13912345678" not in res.text
    assert len(_audit(engine, "plate.contacts_read", code, since)) == 2


def test_forged_or_mistyped_plate_is_refused(anon_client, plate, key):
    code, check = plate
    forged = ("A" if check[0] != "A" else "B") + check[1:]
    for params in ({"c": forged}, {}, {"c": "x" * 16}):
        res = anon_client.get(f"/plates/{code}", params=params)
        assert res.status_code == 400 and res.json()["error"] == "plate_unverified", res.text
    mistyped = code[:-2] + str((int(code[-2]) + 1) % 10) + code[-1]
    assert anon_client.get(f"/plates/{mistyped}", params={"c": check}).status_code == 400
    # a well-formed code with its own valid check that is not in the registry: 404
    unknown = with_check(code[:-5] + "9999")
    assert anon_client.get(f"/plates/{unknown}", params={"c": plate_check(unknown, key)}).status_code == 404


def test_scan_page_is_html_with_local_assets(anon_client, plate, key):
    code, check = plate
    res = anon_client.get(f"/p/{code}", params={"c": check})
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    assert 'lang="zh-CN"' in res.text and "/static/scan/scan.js" in res.text
    pages = [res.text]
    for asset in ("/static/scan/scan.js", "/static/scan/scan.css"):
        got = anon_client.get(asset)
        assert got.status_code == 200
        pages.append(got.text)
    for page in pages:  # no outside URL: everything comes from this server
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page, re.I), page[:200]


def test_scan_page_errors_are_pages(anon_client, plate, key):
    code, check = plate
    forged = ("A" if check[0] != "A" else "B") + check[1:]
    res = anon_client.get(f"/p/{code}", params={"c": forged})
    assert res.status_code == 400 and res.headers["content-type"].startswith("text/html")
    assert "门牌无法核验" in res.text and "Traceback" not in res.text and not res.text.lstrip().startswith("{")
    unknown = with_check(code[:-5] + "9999")
    res = anon_client.get(f"/p/{unknown}", params={"c": plate_check(unknown, key)})
    assert res.status_code == 404 and "不存在或已注销" in res.text
    assert anon_client.get("/p/not-a-code", params={"c": check}).status_code == 400


def test_qr_svg_holds_the_signed_link(client, app, plate, key):
    from address_registry import store
    from address_registry.qr import plate_svg

    code, _ = plate
    res = client.get(f"/addresses/{code}/qr.svg")
    assert res.status_code == 200
    with app.state.engine.connect() as conn:
        rec = store.current(conn, code)
    base = app.state.settings.public_base_url
    assert res.text == plate_svg(rec, base, key=key)
    assert plate_url(base, code, key).endswith(f"/p/{code}?c={plate_check(code, key)}")


def test_report_a_wrong_plate(anon_client, engine, plate):
    code, check = plate
    since = _last_audit_id(engine)
    res = anon_client.post(f"/plates/{code}/reports",
                           json={"c": check, "kind": "wrong_address", "note": "门牌号与实际不符"})
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["state"] == "open" and body["address_code"] == code and body["reported_by"] == "anonymous"
    with engine.connect() as conn:
        row = conn.execute(text("SELECT address_code, kind, note, state FROM plate_report WHERE id = :i"),
                           {"i": body["id"]}).one()
    assert tuple(row) == (code, "wrong_address", "门牌号与实际不符", "open")
    entries = _audit(engine, "plate.report", code, since)
    assert len(entries) == 1 and f"plate_report:{body['id']}" in entries[0]["record_ids"]
    # a forged check files nothing; an unknown kind is refused
    forged = ("A" if check[0] != "A" else "B") + check[1:]
    assert anon_client.post(f"/plates/{code}/reports", json={"c": forged}).status_code == 400
    assert anon_client.post(f"/plates/{code}/reports", json={"c": check, "kind": "x"}).status_code == 422
    assert anon_client.post(f"/plates/{code}/reports", json={"c": check, "note": "x" * 501}).status_code == 422
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM plate_report WHERE address_code = :c AND id > :i"),
                            {"c": code, "i": body["id"]}).scalar() == 0
