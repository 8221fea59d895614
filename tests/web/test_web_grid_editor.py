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


def _movable_building(layout, mine):
    """(building, from grid, to grid): a building of a grid next to ``mine`` (or of ``mine``) that can move to
    the neighbour keeping every invariant, and a point of the target grid clear of footprints."""
    from grid_builder.edit.samples import shared_vertices, try_apply
    from grid_builder.geom import safe_union

    for a, b, _p in shared_vertices(layout):
        if mine not in (a, b):
            continue
        for src, dst in ((a, b), (b, a)):
            inside = sorted((x for x in layout.buildings if layout.grids[src].contains(x.anchor)),
                            key=lambda x: layout.grids[dst].distance(x.footprint))
            for bld in inside[:3]:
                if try_apply(layout, [{"op": "move_buildings", "buildings": [bld.id], "to": dst}]) is None:
                    continue
                near = layout.grids[dst].buffer(-3).intersection(bld.footprint.buffer(80))
                clear = near.difference(safe_union([x.footprint.buffer(3) for x in layout.buildings
                                                    if x.footprint.distance(near) < 5]))
                if not clear.is_empty and clear.area > 20:
                    return bld, src, dst, clear.buffer(-1).representative_point() if clear.buffer(-1).area > 0 \
                        else clear.representative_point()
    raise AssertionError("no building of the test grids can move to a neighbour")


