"""Leaflet Control Geocoder's own Nominatim provider (npm, served locally) on /nominatim/ in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ADDRESS = "上海市浦东新区世纪大道1号"


@pytest.fixture(scope="module")
def registry(engine):
    from address_registry.service import build_registry

    with engine.begin() as conn:
        return build_registry(conn)


@pytest.mark.browser
def test_leaflet_control_geocoder_finds_and_marks_an_address(live_server, registry, client, output_dir):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    best = client.get("/geocode", params={"q": ADDRESS}).json()["results"][0]
    outside, errors = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 760})
            page.on("request", lambda req: None if req.url.startswith((live_server, "data:"))
                    else outside.append(req.url))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("response", lambda resp: errors.append(f"{resp.status} {resp.url}")
                    if resp.status >= 400 and not resp.url.endswith("/favicon.ico") else None)
            page.goto(live_server + "/static/geocoder.html", wait_until="load")
            box = page.locator(".leaflet-control-geocoder-form input")
            box.fill(ADDRESS)
            box.press("Enter")
            page.wait_for_function("document.querySelectorAll('.leaflet-control-geocoder-alternatives li').length"
                                   " || shequGeocoder.selected", timeout=30_000)
            first = page.locator(".leaflet-control-geocoder-alternatives li").first
            if first.count():  # several results: the list, click the first
                assert "世纪大道" in first.inner_text()
                first.dispatch_event("mousedown")
            page.wait_for_function("shequGeocoder.selected !== null", timeout=10_000)
            chosen = page.evaluate("shequGeocoder.selected")
            popup = page.locator(".leaflet-popup-content")
            popup.wait_for(timeout=10_000)
            out = output_dir / "web"
            out.mkdir(exist_ok=True)
            page.screenshot(path=str(out / "leaflet_geocoder.png"))
            center = page.evaluate("shequGeocoder.map.getCenter()")
        finally:
            browser.close()
    assert not outside, f"the page reached outside the server: {outside[:5]}"
    assert not errors, errors
    assert chosen["shequ:address_code"] == best["address_code"]
    assert "世纪大道" in popup_text(chosen)
    assert center["lng"] == pytest.approx(best["lon"], abs=1e-3) and center["lat"] == pytest.approx(best["lat"], abs=1e-3)


def popup_text(place: dict) -> str:
    """The address parts the control's default template shows (road, house number…)."""
    addr = place["address"]
    return f"{addr.get('road', '')}{addr.get('house_number', '')}"
