"""The web map at / : offline assets, and a real headless Chromium drawing the demo area."""

import re
from pathlib import Path

import pytest
from sqlalchemy import text

from gis_api.settings import project_root

CHROMIUM = Path("/usr/bin/chromium")
STATIC = project_root() / "gis_api" / "static"
BUILDING_FILL = (0xD9, 0xCB, 0xB3)  # registry style of "building"


def test_root_negotiates_html_for_browsers_and_json_for_clients(client):
    html = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "/static/vendor/leaflet/leaflet.js" in html.text and "社区 GIS" in html.text
    assert client.get("/?f=html").headers["content-type"].startswith("text/html")
    assert client.get("/").json()["links"]  # no Accept → the OGC landing JSON
    assert client.get("/", headers={"Accept": "application/json"}).json()["links"]


def test_page_uses_no_outside_address():
    for name in ("index.html", "app.js", "app.css", "asof.js"):
        src = (STATIC / name).read_text(encoding="utf-8")
        urls = re.findall(r"""(?:src|href)\s*=\s*["'](https?:)?//""", src)
        assert not urls, f"{name} links to another host"


def test_vendor_assets_served_locally(client):
    for path in ("/static/vendor/leaflet/leaflet.js", "/static/vendor/leaflet/leaflet.css",
                 "/static/vendor/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js", "/static/app.js"):
        r = client.get(path)
        assert r.status_code == 200, f"{path} missing: run `bash scripts/install_assets.sh` (make assets)"


def test_map_layers_json_lists_styles_and_tile_urls(client):
    resp = client.get("/map/layers.json")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    ids = {layer["id"] for layer in body["layers"]}
    assert {"building", "road", "admin_district", "poi"} <= ids
    assert {"building", "road", "water"} <= set(body["basemap"]["layers"])
    for layer in body["layers"]:
        assert "{z}/{x}/{y}" in layer["tiles"] and layer["style"]["leaflet"]["color"]


BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]

COUNT_PIXELS = """([r, g, b]) => {
  let drawn = 0, building = 0, canvases = 0;
  for (const c of document.querySelectorAll('#map canvas')) {
    if (!c.width || !c.height) continue;
    canvases++;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] > 0) drawn++;
      if (Math.abs(d[i] - r) < 12 && Math.abs(d[i + 1] - g) < 12 && Math.abs(d[i + 2] - b) < 12 && d[i + 3] > 200) building++;
    }
  }
  return {drawn, building, canvases};
}"""


@pytest.mark.browser
def test_headless_chromium_draws_the_demo_area_and_opens_a_popup(live_server, engine, output_dir):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with engine.connect() as conn:
        fid, name, lon, lat = conn.execute(text(
            "SELECT id, name, ST_X(p), ST_Y(p) FROM (SELECT id, name, ST_PointOnSurface(geom) AS p, area_m2 "
            "FROM building WHERE name IS NOT NULL AND area_m2 > 3000) b "
            "WHERE NOT EXISTS (SELECT 1 FROM poi WHERE ST_DWithin(poi.geom::geography, b.p::geography, 40)) "
            "AND NOT EXISTS (SELECT 1 FROM road WHERE ST_DWithin(road.geom::geography, b.p::geography, 15)) "
            "AND NOT EXISTS (SELECT 1 FROM railway r WHERE ST_DWithin(r.geom::geography, b.p::geography, 15)) "
            "ORDER BY area_m2 DESC LIMIT 1")).one()

    out = output_dir / "web"
    out.mkdir(exist_ok=True)
    outside, errors = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("request", lambda req: None if req.url.startswith(live_server) or req.url.startswith("data:")
                    else outside.append(req.url))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(live_server + "/", wait_until="load")
            page.wait_for_function("window.shequMap && shequMap.ready && shequMap.tilesLoaded >= 6", timeout=60_000)
            page.wait_for_load_state("networkidle")
            pixels = page.evaluate(COUNT_PIXELS, list(BUILDING_FILL))
            page.screenshot(path=str(out / "map.png"))
            assert pixels["canvases"] > 0 and pixels["drawn"] > 50_000, pixels
            assert pixels["building"] > 2_000, pixels  # building footprints are painted
            assert page.evaluate("shequMap.tileErrors") == 0

            # layer switcher: hide the point layers, then click a building for its popup
            point_layers = page.evaluate("shequMap.meta.layers.filter(l => l.geometry_type.includes('Point'))"
                                         ".map(l => l.title)")
            assert "兴趣点" in point_layers
            for title in point_layers:
                page.get_by_label(title, exact=True).uncheck()
            page.evaluate(f"shequMap.map.setView([{lat}, {lon}], 18, {{animate: false}})")
            page.wait_for_load_state("networkidle")
            pt = page.evaluate(f"(() => {{ const p = shequMap.map.latLngToContainerPoint([{lat}, {lon}]); "
                               "const r = document.getElementById('map').getBoundingClientRect(); "
                               "return [r.left + p.x, r.top + p.y]; })()")
            page.mouse.click(pt[0], pt[1])
            popup = page.locator(".leaflet-popup-content")
            popup.wait_for(timeout=20_000)
            assert "建筑" in popup.inner_text() and name in popup.inner_text()
            assert page.evaluate("shequMap.lastPopup.id") == fid
            page.wait_for_timeout(400)  # the popup fades in
            page.screenshot(path=str(out / "map_popup.png"))

            # search box: the geocoder's answers as a list (a click zooms there), or a friendly message
            query = "中山东一路1号"
            answer = page.evaluate("q => fetch('/geocode?q=' + encodeURIComponent(q))"
                                   ".then(r => r.ok ? r.json() : null).catch(() => null)", query)
            page.fill("#search-input", query)
            page.click("#search button")
            if answer and answer.get("results"):
                first = page.locator("#search-results li").first
                first.wait_for(timeout=20_000)
                first.click()
                center = page.evaluate("shequMap.map.getCenter()")
                assert center["lng"] == pytest.approx(answer["results"][0]["lon"], abs=1e-5)
                assert page.evaluate("shequMap.map.getZoom()") == 18
            else:
                msg = page.locator("#message")
                msg.wait_for(state="visible", timeout=20_000)
                assert "地址" in msg.inner_text() or "搜索" in msg.inner_text()
        finally:
            browser.close()
    assert not outside, f"the page reached outside the server: {outside[:5]}"
    assert not errors, errors
    assert (out / "map.png").stat().st_size > 20_000
