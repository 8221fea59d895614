"""The scan page for staff on a phone (390×844, headless Chromium): a 社区民警 logged in sees the people
and units at the scanned address (names in clear for the police role), adds a person with the form,
corrects them, and closes a wrong-plate report; a community worker of another community sees the
out-of-jurisdiction notice; the public sees the login box and no residents section. Screenshots in
test-output/web/."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from residents import validate as v

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PASSWORD = "m-Passw0rd-矩阵"  # the role accounts of tests/conftest.py role_headers
OTHER = "w-scan-other"
OTHER_PW = "Scan-Other-Pw-2026"


def _id(seq: int) -> str:
    body = f"310104197712{seq:02d}1{seq:02d}"
    return body + v.id_check_char(body)


@pytest.fixture
def scene(engine, jurisdictions, role_headers):
    """A person living at the test house number, an open plate report there, and a community account of the
    other community; all removed afterwards."""
    from gis_api import plates
    from gis_api.auth import roles as r
    from gis_api.auth import store as users
    from residents import service

    code = jurisdictions["address"]
    with engine.begin() as conn:
        p, _ = service.create_person(conn, {"name": "扫码测试", "id_number": _id(1), "phone": "13800001111"},
                                     "tester", code, date(2022, 1, 1))
        report = plates.add_report(conn, code, "damaged", "门牌褪色", "anonymous")
        conn.execute(text("DELETE FROM app_user WHERE name = :n"), {"n": OTHER})
        users.create_user(conn, OTHER, r.COMMUNITY, OTHER_PW, "他社区 测试")
        users.grant(conn, OTHER, "community", jurisdictions["other_community"])
    yield {"code": code, "person": p.id, "report": report["id"]}
    with engine.begin() as conn:
        ids = conn.execute(text("SELECT DISTINCT id FROM person WHERE id_number = ANY(:n)"),
                           {"n": [_id(1), _id(2)]}).scalars().all()
        for table, col in (("residence", "person_id"), ("person", "id")):
            conn.execute(text(f"DELETE FROM {table} WHERE {col} = ANY(:i)"), {"i": list(ids)})
        conn.execute(text("DELETE FROM plate_report WHERE id = :i"), {"i": report["id"]})
        conn.execute(text("DELETE FROM app_user WHERE name = :n"), {"n": OTHER})


def _open(browser, live_server, url, user=None, password=None):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if user:
        res = page.request.post(f"{live_server}/auth/login", data={"username": user, "password": password})
        assert res.ok, res.text()
    page.goto(url, wait_until="load")
    page.wait_for_function("window.scanPage && scanPage.ready", timeout=30_000)
    return ctx, page, errors


@pytest.mark.browser
def test_scan_page_for_staff_on_a_phone(live_server, app, engine, scene, output_dir):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from address_registry.plates import plate_check
    from gis_api.auth.secrets import load_or_create

    code = scene["code"]
    url = f"{live_server}/p/{code}?c={plate_check(code, load_or_create('plate-hmac', app.state.auth_settings))}"
    out = output_dir / "web"
    out.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            # the 社区民警 of the area
            ctx, page, errors = _open(browser, live_server, url, "m-police", PASSWORD)
            page.wait_for_function("scanPage.staff.ready", timeout=30_000)
            assert page.locator("#staff").is_visible() and not page.locator("#staff-denied").is_visible()
            assert not page.locator("#login").is_visible()
            people = page.locator("#people-list")
            assert "扫码测试" in people.inner_text()  # police read names in clear
            before = page.evaluate("scanPage.staff.people")
            assert before >= 1
            assert page.locator("#staff-report-list").inner_text().count("门牌损坏或缺失") >= 1
            page.screenshot(path=str(out / "scan-police.png"), full_page=True)

            # add a person with the form
            page.click("#person-add summary")
            page.fill("#pf-name", "表单新增")
            page.fill("#pf-id", _id(2))
            page.fill("#pf-phone", "13900002222")
            page.click("#pf-submit")
            page.wait_for_function(f"scanPage.staff.people === {before + 1}", timeout=15_000)
            assert "已保存" in page.locator("#pf-result").inner_text()
            # a bad ID number is refused with the API's message, nothing written
            page.fill("#pf-name", "坏号码")
            page.fill("#pf-id", _id(3)[:-1] + ("0" if _id(3)[-1] != "0" else "1"))
            page.click("#pf-submit")
            page.locator("#pf-result.bad").wait_for(timeout=15_000)
            assert "id_number" in page.locator("#pf-result").inner_text()

            # correct the new person's phone
            item = page.locator("#people-list li", has_text="表单新增")
            item.locator("button.act").click()
            item.locator("input[name=phone]").fill("13900003333")
            item.locator("button.primary").click()
            page.wait_for_function("document.querySelector('#people-list').textContent.includes('13900003333')",
                                   timeout=15_000)
            with engine.connect() as conn:
                assert conn.execute(text("SELECT phone, version FROM person WHERE id_number = :n AND valid_to IS NULL"),
                                    {"n": _id(2)}).one() == ("13900003333", 2)

            # close the wrong-plate report
            open_before = page.evaluate("scanPage.staff.reports")  # earlier tests may have filed reports too
            rep = page.locator("#staff-report-list li", has_text="门牌褪色")
            rep.locator("input[name=reason]").fill("已更换新门牌")
            rep.locator("button.primary").click()
            page.wait_for_function(f"scanPage.staff.reports === {open_before - 1}", timeout=15_000)
            with engine.connect() as conn:
                assert conn.execute(text("SELECT state, state_reason FROM plate_report WHERE id = :i"),
                                    {"i": scene["report"]}).one() == ("corrected", "已更换新门牌")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.screenshot(path=str(out / "scan-police-after.png"), full_page=True)
            assert not errors, errors
            ctx.close()

            # a community worker of another community: the notice, no residents
            ctx, page, errors = _open(browser, live_server, url, OTHER, OTHER_PW)
            page.wait_for_function("scanPage.staff.ready", timeout=30_000)
            assert page.evaluate("scanPage.staff.denied") is True
            assert page.locator("#staff-denied").is_visible() and not page.locator("#people-list").is_visible()
            assert "扫码测试" not in page.content()
            page.screenshot(path=str(out / "scan-outside.png"), full_page=True)
            assert not errors, errors
            ctx.close()

            # the public: the login box, no residents section
            ctx, page, errors = _open(browser, live_server, url)
            assert page.locator("#login").is_visible() and not page.locator("#staff").is_visible()
            assert "扫码测试" not in page.content()
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.screenshot(path=str(out / "scan-public.png"), full_page=True)
            assert not errors, errors
            ctx.close()
        finally:
            browser.close()
