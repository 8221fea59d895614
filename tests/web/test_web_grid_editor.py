"""The grid editor in headless Chromium: a grid manager logs in, selects a grid, drags a shared vertex with
real mouse events (Leaflet-Geoman), sees the live figures, saves and submits the draft; community staff log
in and approve it; then the API shows the new versions of both neighbours and the grid tile changed.
Screenshots in test-output/web/. The edit is rolled back at the end (a new version, as in the product)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from shapely.geometry import Point
from sqlalchemy import text

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PASSWORD = "Web-Editor-Pw-2026"


@pytest.fixture
def editor_accounts(engine, jurisdictions):
    from gis_api.auth import roles as r
    from gis_api.auth import store

    names = {"gm": "w-ed-gm", "cs": "w-ed-cs"}
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE name = ANY(:n)"), {"n": list(names.values())})
        store.create_user(conn, names["gm"], r.GRID_MANAGER, PASSWORD, "网格员 编辑测试")
        store.grant(conn, names["gm"], "grid", jurisdictions["grid"])
        store.create_user(conn, names["cs"], r.COMMUNITY, PASSWORD, "社区 审批测试")
        store.grant(conn, names["cs"], "community", jurisdictions["community"])
    yield names
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE name = ANY(:n)"), {"n": list(names.values())})


def _login(page, base, user):
    page.goto(base + "/", wait_until="load")
    page.wait_for_function("window.shequMap && shequMap.ready", timeout=60_000)
    page.click("#login-btn")
    page.fill("#login-user", user)
    page.fill("#login-password", PASSWORD)
    with page.expect_navigation(timeout=30_000):
        page.click("#login-submit")
    page.wait_for_function("window.shequMap && shequMap.ready && document.body.dataset.editor === '1'",
                           timeout=60_000)


def _pixel(page, lonlat):
    box = page.locator("#map").bounding_box()
    pt = page.evaluate("([lat, lon]) => { const p = shequMap.map.latLngToContainerPoint([lat, lon]); "
                       "return [p.x, p.y]; }", [lonlat[1], lonlat[0]])
    return box["x"] + pt[0], box["y"] + pt[1]


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as res:  # noqa: S310 (loopback test server)
        return res.headers, res.read()


@pytest.mark.browser
def test_grid_manager_drags_a_shared_vertex_and_staff_approve(live_server, editor_accounts, engine, jurisdictions,
                                                              output_dir):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from grid_builder.edit import service
    from grid_builder.edit.samples import movable_vertex
    from grid_builder.geom import to_metric, to_wgs84
    from tiles.tms import tile_for_lonlat

    comm, mine = jurisdictions["community"], jurisdictions["grid"]
    with engine.connect() as conn:
        _info, layout, before = service.load_layout(conn, comm)
    src, dst, a, b = movable_vertex(layout, must_touch=mine)
    v = to_metric(Point(src))
    inside = layout.grids[a].intersection(v.buffer(15)).buffer(-2).representative_point()  # a click inside a
    click_at = to_wgs84(inside)
    t = tile_for_lonlat(src[0], src[1], 17)
    tile_url = f"{live_server}/collections/grid/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
    etag_before = _get(tile_url)[0].get("ETag")
    out = output_dir / "web"
    out.mkdir(exist_ok=True)
    errors: list[str] = []
    edit_id = None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 768})  # a tablet
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            _login(page, live_server, editor_accounts["gm"])
            page.click("#ed-open")
            assert page.locator("#ed-community").input_value() == comm
            page.click("#ed-load")
            page.wait_for_function("document.body.dataset.editorLoaded === '1'", timeout=30_000)
            page.evaluate("([lat, lon]) => { shequMap.map.setView([lat, lon], 20, {animate: false}); }",
                          [src[1], src[0]])
            page.wait_for_function("shequMap.map.getZoom() === 20", timeout=10_000)
            page.wait_for_timeout(300)
            page.mouse.click(*_pixel(page, [click_at.x, click_at.y]))
            page.wait_for_function(f"document.body.dataset.editorSelected === '{a}'", timeout=10_000)
            page.wait_for_timeout(300)
            x0, y0 = _pixel(page, src)
            x1, y1 = _pixel(page, dst)
            page.mouse.move(x0, y0)
            page.mouse.down()
            page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
            page.mouse.move(x1, y1, steps=5)
            page.mouse.up()
            page.wait_for_function("shequEditor.figures && !shequEditor.busy", timeout=30_000)
            figs = page.evaluate("shequEditor.figures")
            ops = page.evaluate("shequEditor.ops")
            assert len(ops) == 1 and ops[0]["op"] == "move_vertex"
            assert abs(ops[0]["from"][0] - src[0]) < 1e-6 and abs(ops[0]["from"][1] - src[1]) < 1e-6
            assert figs["valid"], figs["issues"]
            assert {g["code"] for g in figs["grids"]} == {a, b}  # both neighbours moved together
            assert page.locator("#ed-figures table").is_visible()
            page.fill("#ed-reason", "沿新建围墙调整边界")
            page.click("#ed-save")
            page.wait_for_function("document.body.dataset.editorDraft", timeout=30_000)
            edit_id = int(page.evaluate("document.body.dataset.editorDraft"))
            page.click("#ed-submit")
            page.wait_for_function("document.body.dataset.editorSubmitted", timeout=30_000)
            page.screenshot(path=str(out / "grid-editor-submitted.png"))

            with page.expect_navigation(timeout=30_000):
                page.click("#logout-btn")
            page.wait_for_function("window.shequMap && shequMap.ready", timeout=60_000)
            _login(page, live_server, editor_accounts["cs"])
            page.click("#ed-open")
            page.wait_for_function(f"(document.body.dataset.editorPending || '').split(',').includes('{edit_id}')",
                                   timeout=30_000)
            item = page.locator(f"#ed-pending li:has(button.ed-approve[data-id='{edit_id}'])")
            item.locator(".ed-why").fill("同意")
            item.locator("button.ed-approve").click()
            page.wait_for_function(f"document.body.dataset.editorDecided === '{edit_id}:approved'", timeout=60_000)
            page.click("#ed-load")
            page.wait_for_function("document.body.dataset.editorLoaded === '1'", timeout=30_000)
            page.evaluate("code => shequEditor.select(code)", a)
            page.click("#ed-history")
            page.wait_for_function(f"(document.body.dataset.editorHistory || '').startsWith('{a}:')", timeout=30_000)
            page.locator(f"#ed-timeline button[data-v='{before[a] + 1}']").click()
            page.wait_for_function(f"document.body.dataset.editorDiff === '{a}:{before[a]}:{before[a] + 1}'",
                                   timeout=30_000)
            page.screenshot(path=str(out / "grid-editor-approved.png"))
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(300)
            page.screenshot(path=str(out / "grid-editor-phone.png"))
        finally:
            browser.close()
    assert not errors, errors
    try:
        with engine.connect() as conn:
            now = dict(conn.execute(text("SELECT code, version FROM grid WHERE code = ANY(:c) AND valid_to IS NULL"),
                                    {"c": [a, b]}).all())
        assert now == {a: before[a] + 1, b: before[b] + 1}
        hist = json.loads(_get(f"{live_server}/grids/{a}/history")[1])
        assert hist["versions"][-1]["edit"]["id"] == edit_id and hist["versions"][-1]["edit"]["by"] == "w-ed-cs"
        assert _get(tile_url)[0].get("ETag") != etag_before  # the tile was rendered again with the new edge
    finally:
        if edit_id is not None:
            with engine.begin() as conn:
                if service.get_edit(conn, edit_id)["status"] == "approved":
                    service.rollback(conn, edit_id, "test", "测试结束还原")
