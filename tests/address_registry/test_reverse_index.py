"""Reverse geocoding's nearest-address query reads only house numbers and buildings (migration
0019_scale_reverse_index, issue 14): with thousands of homes (rooms) on a house number's own point — what a
tower of the synthetic city puts there — the query `store.nearest` runs scans the partial GiST index and
drops no row by its level filter, and still answers the house number first."""

from __future__ import annotations

import json

from sqlalchemy import event, text

from address_registry import store

ROOMS = 3000


def _plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def test_nearest_skips_the_homes_on_a_building_point(tx):
    conn = tx
    house = conn.execute(text("""SELECT code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM standard_address
        WHERE valid_to IS NULL AND status = 'active' AND level = 'house_number' AND geom IS NOT NULL
        ORDER BY code LIMIT 1""")).one()
    conn.execute(text("""INSERT INTO standard_address (code, version, level, parent_code, components, full_text,
        normalized_text, geom, source, status, changed_by, change_reason)
        SELECT '7' || lpad(g::text, 15, '0'), 1, 'room', :parent, '{"room": "测试室"}'::jsonb, '反查测试' || g,
               '反查测试' || g, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 'manual', 'active', '反查测试', '反查测试'
        FROM generate_series(1, :n) g"""), {"parent": house.code, "lon": house.lon, "lat": house.lat, "n": ROOMS})
    seen: list[tuple[str, object]] = []

    def keep(_conn, _cursor, statement, parameters, _context, _many):
        seen.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", keep)
    try:
        near = store.nearest(conn, house.lon, house.lat, k=3)
    finally:
        event.remove(conn, "before_cursor_execute", keep)
    assert near[0][0].code == house.code and near[0][1] < 0.01  # the house number, not one of its rooms
    assert all(rec.level in ("house_number", "building") for rec, _ in near)
    statement, params = seen[-1]
    plan = json.loads(json.dumps(conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement,
                                                      params).scalar_one()))[0]["Plan"]
    scans = [n for n in _plan_nodes(plan) if n.get("Relation Name") == "standard_address"]
    assert [n.get("Index Name") for n in scans] == ["ix_standard_address_reverse"]
    # the KNN scan returned only rows the query keeps: none of the 3,000 rooms was read and dropped
    assert scans[0].get("Rows Removed by Filter", 0) == 0
    assert scans[0]["Actual Rows"] <= 24


def test_the_index_is_partial_on_the_levels_nearest_reads(tx):
    definition = tx.execute(text(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_standard_address_reverse'")).scalar_one()
    assert "gist (geom)" in definition
    assert "'house_number'" in definition and "'building'" in definition and "valid_to IS NULL" in definition


def test_grid_containing_reads_the_catalogue_once(tx):
    """The grid cell at a point, its micro-grid with it; no grid table → None (the one catalogue read)."""
    conn = tx
    house = conn.execute(text("""SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM standard_address
        WHERE valid_to IS NULL AND level = 'house_number' AND geom IS NOT NULL ORDER BY code LIMIT 1""")).one()
    box = "ST_Expand(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :d)"
    for code, level, d, parent in (("999999999999001", "grid", 0.001, "999999999999"),
                                   ("999999999999001001", "microgrid", 0.0005, "999999999999001")):
        conn.execute(text(f"""INSERT INTO grid (code, name, level, parent_code, community_code, geom, source,
            area_m2, compactness, contiguous) VALUES (:code, :name, :level, :parent, '999999999999', ST_Multi({box}), 'manual', 1, 1, true)"""),
                     {"code": code, "name": f"反查测试{level}", "level": level, "parent": parent, "lon": house.lon,
                      "lat": house.lat, "d": d})
    conn.execute(text("UPDATE grid SET valid_to = now() WHERE code NOT LIKE '999999999999%'"))
    seen: list[str] = []

    def keep(_conn, _cursor, statement, *_rest):
        seen.append(statement)

    event.listen(conn, "before_cursor_execute", keep)
    try:
        found = store.grid_containing(conn, house.lon, house.lat)
    finally:
        event.remove(conn, "before_cursor_execute", keep)
    assert len(seen) == 2 and "pg_attribute" in seen[0]  # one catalogue read, then the grid query
    assert found == {"code": "999999999999001", "name": "反查测试grid",
                     "microgrid": {"code": "999999999999001001", "name": "反查测试microgrid"}}
    conn.execute(text("ALTER TABLE grid RENAME TO grid_moved_away"))
    assert store.grid_containing(conn, house.lon, house.lat) is None
