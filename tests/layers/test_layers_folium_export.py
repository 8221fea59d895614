"""`shequ map export`: a standalone HTML map that opens offline (checked in headless Chromium)."""

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def exported(pg_url, output_dir) -> Path:
    from gis_api.cli import app

    out = output_dir / "layers" / "export.html"
    extra = output_dir / "layers" / "result.geojson"
    extra.parent.mkdir(parents=True, exist_ok=True)
    extra.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"名称": "分析结果示例"},
         "geometry": {"type": "Point", "coordinates": [121.4905, 31.2400]}}]}), encoding="utf-8")
    r = CliRunner().invoke(app, ["map", "export", "building", "road", "poi", "-o", str(out), "--geojson", str(extra),
                                 "--bbox", "121.48,31.22,121.53,31.26", "--title", "外滩测试导出"])
    assert r.exit_code == 0, r.output
    assert "building" in r.output and out.exists()
    return out


def test_export_links_nothing_outside(exported):
    html = exported.read_text(encoding="utf-8")
    loads = re.findall(r"""<(?:script|link|img)\b[^>]*(?:src|href)\s*=\s*["']((?:https?:)?//[^"']+)""", html)
    assert not loads, loads
    assert "外滩测试导出" in html and "L.geoJson" in html or "L.geoJSON" in html


def test_export_bad_input_is_a_clear_error(pg_url, tmp_path):
    from gis_api.cli import app

    r = CliRunner().invoke(app, ["map", "export", "no_such_layer", "-o", str(tmp_path / "x.html")])
    assert r.exit_code == 1 and "no_such_layer" in r.output
    r = CliRunner().invoke(app, ["map", "export", "-o", str(tmp_path / "x.html")])
    assert r.exit_code == 1
    r = CliRunner().invoke(app, ["map", "export", "road", "--bbox", "1,2", "-o", str(tmp_path / "x.html")])
    assert r.exit_code == 1 and "bbox" in r.output


@pytest.mark.browser
def test_export_opens_offline_in_chromium(exported, output_dir):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    outside, errors = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})

            def block(route):
                outside.append(route.request.url)
                route.abort()

            page.route(re.compile(r"^https?://"), block)  # as on a machine with no network
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(exported.as_uri(), wait_until="load")
            page.wait_for_selector(".leaflet-overlay-pane path", timeout=30_000)
            n_paths = page.locator(".leaflet-overlay-pane path").count()
            assert n_paths > 1000  # buildings, roads and points are drawn
            assert page.locator(".leaflet-control-layers-overlays label").count() == 4
            page.screenshot(path=str(output_dir / "layers" / "export.png"))
        finally:
            browser.close()
    assert not outside, outside[:5]
    assert not errors, errors
