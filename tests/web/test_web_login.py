"""The map page logs in and out in headless Chromium: anonymous visitors see the public layers only; a
grid manager who logs in (session cookie) sees the internal ones (cameras, micro-grids); logging out
(CSRF-checked) brings the public view back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

PASSWORD = "Web-Login-Pw-2026"


@pytest.fixture
def web_account(engine):
    from gis_api.auth import roles as r
    from gis_api.auth import store

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE name = 'w-grid'"))
        store.create_user(conn, "w-grid", r.GRID_MANAGER, PASSWORD, "网格员 测试")
    yield "w-grid"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE name = 'w-grid'"))


@pytest.mark.browser
def test_map_page_logs_in_and_out(live_server, web_account, output_dir):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    out = output_dir / "web"
    out.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(live_server + "/", wait_until="load")
            page.wait_for_function("window.shequMap && shequMap.ready", timeout=60_000)
            public = page.evaluate("shequMap.meta.layers.map(l => l.id)")
            assert "building" in public and "camera" not in public and "microgrid" not in public
            assert page.locator("#login-btn").is_visible()

            page.click("#login-btn")
            page.fill("#login-user", web_account)
            page.fill("#login-password", "wrong-password-1")
            page.click("#login-submit")
            page.locator("#login-error").wait_for(state="visible", timeout=10_000)
            assert "invalid" in page.locator("#login-error").inner_text().lower() or \
                "错误" in page.locator("#login-error").inner_text()

            page.fill("#login-password", PASSWORD)
            with page.expect_navigation(timeout=30_000):
                page.click("#login-submit")
            page.wait_for_function("window.shequMap && shequMap.ready && document.body.dataset.user", timeout=60_000)
            assert "网格员 测试" in page.locator("#who").inner_text()
            staff = page.evaluate("shequMap.meta.layers.map(l => l.id)")
            assert {"camera", "microgrid"} <= set(staff)
            cookies = {c["name"]: c for c in page.context.cookies()}
            assert cookies["shequ_session"]["httpOnly"] and cookies["shequ_session"]["sameSite"] == "Lax"
            assert not page.evaluate("document.cookie.includes('shequ_session')")  # not readable by scripts
            page.screenshot(path=str(out / "map_logged_in.png"))

            with page.expect_navigation(timeout=30_000):
                page.click("#logout-btn")
            page.wait_for_function("window.shequMap && shequMap.ready", timeout=60_000)
            assert page.locator("#login-btn").is_visible()
            assert "camera" not in page.evaluate("shequMap.meta.layers.map(l => l.id)")
        finally:
            browser.close()
    assert not errors, errors
