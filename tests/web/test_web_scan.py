"""A scanned plate on a phone (390×844, headless Chromium): the public sees the standard address and whom
to contact (phone masked); a forged plate shows the could-not-verify page."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


@pytest.mark.browser
def test_scan_page_on_a_phone(live_server, app, jurisdictions, role_headers, output_dir):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from address_registry.plates import plate_check
    from gis_api.auth.secrets import load_or_create

    code = jurisdictions["address"]
    check = plate_check(code, load_or_create("plate-hmac", app.state.auth_settings))
    out = output_dir / "web"
    out.mkdir(exist_ok=True)
    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda req: None if req.url.startswith(live_server) else outside.append(req.url))
            page.goto(f"{live_server}/p/{code}?c={check}", wait_until="load")
            page.wait_for_function("window.scanPage && scanPage.ready", timeout=30_000)
            assert page.evaluate("scanPage.error") is None
            data = page.evaluate("scanPage.data")
            assert page.locator("#address").is_visible()
            assert page.locator("#code").inner_text() == code
            assert data["formatted"] in page.locator("#formatted").inner_text()
            contacts = page.locator("#contacts")
            assert contacts.is_visible() and "联系人" in contacts.inner_text()
            assert "社区民警" in contacts.inner_text() and "139****5678" in contacts.inner_text()
            assert page.locator("#report-btn").is_visible()
            # nothing wider than the phone
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.screenshot(path=str(out / "scan.png"), full_page=True)

            forged = ("A" if check[0] != "A" else "B") + check[1:]
            res = page.goto(f"{live_server}/p/{code}?c={forged}", wait_until="load")
            assert res is not None and res.status == 400
            assert "门牌无法核验" in page.locator("#error").inner_text()
        finally:
            browser.close()
    assert not errors, errors
    assert not outside, outside
