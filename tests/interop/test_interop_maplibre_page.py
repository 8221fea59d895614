"""The MapLibre GL JS page draws the server's style and tiles in headless Chromium (WebGL on SwiftShader),
checked by its pixels; nothing is loaded from another host."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
BUILDING_FILL = (0xD9, 0xCB, 0xB3)
BACKGROUND = (0xF2, 0xEF, 0xE9)

COUNT = """([fill, bg]) => {
  const gl = shequMapLibre.map.getCanvas();
  const c = document.createElement('canvas'); c.width = gl.width; c.height = gl.height;
  const ctx = c.getContext('2d'); ctx.drawImage(gl, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  const near = (i, [r, g, b]) => Math.abs(d[i] - r) < 10 && Math.abs(d[i+1] - g) < 10 && Math.abs(d[i+2] - b) < 10;
  let building = 0, background = 0, other = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (near(i, fill)) building++; else if (near(i, bg)) background++; else other++;
  }
  return {building, background, other, total: d.length / 4};
}"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_maplibre_page_draws_buildings_and_roads(live_server, output_dir, width):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    out = output_dir / "web"
    out.mkdir(exist_ok=True)
    outside, errors = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 800})
            page.on("request", lambda req: None if req.url.startswith((live_server, "data:", "blob:"))
                    else outside.append(req.url))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(live_server + "/static/maplibre.html", wait_until="load")
            page.wait_for_function("window.shequMapLibre && (shequMapLibre.ready || shequMapLibre.errors.length)",
                                   timeout=90_000)
            assert page.evaluate("shequMapLibre.errors") == []
            pixels = page.evaluate(COUNT, [list(BUILDING_FILL), list(BACKGROUND)])
            page.screenshot(path=str(out / f"maplibre_{width}.png"))
        finally:
            browser.close()
    assert not outside, f"the page reached outside the server: {outside[:5]}"
    assert not errors, errors
    assert pixels["building"] > pixels["total"] * 0.02, pixels  # building footprints are painted
    assert pixels["other"] > pixels["total"] * 0.02, pixels  # and roads, water, points…
    assert pixels["background"] < pixels["total"] * 0.95, pixels
