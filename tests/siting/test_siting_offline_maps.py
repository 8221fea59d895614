"""Every HTML map the product writes opens offline: the demo's writers run into a temp folder, no page
links another host, and headless Chromium with the network cut draws each map (pixels of its layer colours).
The demo's saved results reach the map page's layers (cameras, planned facilities, coverage gaps)."""

import base64
import re
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gis_api.demo_steps import DEMO_STEPS
from siting import report

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]
LOADS = re.compile(r"""<(?:script|link|img|iframe|source)\b[^>]*(?:src|href)\s*=\s*["']((?:https?:)?//[^"']+)"""
                   r"""|url\(\s*["']?((?:https?:)?//[^"')]+)""", re.IGNORECASE)
ANY_URL = re.compile(r"https?://([A-Za-z0-9.-]+)")
# hosts named in Leaflet's own source comments / its attribution link: text, never fetched
INERT_HOSTS = {"www.w3.org", "leafletjs.com", "bugs.chromium.org", "bugzilla.mozilla.org"}
WRITERS = ("coverage", "siting")  # demo steps that write files (HTML maps, CSV, JSON)


def _hex(c: str) -> tuple[int, int, int]:
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


@pytest.fixture(scope="module")
def demo_output(pg_url, tmp_path_factory) -> Path:
    """The demo steps that write files, run as `make run` does, into a temp folder instead of var/."""
    from gis_api.cli import app

    out = tmp_path_factory.mktemp("demo-output")
    runner = CliRunner()
    for step in DEMO_STEPS:
        if step[0] not in WRITERS:
            continue
        args = [str(out / Path(a).name) if a.startswith("var/demo-output/") else a for a in step]
        r = runner.invoke(app, args)
        assert r.exit_code == 0, (step, r.output)
    return out


def test_demo_writes_maps_and_no_page_links_outside(demo_output):
    pages = sorted(demo_output.rglob("*.html"))
    assert {p.parent.name for p in pages} >= {"coverage", "cameras", "isochrones"}
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert not LOADS.findall(html), (page.name, LOADS.findall(html)[:3])
        hosts = set(ANY_URL.findall(html)) - INERT_HOSTS
        assert not hosts, (page.name, hosts)  # no tile host, no CDN


def test_demo_results_fill_the_map_page_layers(demo_output, engine, client):
    with engine.connect() as conn:
        cams = conn.execute(text("SELECT count(*) FROM camera WHERE status = 'planned'")).scalar_one()
        planned = conn.execute(text("SELECT count(*) FROM facility WHERE status = 'planned'")).scalar_one()
        gaps = conn.execute(text("SELECT count(*) FROM coverage_gap")).scalar_one()
    assert cams > 0 and planned >= 3 and gaps >= 1
    layers = {layer["id"]: layer for layer in client.get("/map/layers.json").json()["layers"]}
    for lid in ("camera", "facility_planned", "coverage_gap"):
        assert layers[lid]["web_default"], lid  # ticked: it has rows
        items = client.get(f"/collections/{lid}/items", params={"limit": 5}).json()
        assert items["features"], lid


def test_empty_layer_is_not_ticked(client, engine, rolled_back):
    from layers import presence, registry

    with engine.begin() as conn:
        layer = registry.get("coverage_gap")
        assert layer is not None
        had = presence.has_rows(conn, layer)
    assert isinstance(had, bool)
    # an empty table → not ticked (checked inside a transaction rolled back afterwards)
    conn = rolled_back
    conn.execute(text("DELETE FROM coverage_gap"))
    assert not presence.has_rows(conn, registry.get("coverage_gap"))
    assert "coverage_gap" not in presence.shown_by_default(conn, [registry.get("coverage_gap")])


COUNT = """async ([src, colours]) => {
  const img = new Image(); img.src = src; await img.decode();
  const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
  const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data, out = colours.map(() => 0);
  for (let i = 0; i < d.length; i += 4) {
    colours.forEach(([r, g, b], k) => {
      if (Math.abs(d[i] - r) < 40 && Math.abs(d[i + 1] - g) < 40 && Math.abs(d[i + 2] - b) < 40) out[k]++;
    });
  }
  return out;
}"""


@pytest.mark.browser
def test_every_demo_map_draws_with_the_network_cut(demo_output, output_dir):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    colours = {"coverage": [report.COVERED, report.UNCOVERED], "cameras": [report.SECTOR, report.BLIND],
               "isochrones": ["#1c7ed6"]}
    pages = sorted(demo_output.rglob("*.html"))
    shots = output_dir / "siting"
    shots.mkdir(parents=True, exist_ok=True)
    outside, errors = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            for html in pages:
                page = browser.new_page(viewport={"width": 900, "height": 700})

                def block(route):
                    outside.append(route.request.url)
                    route.abort()

                page.route(re.compile(r"^https?://"), block)  # as on a machine with no network
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(html.as_uri(), wait_until="load")
                page.wait_for_selector(".leaflet-overlay-pane path", timeout=30_000)
                png = shots / f"{html.parent.name}-{html.stem}.png"
                page.screenshot(path=str(png))
                # the screenshot's pixels of each layer colour (the layers are SVG paths)
                src = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
                found = page.evaluate(COUNT, [src, [list(_hex(c)) for c in colours[html.parent.name]]])
                assert all(n > 30 for n in found), (html.name, found)
                page.close()
        finally:
            browser.close()
    assert not outside, outside[:5]
    assert not errors, errors
