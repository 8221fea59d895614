"""The planner workbench in the map page, in headless Chromium at 390 px: a planner logs in, runs a
coverage analysis (choropleth + table), two MCLP scenarios as jobs, compares them, and downloads the
scenario PDF, which is rendered to PNG and shows the map and the table. Other roles see no workbench."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from siting import documents

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PASSWORD = "Web-Planner-Pw-2026"


@pytest.fixture
def accounts(engine):
    from gis_api.auth import roles as r
    from gis_api.auth import store

    names = {"w-planner": r.PLANNER, "w-grid2": r.GRID_MANAGER}
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE name = ANY(:n)"), {"n": list(names)})
        for name, role in names.items():
            store.create_user(conn, name, role, PASSWORD, f"测试 {role}")
    yield names
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE name = ANY(:n)"), {"n": list(names)})


def _login(page, base: str, name: str) -> None:
    page.goto(base + "/", wait_until="load")
    page.wait_for_function("window.shequMap && shequMap.ready", timeout=60_000)
    page.click("#login-btn")
    page.fill("#login-user", name)
    page.fill("#login-password", PASSWORD)
    with page.expect_navigation(timeout=30_000):
        page.click("#login-submit")
    page.wait_for_function("window.shequMap && shequMap.ready && document.body.dataset.user", timeout=60_000)


def _colour_pixels(png: bytes, colour: str, tol: int = 30) -> int:
    from PIL import Image

    r0, g0, b0 = int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
    import numpy as np

    px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    return int((np.abs(px - np.array([r0, g0, b0])) < tol).all(axis=2).sum())


@pytest.mark.browser
def test_planner_runs_coverage_scenarios_compare_and_downloads_the_pdf(live_server, accounts, jurisdictions,
                                                                       output_dir, tmp_path):
    if not CHROMIUM.exists() or shutil.which("pdftoppm") is None:
        pytest.skip("needs /usr/bin/chromium and pdftoppm")
    from playwright.sync_api import sync_playwright

    out = output_dir / "web"
    out.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)
            page = ctx.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            _login(page, live_server, "w-planner")
            page.wait_for_function("document.body.dataset.workbench === '1'", timeout=30_000)
            page.click("#wb-toggle")
            assert page.locator("#workbench").is_visible()
            box = page.locator("#workbench").bounding_box()
            assert box and box["width"] <= 390  # fits the phone
            page.select_option("#wb-type", "kindergarten")
            page.select_option("#wb-area", jurisdictions["community"])
            page.select_option("#wb-distance", "line")
            page.click("#wb-coverage")
            page.wait_for_selector("#wb-area-table tr:nth-child(2)", timeout=60_000)
            assert "覆盖" in page.locator("#wb-summary").inner_text()
            page.wait_for_function("shequWorkbench.layers.choropleth", timeout=30_000)
            page.screenshot(path=str(out / "workbench_coverage.png"))
            # the same by grid: the choropleth colours the community's grids
            page.select_option("#wb-by", "grid")
            page.click("#wb-coverage")
            page.wait_for_function("document.querySelector('#wb-area-table th').textContent === '网格'",
                                   timeout=60_000)
            assert page.locator("#wb-area-table tr").count() >= 2
            page.screenshot(path=str(out / "workbench_coverage_grids.png"))
            # a drawn area: four corners clicked on the visible map above the sheet
            page.select_option("#wb-by", "area")
            page.click("#wb-draw")
            for x, y in ((70, 190), (320, 190), (320, 305), (70, 305)):  # clear of the map controls
                page.mouse.click(x, y)
            page.click("#wb-draw")
            assert page.locator("#wb-area").input_value() == "__drawn"
            page.click("#wb-coverage")
            page.wait_for_function("document.querySelector('#wb-area-table') && "
                                   "document.querySelector('#wb-area-table').textContent.includes('绘制范围')",
                                   timeout=60_000)
            page.screenshot(path=str(out / "workbench_drawn_area.png"))
            page.select_option("#wb-area", jurisdictions["community"])

            # bad input shows a clear message in the page
            page.fill("#wb-radius", "-5")
            page.click("#wb-coverage")
            page.locator("#wb-error").wait_for(state="visible", timeout=30_000)
            assert page.locator("#wb-error").inner_text()
            page.fill("#wb-radius", "")

            for n in ("1", "3"):
                page.fill("#wb-name", "浏览器测试方案")
                page.fill("#wb-new", n)
                page.fill("#wb-cost", "300")
                saved = page.evaluate("shequWorkbench.scenarios.length")
                page.click("#wb-run")
                page.wait_for_function(f"shequWorkbench.scenarios.length > {saved}", timeout=180_000)
                assert "方案已保存" in page.locator("#wb-status").inner_text()
            page.click("#wb-compare")
            page.wait_for_selector("#wb-compare-table tr:nth-child(6)", timeout=30_000)
            table = page.locator("#wb-compare-table").inner_text()
            assert "新增设施" in table and "方案覆盖住户" in table and "新增成本" in table
            page.screenshot(path=str(out / "workbench_compare.png"), full_page=True)
            page.locator("#workbench").screenshot(path=str(out / "workbench_panel.png"))

            with page.expect_download(timeout=60_000) as dl:
                page.locator(".wb-pdf").first.click()
            pdf_path = tmp_path / "scenario.pdf"
            dl.value.save_as(str(pdf_path))
        finally:
            browser.close()
    assert not errors, errors
    pdf = pdf_path.read_bytes()
    assert pdf[:5] == b"%PDF-"
    subprocess.run(["pdftoppm", "-r", "60", "-f", "1", "-l", "1", "-png", str(pdf_path), str(tmp_path / "page")],
                   check=True, timeout=60)
    png = next(tmp_path.glob("page*.png")).read_bytes()
    (out / "workbench_report_page1.png").write_bytes(png)
    assert _colour_pixels(png, documents.PDF_PLANNED) > 20 and _colour_pixels(png, documents.PDF_CONTEXT) > 500
    words = subprocess.run(["pdftotext", str(pdf_path), "-"], capture_output=True, timeout=60).stdout.decode()
    assert "浏览器测试方案" in words and "方案覆盖住户" in words


@pytest.mark.browser
def test_other_roles_get_no_workbench(live_server, accounts):
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            _login(page, live_server, "w-grid2")
            page.wait_for_timeout(1500)
            assert page.locator("#wb-toggle").count() == 0
        finally:
            browser.close()