@pytest.mark.browser
def test_grid_manager_clicks_buildings_into_the_neighbour_and_drags_with_snapping(live_server, editor_accounts,
                                                                                  engine, jurisdictions, output_dir):
    """点选建筑: real clicks on a footprint, then on the neighbouring grid, give a move_buildings operation whose
    preview moves that building (and its households); the 吸附 option reaches the server (the dragged
    vertex's operation records the tolerance chosen and is snapped there); 编辑微网格 switches to the
    manager's grid's micro-grids, where a dragged inner vertex gives a micro-grid-level operation."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from grid_builder.edit import service
    from grid_builder.edit.samples import movable_vertex
    from grid_builder.geom import to_wgs84

    comm, mine = jurisdictions["community"], jurisdictions["grid"]
    with engine.connect() as conn:
        _info, layout, _before = service.load_layout(conn, comm)
    bld, src, dst, target = _movable_building(layout, mine)
    micro_vertex = _inner_micro_vertex(engine, comm, mine)
    with engine.connect() as conn:
        _i, micro, _v = service.load_micro_layout(conn, comm, mine)
    at_b, at_t = to_wgs84(bld.anchor), to_wgs84(target)
    out = output_dir / "web"
    out.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 768})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            _login(page, live_server, editor_accounts["gm"])
            page.click("#ed-open")
            page.click("#ed-load")
            page.wait_for_function("document.body.dataset.editorLoaded === '1'", timeout=30_000)
            page.click("#ed-buildings")
            page.wait_for_function("Number(document.body.dataset.editorBuildings || 0) > 0", timeout=30_000)
            page.evaluate("([lat, lon]) => { shequMap.map.setView([lat, lon], 19, {animate: false}); }",
                          [(at_b.y + at_t.y) / 2, (at_b.x + at_t.x) / 2])
            page.wait_for_timeout(400)
            page.mouse.click(*_pixel(page, [at_b.x, at_b.y]))
            page.wait_for_function(f"document.body.dataset.editorPicked === '{bld.id}'", timeout=10_000)
            assert "已选建筑 1 栋" in page.locator("#ed-picked").inner_text()
            page.mouse.click(*_pixel(page, [at_t.x, at_t.y]))
            page.wait_for_function("shequEditor.figures && !shequEditor.busy", timeout=30_000)
            ops = page.evaluate("shequEditor.ops")
            figs = page.evaluate("shequEditor.figures")
            assert ops == [{"op": "move_buildings", "buildings": [bld.id], "to": dst}], ops
            assert figs["valid"], figs["issues"]
            moved = {m["building"]: m for m in figs["moved_buildings"]}
            assert moved[bld.id]["from"] == src and moved[bld.id]["to"] == dst
            assert {g["code"] for g in figs["grids"]} == {src, dst}
            page.screenshot(path=str(out / "grid-editor-buildings.png"))
            page.click("#ed-buildings")  # end picking; undo; drag a shared vertex with 2 m snapping
            page.click("#ed-undo")
            page.wait_for_function("shequEditor.ops.length === 0 && !shequEditor.busy", timeout=30_000)
            page.select_option("#ed-snap", "2")
            vsrc, vdst, a, _b = movable_vertex(layout, must_touch=mine)
            inside = layout.grids[a].intersection(Point(*_metric(vsrc)).buffer(15)).buffer(-2).representative_point()
            click_at = to_wgs84(inside)
            page.evaluate("([lat, lon]) => { shequMap.map.setView([lat, lon], 20, {animate: false}); }",
                          [vsrc[1], vsrc[0]])
            page.wait_for_timeout(300)
            page.mouse.click(*_pixel(page, [click_at.x, click_at.y]))
            page.wait_for_function(f"document.body.dataset.editorSelected === '{a}'", timeout=10_000)
            page.wait_for_timeout(300)
            x0, y0 = _pixel(page, vsrc)
            x1, y1 = _pixel(page, vdst)
            page.mouse.move(x0, y0)
            page.mouse.down()
            page.mouse.move(x1, y1, steps=8)
            page.mouse.up()
            page.wait_for_function("!shequEditor.busy && (shequEditor.ops.length === 1 || "
                                   "(document.body.dataset.editorStatus || '').indexOf('拒绝') >= 0)", timeout=30_000)
            ops = page.evaluate("shequEditor.ops")
            snaps = page.evaluate("shequEditor.snaps")
            assert len(ops) == 1, page.evaluate("document.body.dataset.editorStatus")
            assert ops[0]["op"] == "move_vertex" and ops[0]["snap_m"] == 2
            for s in snaps:  # what snapped is within the tolerance, to a named kind of target
                assert s["distance_m"] <= 2 and s["kind"] in ("road", "block", "building")

            # micro-grid level: the manager's own grid, an inner shared micro-grid vertex dragged
            page.click("#ed-undo")
            page.wait_for_function("shequEditor.ops.length === 0 && !shequEditor.busy", timeout=30_000)
            page.select_option("#ed-snap", "0")
            page.evaluate("code => shequEditor.select(code)", mine)
            page.click("#ed-micro")
            page.wait_for_function(f"document.body.dataset.editorLevel === 'microgrid:{mine}' && "
                                   "document.body.dataset.editorLoaded === '1'", timeout=30_000)
            msrc, mdst, ma = micro_vertex
            inside = micro.grids[ma].intersection(Point(*_metric(msrc)).buffer(10)).buffer(-1.5).representative_point()
            click_at = to_wgs84(inside)
            page.evaluate("([lat, lon]) => { shequMap.map.setView([lat, lon], 20, {animate: false}); }",
                          [msrc[1], msrc[0]])
            page.wait_for_timeout(300)
            page.mouse.click(*_pixel(page, [click_at.x, click_at.y]))
            page.wait_for_function(f"document.body.dataset.editorSelected === '{ma}'", timeout=10_000)
            page.wait_for_timeout(300)
            x0, y0 = _pixel(page, msrc)
            x1, y1 = _pixel(page, mdst)
            page.mouse.move(x0, y0)
            page.mouse.down()
            page.mouse.move(x1, y1, steps=8)
            page.mouse.up()
            page.wait_for_function("shequEditor.figures && shequEditor.ops.length === 1 && !shequEditor.busy",
                                   timeout=30_000)
            ops = page.evaluate("shequEditor.ops")
            figs = page.evaluate("shequEditor.figures")
            assert ops[0]["op"] == "move_vertex" and ops[0]["level"] == "microgrid" and ops[0]["in"] == mine
            assert figs["valid"], figs["issues"]
            assert {g["code"] for g in figs["grids"]} <= set(micro.grids) and len(figs["grids"]) >= 2
            assert figs["grids"][0]["band"] == [30, 50]
            page.screenshot(path=str(out / "grid-editor-microgrids.png"))
        finally:
            browser.close()
    assert not errors, errors


def _inner_micro_vertex(engine, comm, grid):
    """(from, to, micro-grid code): a micro-grid vertex shared inside ``grid`` that can move 2.5 m."""
    from grid_builder.edit.samples import lonlat, shared_vertices, try_apply
    from grid_builder.edit.service import load_micro_layout

    with engine.connect() as conn:
        _i, micro, _v = load_micro_layout(conn, comm, grid)
    for a, _b, p in shared_vertices(micro):
        if micro.community.boundary.distance(p) < 5.0:
            continue
        q = Point(p.x + 2.0, p.y + 1.5)
        raw = [{"op": "move_vertex", "from": lonlat(p), "to": lonlat(q)}]
        if try_apply(micro, raw) is not None:
            return lonlat(p), lonlat(q), a
    raise AssertionError("no inner shared micro-grid vertex in the test grid")


def _metric(lonlat):
    from grid_builder.geom import to_metric

    p = to_metric(Point(lonlat))
    return p.x, p.y


@pytest.mark.browser
def test_admin_draws_a_police_station_area(live_server, engine, jurisdictions, output_dir):
    """An admin draws a police-station area in the editor with real clicks (Leaflet-Geoman polygon, closed by
    clicking its first point); it is stored through POST /police-areas: PostGIS holds the polygon drawn, and a
    point inside it finds the area."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from gis_api.auth import roles as r
    from gis_api.auth import store
    from grid_builder.edit import service

    user, code = "w-ed-admin", "PA-WEB-EDITOR-1"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE name = :n"), {"n": user})
        conn.execute(text("DELETE FROM police_area WHERE code = :c"), {"c": code})
        store.create_user(conn, user, r.ADMIN, PASSWORD, "管理员 辖区测试")
    with engine.connect() as conn:
        _info, layout, _v = service.load_layout(conn, jurisdictions["community"])
    c = layout.community.centroid
    from grid_builder.geom import to_wgs84

    corners = [to_wgs84(Point(c.x + dx, c.y + dy)) for dx, dy in ((-60, -40), (70, -40), (70, 50), (-60, 50))]
    errors: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1024, "height": 768})
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                _login(page, live_server, user)
                page.click("#ed-open")
                assert page.locator("#ed-police").is_visible()
                page.evaluate("([lat, lon]) => { shequMap.map.setView([lat, lon], 18, {animate: false}); }",
                              [to_wgs84(c).y, to_wgs84(c).x])
                page.wait_for_timeout(300)
                page.fill("#ed-pa-code", code)
                page.fill("#ed-pa-name", "测试派出所")
                page.click("#ed-pa-draw")
                for p in [*corners, corners[0]]:  # the first point again closes the polygon
                    x, y = _pixel(page, [p.x, p.y])
                    page.mouse.move(x, y, steps=5)  # Geoman places a vertex where its hint marker follows
                    page.mouse.click(x, y)
                    page.wait_for_timeout(250)
                page.wait_for_function(f"document.body.dataset.editorPolice === '{code}'", timeout=30_000)
                page.screenshot(path=str(out_path(output_dir) / "grid-editor-police-area.png"))
            finally:
                browser.close()
        assert not errors, errors
        with engine.connect() as conn:
            name, area, hit, wkt = conn.execute(text(
                "SELECT name, ST_Area(geom::geography), ST_Covers(geom, ST_SetSRID(ST_Point(:x, :y), 4326)), "
                "ST_AsText(geom) FROM police_area WHERE code = :c"),
                {"c": code, "x": to_wgs84(c).x, "y": to_wgs84(c).y}).one()
        assert name == "测试派出所" and hit
        assert abs(area - 130 * 90) < 0.05 * 130 * 90, (wkt, [(p.x, p.y) for p in corners])  # the rectangle drawn
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM police_area WHERE code = :c"), {"c": code})
            conn.execute(text("DELETE FROM app_user WHERE name = :n"), {"n": user})


