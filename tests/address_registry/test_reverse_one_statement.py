"""Reverse geocoding in one statement (issue 14: /reverse p99 < 10 ms) answers exactly what the statement-by-
statement path answered, on the demo registry and grids, against the real PostGIS.

`address_registry.reverse.locate` reads the footprint's address, the nearest address points, the admin units,
the grid and the compound in one `UNION ALL` (`store.reverse_parts`); `locate_by_parts` is the old path
(footprint, nearest, a building's parent, admin, grid catalogue + grid, compound — 7–9 statements). Both run
on the same connection, at points inside footprints, a few metres outside them, far from any building, in
and out of the built grids, in compounds, and outside the city; with every limit 1..10. The route is then
compared with the old route's composition in each crs, and a registry write and a grid write made in the
test's transaction are in the next answer.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, text

from address_registry import lifecycle
from address_registry.reverse import locate, locate_by_parts
from geo.crs import from_wgs84
from tests.reverse_points import reverse_points

pytestmark = pytest.mark.usefixtures("_session_jurisdictions")  # provisional communities and some grids


def test_one_statement_answers_as_the_statements(tx):
    points = reverse_points(tx, on_points=False)
    seen = {"footprint": 0, "nearest": 0, "grid": 0, "no_grid": 0, "compound": 0, "community": 0, "no_admin": 0}
    for kind, pts in points.items():
        assert pts, kind
        for i, (lon, lat) in enumerate(pts):
            for k in (range(1, 11) if i % 25 == 0 else (1, 10)):
                new, old = locate(tx, lon, lat, k=k), locate_by_parts(tx, lon, lat, k=k)
                assert new == old, (kind, lon, lat, k)
                assert 1 <= len(new["nearby"]) <= k
            seen[new["nearby"][0]["match"]] += 1
            seen["grid" if new["grid"] else "no_grid"] += 1
            seen["compound"] += new["compound"] is not None
            seen["community"] += new["community"] is not None
            seen["no_admin"] += new["district"] is None
    # the comparison covered every case it is meant to
    assert seen["footprint"] >= 60 and seen["nearest"] >= 100, seen
    assert seen["grid"] >= 50 and seen["no_grid"] >= 50 and seen["compound"] >= 1, seen
    assert seen["community"] >= 50 and seen["no_admin"] >= 2, seen


def test_locate_sends_one_statement(tx):
    lon, lat = reverse_points(tx, on_points=False)["inside"][0]
    locate(tx, lon, lat)  # the grid table's shape is checked once per database, then remembered
    statements: list[str] = []

    def keep(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(tx, "before_cursor_execute", keep)
    try:
        found = locate(tx, lon, lat, k=5)
    finally:
        event.remove(tx, "before_cursor_execute", keep)
    assert len(statements) == 1 and "UNION ALL" in statements[0]
    assert found["nearby"][0]["match"] == "footprint"


def _old_route(engine, lon: float, lat: float, crs: str, limit: int) -> dict:
    """The body the route answered before (statement by statement), for a point given in ``crs``."""
    from geo.crs import point_to_wgs84
    from gis_api.routers.geocode import _out

    wlon, wlat = point_to_wgs84(lon, lat, crs)
    with engine.connect() as conn:
        found = locate_by_parts(conn, wlon, wlat, k=limit)
    items = [_out(item, crs) for item in found["nearby"]]
    return {"lon": lon, "lat": lat, "crs": crs, "address": items[0], "nearby": items,
            **{key: found[key] for key in ("district", "township", "community", "grid", "compound")}}


def test_route_answers_as_before_in_every_crs(client, engine, tx):
    points = reverse_points(tx, on_points=False)
    pts = points["inside"][:15] + points["near"][:15] + points["lattice"][::40] + points["gridded"][:5]
    for i, (x, y) in enumerate(pts):
        crs = ("wgs84", "cgcs2000", "gcj02")[i % 3]
        lon, lat = (x, y) if crs != "gcj02" else tuple(float(v) for v in from_wgs84(x, y, "gcj02"))
        limit = 1 + i % 10
        r = client.get("/reverse", params={"lon": lon, "lat": lat, "crs": crs, "limit": limit})
        assert r.status_code == 200, r.text
        assert r.json() == _old_route(engine, lon, lat, crs, limit), (x, y, crs, limit)
    # EPSG codes are names of the same crs, as before
    r = client.get("/reverse", params={"lon": pts[0][0], "lat": pts[0][1], "crs": "EPSG:4490"})
    assert r.status_code == 200 and r.json()["crs"] == "cgcs2000"


@pytest.mark.parametrize("params", [
    {"lon": 2.35, "lat": 48.85},                          # Paris
    {"lon": 2.35, "lat": 48.85, "crs": "gcj02"},          # Paris, given in GCJ-02
    {"lon": 139.69, "lat": 35.69, "crs": "cgcs2000"},     # Tokyo
    {"lon": 121.5, "lat": 31.2, "crs": "mars"},           # no such crs
    {"lon": 121.5, "lat": 31.2, "limit": 11},             # limit out of 1..10
    {"lon": 121.5, "lat": 31.2, "limit": 0},
])
def test_route_refuses_as_before(client, params):
    r = client.get("/reverse", params=params)
    assert r.status_code == 422
    assert r.json()["message"]


def test_a_registry_write_and_a_grid_write_are_in_the_next_answer(tx):
    conn = tx
    # a lattice point far from any building, inside a built grid
    lon, lat = conn.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (
        SELECT ST_PointOnSurface(g.geom) p FROM grid g WHERE g.valid_to IS NULL AND g.level = 'grid'
        AND NOT EXISTS (SELECT 1 FROM building b WHERE ST_DWithin(b.geom, ST_PointOnSurface(g.geom), 0.0003))
        ORDER BY g.code LIMIT 1) q""")).one()
    before = locate(conn, lon, lat)
    assert before["nearby"][0]["match"] == "nearest" and before["nearby"][0]["distance_m"] > 20
    assert before["grid"] is not None
    road = _road_of(conn, before["nearby"][0]["address_code"])
    rec = lifecycle.create_address(conn, {"level": "house_number", "parent_code": road,
                                          "components": {"house_number": "9999号"}, "lon": lon, "lat": lat},
                                   "反查测试", "一条语句的反查看到新门牌")
    after = locate(conn, lon, lat, k=3)
    assert after["nearby"][0]["address_code"] == rec.code and after["nearby"][0]["distance_m"] == 0
    assert after["nearby"][0]["formatted"].endswith("9999号") and after["nearby"][0]["source"] == "manual"
    assert after == locate_by_parts(conn, lon, lat, k=3)
    # a grid write: the grid's next version under a new name (as a grid edit writes it), then retired
    code = before["grid"]["code"]
    conn.execute(text("UPDATE grid SET valid_to = now() WHERE code = :c AND valid_to IS NULL"), {"c": code})
    conn.execute(text("""INSERT INTO grid (code, name, level, parent_code, community_code, households, buildings,
        area_m2, compactness, contiguous, flags, version, source, properties, geom)
        SELECT code, '反查测试网格', level, parent_code, community_code, households, buildings, area_m2, compactness,
               contiguous, flags, version + 1, 'edit', properties, geom
        FROM grid WHERE code = :c ORDER BY version DESC LIMIT 1"""), {"c": code})
    renamed = locate(conn, lon, lat)
    assert renamed["grid"]["code"] == code and renamed["grid"]["name"] == "反查测试网格"
    assert renamed == locate_by_parts(conn, lon, lat)
    conn.execute(text("UPDATE grid SET valid_to = now() WHERE code = :c AND valid_to IS NULL"), {"c": code})
    gone = locate(conn, lon, lat)
    assert gone["grid"] is None or gone["grid"]["code"] != code
    assert gone == locate_by_parts(conn, lon, lat)


def _road_of(conn, code: str) -> str:
    """The road an address hangs under (walking up its parents)."""
    while True:
        row = conn.execute(text("SELECT level, parent_code FROM standard_address WHERE code = :c AND valid_to IS NULL"),
                           {"c": code}).one()
        if row.level == "road":
            return code
        code = row.parent_code

