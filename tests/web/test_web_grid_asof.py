"""The map's "as of" date (网格时点) in headless Chromium, on the real demo grids: an edit moves a shared vertex
of two grids; picking a date before the edit draws the old boundary (the versions valid then, from OGC API
Features with ``datetime``), picking today draws the new one, 现行 goes back to the live tiles; the control
fits a 390 px phone. Screenshots in test-output/web/.

The community's grid history is shifted 30 days back for the test (the demo grids are built when the test
database is loaded, today, so no date before today would hold them) and restored afterwards; the edit is
rolled back at the end (a new version, as in the product)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
SHIFT = "30 days"


@pytest.fixture
def older_history(engine, jurisdictions):
    """The community's grid and micro-grid rows as if built 30 days ago; restored afterwards."""
    comm = jurisdictions["community"]
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT id, valid_from, valid_to FROM grid WHERE community_code = :c"),
                            {"c": comm}).all()
        conn.execute(text(f"UPDATE grid SET valid_from = valid_from - interval '{SHIFT}', valid_to = valid_to - "
                          f"interval '{SHIFT}' WHERE id = ANY(:i)"), {"i": [r.id for r in rows]})
    yield comm
    with engine.begin() as conn:
        conn.execute(text("UPDATE grid SET valid_from = :f, valid_to = CASE WHEN CAST(:t AS timestamptz) IS NULL "
                          "THEN valid_to ELSE CAST(:t AS timestamptz) END WHERE id = :i"),
                     [{"i": r.id, "f": r.valid_from, "t": r.valid_to} for r in rows])


def _drawn(page, code):
    """Version and outer-ring vertices ([lon, lat]) of a grid as drawn by the as-of layer."""
    return page.evaluate("""code => {
        const lyr = shequAsOf.layers.grid; if (!lyr) { return null; }
        let out = null;
        lyr.eachLayer(l => {
            if (l.feature.properties.code !== code || !shequMap.map.hasLayer(l)) { return; }
            const rings = [];
            (function walk(x) { if (x.length && x[0].lat !== undefined) { rings.push(x); } else { x.forEach(walk); } })(l.getLatLngs());
            out = { version: l.feature.properties.version, vertices: [].concat(...rings).map(p => [p.lng, p.lat]) };
        });
        return out;
    }""", code)


def _near(vertices, pt, tol=1e-6):
    return min(abs(x - pt[0]) + abs(y - pt[1]) for x, y in vertices) < tol


@pytest.mark.browser
def test_as_of_date_draws_the_old_boundary_before_an_edit_and_the_new_one_today(live_server, engine, older_history,
                                                                                 output_dir):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from grid_builder.edit import service
    from grid_builder.edit.samples import movable_vertex

    comm = older_history
    with engine.connect() as conn:
        _info, layout, before = service.load_layout(conn, comm)
    src, dst, a, b = movable_vertex(layout)
    with engine.begin() as conn:
        draft = service.save_draft(conn, comm, [{"op": "move_vertex", "from": src, "to": dst}], "时点测试", "test")
        edit_id = draft["id"]
        service.approve(conn, edit_id, "test", "时点测试", direct=True)
    china = datetime.now(UTC) + timedelta(hours=8)
    today, earlier = china.date().isoformat(), (china - timedelta(days=2)).date().isoformat()
    out = output_dir / "web"
    out.mkdir(exist_ok=True)
    errors: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1024, "height": 768})
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(live_server + "/", wait_until="load")  # the public map: grids are public
                page.wait_for_function("window.shequMap && shequMap.ready && document.body.dataset.asOf === 'live'",
                                       timeout=60_000)
                assert page.locator("label[for=asof-date]").inner_text() == "网格时点"
                page.evaluate("([lat, lon]) => shequMap.map.setView([lat, lon], 18, {animate: false})",
                              [src[1], src[0]])
                page.wait_for_timeout(500)

                page.fill("#asof-date", earlier)  # fires change: the grids valid at the end of that day
                page.wait_for_function(f"document.body.dataset.asOf === '{earlier}:loaded'", timeout=30_000)
                old = _drawn(page, a)
                assert old is not None and old["version"] == before[a]
                assert _near(old["vertices"], src) and not _near(old["vertices"], dst)  # the old corner
                assert _drawn(page, b)["version"] == before[b]
                # the live tiles draw no grid meanwhile (an empty style), so only the old boundary shows
                assert page.evaluate("Array.isArray(shequMap.basemap.options.vectorTileLayerStyles.grid)")
                assert "历史网格" in page.locator("#asof-status").inner_text()
                page.wait_for_timeout(500)
                page.screenshot(path=str(out / "grid-asof-before-edit.png"))

                page.fill("#asof-date", today)
                page.wait_for_function(f"document.body.dataset.asOf === '{today}:loaded'", timeout=30_000)
                new = _drawn(page, a)
                assert new is not None and new["version"] == before[a] + 1
                assert _near(new["vertices"], dst) and not _near(new["vertices"], src)  # the moved corner
                assert _drawn(page, b)["version"] == before[b] + 1
                page.wait_for_timeout(500)
                page.screenshot(path=str(out / "grid-asof-today.png"))

                page.click("#asof-now")  # back to the live tiles
                page.wait_for_function("document.body.dataset.asOf === 'live'", timeout=10_000)
                assert page.evaluate("!Array.isArray(shequMap.basemap.options.vectorTileLayerStyles.grid) "
                                     "&& Object.keys(shequAsOf.layers).length === 0")

                page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone, opened as one
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(live_server + "/", wait_until="load")
                page.wait_for_function("window.shequMap && shequMap.ready && document.body.dataset.asOf === 'live'",
                                       timeout=60_000)
                page.evaluate("([lat, lon]) => shequMap.map.setView([lat, lon], 17, {animate: false})",
                              [src[1], src[0]])
                page.fill("#asof-date", earlier)
                page.wait_for_function(f"document.body.dataset.asOf === '{earlier}:loaded'", timeout=30_000)
                box = page.locator(".asof").bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
                assert page.evaluate("document.documentElement.scrollWidth") <= 390
                assert page.locator("#asof-date").is_visible() and page.locator("#asof-now").is_enabled()
                assert _drawn(page, a)["version"] == before[a]
                page.wait_for_timeout(300)
                page.screenshot(path=str(out / "grid-asof-phone.png"))
            finally:
                browser.close()
        assert not errors, errors
    finally:
        with engine.begin() as conn:
            service.rollback(conn, edit_id, "test", "测试结束还原")