def out_path(output_dir):
    out = output_dir / "web"
    out.mkdir(exist_ok=True)
    return out


@pytest.mark.browser
def test_admin_reshapes_a_stored_police_area(live_server, engine, jurisdictions, output_dir):
    """An admin loads a stored police-station area by its code (载入辖区), drags a corner of it 40 m east with
    real mouse events (Leaflet-Geoman vertex marker) and saves (保存辖区范围 → PUT /police-areas/{code}):
    PostGIS holds the new outline as version 2 and a point of the land gained is now inside the area."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from gis_api.auth import roles as r
    from gis_api.auth import store
    from grid_builder.geom import to_metric, to_wgs84

    user, code = "w-ed-admin2", "PA-WEB-RESHAPE-1"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE name = :n"), {"n": user})
        store.create_user(conn, user, r.ADMIN, PASSWORD, "管理员 辖区修改测试")
        x, y = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM admin_unit "
                                 "WHERE code = :c) s"), {"c": jurisdictions["community"]}).one()
        c = to_metric(Point(x, y))
        corners = [to_wgs84(Point(c.x + dx, c.y + dy)) for dx, dy in ((-50, -40), (50, -40), (50, 40), (-50, 40))]
        ring = [[p.x, p.y] for p in [*corners, corners[0]]]
        conn.execute(text("DELETE FROM police_area WHERE code = :c"), {"c": code})
        conn.execute(text("INSERT INTO police_area (code, name, source, geom) VALUES (:c, '网页重塑测试所', 'test', "
                          "ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326)))"),
                     {"c": code, "g": json.dumps({"type": "Polygon", "coordinates": [ring]})})
    corner, pulled = corners[2], to_wgs84(Point(c.x + 90, c.y + 40))
    gained = to_wgs84(Point(c.x + 60, c.y + 30))
    errors: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1024, "height": 768})
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                _login(page, live_server, user)
                page.click("#ed-open")
                page.fill("#ed-pa-code", code)
                page.click("#ed-pa-load")
                page.wait_for_function(f"document.body.dataset.editorPoliceLoaded === '{code}:1'", timeout=30_000)
                assert page.locator("#ed-pa-name").input_value() == "网页重塑测试所"
                centre = to_wgs84(Point(c.x + 20, c.y))
                page.evaluate("([lat, lon]) => { shequMap.map.setView([lat, lon], 18, {animate: false}); }",
                              [centre.y, centre.x])
                page.wait_for_timeout(400)
                x0, y0 = _pixel(page, [corner.x, corner.y])
                x1, y1 = _pixel(page, [pulled.x, pulled.y])
                page.mouse.move(x0, y0)
                page.mouse.down()
                page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
                page.mouse.move(x1, y1, steps=5)
                page.mouse.up()
                page.wait_for_timeout(300)
                page.click("#ed-pa-save")
                page.wait_for_function(f"document.body.dataset.editorPoliceSaved === '{code}:2'", timeout=30_000)
                page.screenshot(path=str(out_path(output_dir) / "grid-editor-police-reshaped.png"))
            finally:
                browser.close()
        assert not errors, errors
        with engine.connect() as conn:
            version, source, area_m2, hit = conn.execute(text(
                "SELECT version, source, ST_Area(geom::geography), ST_Covers(geom, ST_SetSRID(ST_Point(:x, :y), 4326)) "
                "FROM police_area WHERE code = :c"), {"c": code, "x": gained.x, "y": gained.y}).one()
        assert version == 2 and source == "edit" and hit
        assert abs(area_m2 - (100 * 80 + 40 * 80 / 2)) < 0.05 * 9600  # the rectangle and the triangle dragged out
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM police_area WHERE code = :c"), {"c": code})
            conn.execute(text("DELETE FROM app_user WHERE name = :n"), {"n": user})
