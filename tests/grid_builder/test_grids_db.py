"""Grids on the real PostGIS with the demo loaded: boundaries, build --all, invariants in SQL, API, CLI."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from grid_builder import h3grid, store
from grid_builder.build import BuildConfig
from grid_builder.codes import west_east_north_south
from grid_builder.service import GridError, build_all, build_community, derive_boundaries, validate_stored


@pytest.fixture(scope="module")
def built(engine):
    res = derive_boundaries(engine)
    reports = build_all(engine, BuildConfig())
    return res, reports


def _communities(engine):
    with engine.connect() as conn:
        return [u["code"] for u in store.admin_units(conn, "community") if u["source"] == "provisional"]


def test_provisional_units_are_marked_and_nested(engine, built):
    res, _ = built
    assert res["townships"] >= 2 and res["communities"] >= 8
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT code, level, parent_code, source, (properties->>'households')::int FROM admin_unit "
                "WHERE level IN ('township','community')"
            )
        ).all()
        assert all(r.source == "provisional" for r in rows)
        for r in rows:
            assert len(r.code) == (9 if r.level == "township" else 12) and r.code.startswith(r.parent_code)
        # communities sized like real ones where the data allows: most between 1,000 and 3,000 households
        hh = [r[4] for r in rows if r.level == "community"]
        assert sum(1000 <= h <= 3000 for h in hh) >= 0.7 * len(hh)
        # communities tile their township (within 1 m²) and stay inside their district (5 m²: UTM round trip)
        bad = conn.execute(
            text(
                "SELECT t.code FROM admin_unit t JOIN (SELECT parent_code, ST_Union(geom) g FROM admin_unit "
                "WHERE level = 'community' GROUP BY parent_code) c ON c.parent_code = t.code "
                "WHERE ST_Area(ST_SymDifference(t.geom, c.g)::geography) > 1"
            )
        ).all()
        assert bad == []
        outside = conn.execute(
            text(
                "SELECT c.code FROM admin_unit c JOIN admin_unit d ON d.code = left(c.code, 6) "
                "WHERE c.level = 'community' AND ST_Area(ST_Difference(c.geom, d.geom)::geography) > 5"
            )
        ).all()
        assert outside == []


def test_every_community_passes_the_validator(engine, built):
    _, reports = built
    assert reports and all(r.written for r in reports)
    for code in _communities(engine):
        assert validate_stored(engine, code) == [], code


def test_invariants_in_sql(engine, built):
    with engine.connect() as conn:
        # every building whose anchor lies in a community is in exactly one micro-grid/grid/community
        missing = conn.execute(
            text(
                "SELECT b.id FROM building b JOIN admin_unit c ON c.level = 'community' "
                "AND ST_Intersects(ST_PointOnSurface(b.geom), c.geom) "
                "LEFT JOIN grid_assignment a ON a.building_id = b.id WHERE a.building_id IS NULL"
            )
        ).all()
        assert missing == []
        # the assignment is consistent with the hierarchy (micro-grid in grid in community)
        bad = conn.execute(
            text(
                "SELECT a.building_id FROM grid_assignment a JOIN grid m ON m.code = a.microgrid_code "
                "AND m.valid_to IS NULL WHERE m.parent_code <> a.grid_code OR left(a.grid_code, 12) <> a.community_code"
            )
        ).all()
        assert bad == []
        # union of grids = community within 0.5 m: their symmetric difference is tiny and nowhere wider
        # than 0.5 m (eroding it by 0.25 m leaves nothing); no two grids overlap by more than 1 m²
        diff = conn.execute(
            text(
                "SELECT c.code, ST_Area(d), ST_Area(ST_Buffer(d, -0.25)) FROM admin_unit c JOIN (SELECT community_code, "
                "ST_Union(geom) u FROM grid WHERE valid_to IS NULL AND level = 'grid' GROUP BY community_code) g "
                "ON g.community_code = c.code, LATERAL ST_SymDifference(ST_Transform(c.geom, 32651), "
                "ST_Transform(g.u, 32651)) AS d"
            )
        ).all()
        assert diff and all(area < 1.0 and wide == 0 for _, area, wide in diff), diff
        overlaps = conn.execute(
            text(
                "SELECT a.code, b.code FROM grid a JOIN grid b ON a.level = b.level AND a.code < b.code "
                "AND a.valid_to IS NULL AND b.valid_to IS NULL AND ST_Intersects(a.geom, b.geom) "
                "WHERE ST_Area(ST_Intersection(a.geom, b.geom)::geography) > 1"
            )
        ).all()
        assert overlaps == []
        # micro-grids nest in their grid
        sticking = conn.execute(
            text(
                "SELECT m.code FROM grid m JOIN grid g ON g.code = m.parent_code AND g.valid_to IS NULL "
                "WHERE m.level = 'microgrid' AND m.valid_to IS NULL "
                "AND ST_Area(ST_Difference(m.geom, g.geom)::geography) > 1"
            )
        ).all()
        assert sticking == []
        # households add up: micro-grids → grid → community
        diff = conn.execute(
            text(
                "SELECT g.code FROM grid g JOIN (SELECT parent_code, sum(households) s FROM grid WHERE level = "
                "'microgrid' AND valid_to IS NULL GROUP BY parent_code) m ON m.parent_code = g.code "
                "WHERE g.valid_to IS NULL AND g.households <> m.s"
            )
        ).all()
        assert diff == []
        # codes: grid = community + 3 digits, micro-grid = grid + 2 digits, all geometry valid
        rows = conn.execute(
            text("SELECT code, level, parent_code, ST_IsValid(geom) FROM grid WHERE valid_to IS NULL")
        ).all()
        for code, level, parent, valid in rows:
            assert valid
            assert code.startswith(parent) and len(code) == len(parent) + (3 if level == "grid" else 2)


def test_every_demo_building_is_in_exactly_one_community_grid_and_microgrid(engine, built):
    """All buildings of the demo — including the North Bund part in 虹口区 310109 — not only those that
    happen to lie inside a community: the district set of the provisional boundaries comes from the data."""
    res, _ = built
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM building")).scalar_one()
        held = store.districts_with_buildings(conn)
        per = conn.execute(
            text(
                "SELECT b.id, (SELECT count(*) FROM admin_unit c WHERE c.level = 'community' AND c.valid_to IS NULL "
                "  AND ST_Contains(c.geom, ST_PointOnSurface(b.geom))) AS n_comm, "
                "(SELECT count(*) FROM grid g WHERE g.level = 'grid' AND g.valid_to IS NULL "
                "  AND ST_Contains(g.geom, ST_PointOnSurface(b.geom))) AS n_grid, "
                "(SELECT count(*) FROM grid m WHERE m.level = 'microgrid' AND m.valid_to IS NULL "
                "  AND ST_Contains(m.geom, ST_PointOnSurface(b.geom))) AS n_micro, "
                "a.community_code, a.grid_code, a.microgrid_code "
                "FROM building b LEFT JOIN grid_assignment a ON a.building_id = b.id"
            )
        ).all()
        towns = (
            conn.execute(
                text(
                    "SELECT DISTINCT left(code, 6) FROM admin_unit WHERE level = 'township' "
                    "AND source = 'provisional'"
                )
            )
            .scalars()
            .all()
        )
    assert total > 1000 and len(per) == total
    assert "310109" in held and set(held) <= set(towns)  # 虹口区 (North Bund) holds demo buildings too
    not_one = [
        (r.id, r.n_comm, r.n_grid, r.n_micro) for r in per if (r.n_comm, r.n_grid, r.n_micro) != (1, 1, 1)
    ]
    assert not_one == []
    unassigned = [r.id for r in per if r.microgrid_code is None]
    assert unassigned == []
    # the stored assignment is the micro-grid the building's anchor lies in
    with engine.connect() as conn:
        elsewhere = conn.execute(
            text(
                "SELECT a.building_id, a.microgrid_code, (SELECT string_agg(o.code, ',') FROM grid o "
                "WHERE o.valid_to IS NULL AND o.level = 'microgrid' AND ST_Contains(o.geom, ST_PointOnSurface(b.geom))), "
                "ST_Distance(m.geom::geography, ST_PointOnSurface(b.geom)::geography) "
                "FROM grid_assignment a JOIN building b ON b.id = a.building_id "
                "JOIN grid m ON m.code = a.microgrid_code AND m.valid_to IS NULL "
                "WHERE NOT ST_Contains(m.geom, ST_PointOnSurface(b.geom))"
            )
        ).all()
    assert elsewhere == []


def test_large_buildings_are_split_into_unit_microgrids(client, engine, built):
    """Buildings above the micro-grid band become unit ranges (单元) of 30–50 households, on strips of their
    cell: ranges cover the building's households once, strips nest in the grid and do not overlap."""
    with engine.connect() as conn:
        big = conn.execute(
            text(
                "SELECT a.building_id, a.households, a.grid_code FROM grid_assignment a WHERE a.households > 50 "
                "ORDER BY a.households DESC"
            )
        ).all()
        rows = conn.execute(
            text(
                "SELECT code, parent_code, households, (properties->'building_units'->>'building_id')::bigint, "
                "properties->'building_units'->'units', ST_IsValid(geom), flags FROM grid WHERE level = 'microgrid' "
                "AND valid_to IS NULL AND properties->'building_units' IS NOT NULL"
            )
        ).all()
        overlaps = conn.execute(
            text(
                "SELECT a.code, b.code FROM grid a JOIN grid b ON a.parent_code = b.parent_code AND a.code < b.code "
                "AND a.level = 'microgrid' AND b.level = 'microgrid' AND a.valid_to IS NULL AND b.valid_to IS NULL "
                "AND a.properties ? 'building_units' AND ST_Intersects(a.geom, b.geom) "
                "WHERE ST_Area(ST_Intersection(a.geom, b.geom)::geography) > 1"
            )
        ).all()
    assert big and big[0][1] >= 3000  # the Lujiazui tower of 3,041 estimated households
    assert overlaps == []
    by_building: dict[int, list] = {}
    for code, parent, hh, bid, units, valid, flags in rows:
        # e.g. 58 households: two ranges of 29 are the closest to the band, and are flagged
        assert valid and (30 <= units[1] - units[0] + 1 <= 50 or "outside_band" in flags)
        assert "building_units" in flags
        by_building.setdefault(bid, []).append((units, code, parent, hh))
    for bid, hh, grid_code in big:
        parts = sorted(by_building[bid])
        assert len({p[2] for p in parts}) == 1 and parts[0][2] == grid_code
        assert parts[0][0][0] == 1 and parts[-1][0][1] == hh
        assert all(a[0][1] + 1 == b[0][0] for a, b in zip(parts, parts[1:], strict=False))
    tower = by_building[big[0][0]]
    assert len(tower) >= 61 and all(30 <= p[0][1] - p[0][0] + 1 <= 50 for p in tower)
    # the API shows the unit range; the stats of a unit micro-grid count its share, not the tower
    code = tower[1][1]
    f = client.get(f"/grids/{code}").json()["properties"]
    assert f["building_units"]["building_id"] == big[0][0] and f["households"] == tower[1][3]
    assert client.get(f"/grids/{code}/stats").json()["households"] == tower[1][3]


def test_grid_codes_are_numbered_west_to_east_north_to_south(engine, built):
    with engine.connect() as conn:
        for code in _communities(engine)[:5]:
            rows = conn.execute(
                text(
                    "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_Centroid(ST_Transform(geom, 32651)) p "
                    "FROM grid WHERE community_code = :c AND level = 'grid' AND valid_to IS NULL) s ORDER BY code"
                ),
                {"c": code},
            ).all()
            pts = [(x, y) for _, x, y in rows]
            assert west_east_north_south(pts) == list(range(len(pts)))


def test_band_share_and_flags_are_reported(engine, built):
    _, reports = built
    grids = sum(r.grids for r in reports)
    in_band = sum(r.in_band for r in reports)
    assert grids > 0 and in_band / grids >= 0.6
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT households, flags FROM grid WHERE level = 'grid' AND valid_to IS NULL")
        ).all()
    for hh, flags in rows:
        assert (300 <= hh <= 500) or "outside_band" in flags


def test_rebuild_keeps_history_and_bad_band_writes_nothing(engine, built):
    code = _communities(engine)[0]
    with engine.connect() as conn:
        before = conn.execute(
            text("SELECT max(version), count(*) FROM grid WHERE community_code = :c"), {"c": code}
        ).one()
    rep = build_community(engine, code, BuildConfig(grid_min=200, grid_max=300))
    assert rep.version == before[0] + 1
    with engine.connect() as conn:
        cur = (
            conn.execute(
                text("SELECT DISTINCT version FROM grid WHERE community_code = :c AND valid_to IS NULL"),
                {"c": code},
            )
            .scalars()
            .all()
        )
        closed = conn.execute(
            text(
                "SELECT count(*) FROM grid WHERE community_code = :c AND version = :v "
                "AND valid_to IS NOT NULL"
            ),
            {"c": code, "v": before[0]},
        ).scalar_one()
        snapshot = conn.execute(
            text("SELECT count(*), max(version) FROM grid WHERE community_code = :c"), {"c": code}
        ).one()
    assert cur == [rep.version] and closed > 0
    with pytest.raises(GridError):
        build_community(engine, code, BuildConfig(grid_min=500, grid_max=300))
    with pytest.raises(GridError):
        build_community(engine, "310101", BuildConfig())  # a district, not a community
    with engine.connect() as conn:
        after = conn.execute(
            text("SELECT count(*), max(version) FROM grid WHERE community_code = :c"), {"c": code}
        ).one()
    assert tuple(after) == tuple(snapshot)
    build_community(engine, code, BuildConfig())  # back to the default band for the other tests
    assert validate_stored(engine, code) == []


def test_grids_api(client, engine, built):
    r = client.get("/grids", params={"level": "community"})
    assert r.status_code == 200
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) >= 8
    comm = fc["features"][0]["properties"]
    for key in ("code", "name", "level", "parent_code", "households", "area_m2", "compactness"):
        assert key in comm
    code = comm["code"]
    grids = client.get("/grids", params={"level": "grid", "parent": code}).json()["features"]
    assert grids and all(f["properties"]["parent_code"] == code for f in grids)
    assert abs(sum(f["properties"]["households"] for f in grids) - comm["households"]) <= 1
    g = grids[0]["properties"]["code"]
    micro = client.get("/grids", params={"level": "microgrid", "parent": g}).json()["features"]
    assert micro and all(f["properties"]["code"].startswith(g) for f in micro)
    one = client.get(f"/grids/{g}").json()
    assert one["type"] == "Feature" and one["properties"]["level"] == "grid"
    stats = client.get(f"/grids/{g}/stats").json()
    assert stats["households"] == one["properties"]["households"]
    assert stats["children"]["microgrid"]["count"] == len(micro)
    # grid managers: what PUT /grids/{code}/staff writes shows in the stats
    r = client.put(f"/grids/{g}/staff", json={"person_ref": "person:demo-001", "role": "网格员"})
    assert r.status_code == 200, r.text
    staff = client.get(f"/grids/{g}/stats").json()["staff"]
    assert [(s["person_ref"], s["role"]) for s in staff] == [("person:demo-001", "网格员")]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM grid_staff WHERE person_ref = 'person:demo-001'"))
    cstats = client.get(f"/grids/{code}/stats").json()
    assert cstats["level"] == "community" and cstats["children"]["grid"]["count"] == len(grids)
    # locate a building's anchor: the micro-grid returned is the one the building is assigned to
    with engine.connect() as conn:
        b, x, y, mg = conn.execute(
            text(
                "SELECT a.building_id, ST_X(p), ST_Y(p), a.microgrid_code FROM grid_assignment a JOIN (SELECT id, "
                "ST_PointOnSurface(geom) p FROM building) b ON b.id = a.building_id ORDER BY a.building_id LIMIT 1"
            )
        ).one()
    loc = client.get("/grids/locate", params={"lon": x, "lat": y}).json()
    assert loc["microgrid"]["code"] == mg
    assert loc["grid"]["code"] == mg[:15] and loc["community"]["code"] == mg[:12]
    assert loc["township"]["code"] == mg[:9] and loc["district"]["code"] == mg[:6]
    # bad input: clear 4xx with a message
    for url, params, status in (
        ("/grids", {"level": "street"}, 400),
        ("/grids/999999999999999", {}, 404),
        ("/grids/locate", {"lon": 0, "lat": 0}, 422),  # outside China: invalid input, as for addresses
        ("/grids/locate", {"lon": "x", "lat": 31.2}, 422),
    ):
        r = client.get(url, params=params)
        assert r.status_code == status, (url, r.text)
        assert r.json()["message"]


def test_grid_staff_assignment_keeps_history(client, engine, built):
    """网格员 / 微网格长: PUT closes the previous holder's term (valid_to = new valid_from), never deletes."""
    from gis_api.cli import app

    with engine.connect() as conn:
        g = conn.execute(
            text("SELECT code FROM grid WHERE level = 'grid' AND valid_to IS NULL ORDER BY code LIMIT 1")
        ).scalar_one()
        m = conn.execute(
            text(
                "SELECT code FROM grid WHERE level = 'microgrid' AND valid_to IS NULL "
                "AND parent_code = :g ORDER BY code LIMIT 1"
            ),
            {"g": g},
        ).scalar_one()
    try:
        first = {"person_ref": "person:t-001", "role": "网格员", "valid_from": "2026-01-01T08:00:00+08:00"}
        r = client.put(f"/grids/{g}/staff", json=first)
        assert r.status_code == 200, r.text
        assert r.json()["changed"] and r.json()["closed"] is None
        again = client.put(f"/grids/{g}/staff", json=first).json()  # same person again: nothing changes
        assert again["changed"] is False and again["assignment"]["person_ref"] == "person:t-001"
        r = client.put(
            f"/grids/{g}/staff",
            json={"person_ref": "person:t-002", "role": "网格员", "valid_from": "2026-06-01T08:00:00+08:00"},
        )
        assert r.status_code == 200, r.text
        closed = r.json()["closed"]
        assert closed["person_ref"] == "person:t-001"
        assert datetime.fromisoformat(closed["valid_to"]) == datetime.fromisoformat(
            "2026-06-01T08:00:00+08:00"
        )
        hist = client.get(f"/grids/{g}/staff").json()["staff"]
        assert [(h["person_ref"], h["current"]) for h in hist] == [
            ("person:t-002", True),
            ("person:t-001", False),
        ]
        assert datetime.fromisoformat(hist[1]["valid_to"]) == datetime.fromisoformat(hist[0]["valid_from"])
        cur = client.get(f"/grids/{g}/staff", params={"current": True}).json()["staff"]
        assert [h["person_ref"] for h in cur] == ["person:t-002"]
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT person_ref, valid_to IS NULL FROM grid_staff WHERE grid_code = :g "
                    "ORDER BY valid_from"
                ),
                {"g": g},
            ).all()
        assert [tuple(x) for x in rows] == [("person:t-001", False), ("person:t-002", True)]
        # a micro-grid head on a micro-grid
        r = client.put(f"/grids/{m}/staff", json={"person_ref": "person:t-003", "role": "微网格长"})
        assert r.status_code == 200, r.text
        # bad input: clear 4xx with a message, nothing written
        for code, body, status in (
            (g, {"person_ref": "person:t-009", "role": "楼长"}, 422),  # unknown role
            (g, {"person_ref": "person:t-009", "role": "微网格长"}, 422),  # role of another level
            (m, {"person_ref": "person:t-009", "role": "网格员"}, 422),
            (g, {"person_ref": "  ", "role": "网格员"}, 422),
            (g, {"person_ref": "person:t-009", "role": "网格员", "valid_from": "2026-03-01T00:00:00"}, 422),
            (
                g,
                {"person_ref": "person:t-009", "role": "网格员", "valid_from": "2026-03-01T00:00:00+08:00"},
                409,
            ),
            ("999999999999999", {"person_ref": "person:t-009", "role": "网格员"}, 404),
            (g, {"role": "网格员"}, 422),
        ):
            r = client.put(f"/grids/{code}/staff", json=body)
            assert r.status_code == status, (code, body, r.text)
            assert r.json()["message"]
        assert client.get("/grids/999999999999999/staff").status_code == 404
        with engine.connect() as conn:
            assert (
                conn.execute(
                    text("SELECT count(*) FROM grid_staff WHERE person_ref = 'person:t-009'")
                ).scalar_one()
                == 0
            )
        # CLI: shequ grid staff assign | list
        runner = CliRunner()
        res = runner.invoke(
            app, ["grid", "staff", "assign", m, "--person", "person:t-004", "--role", "微网格长"]
        )
        assert res.exit_code == 0, res.output
        assert "person:t-003" in res.output  # the previous head's term is reported closed
        res = runner.invoke(app, ["grid", "staff", "list", m])
        assert res.exit_code == 0 and "person:t-004" in res.output and "person:t-003" in res.output
        assert "现任" in res.output.split("person:t-004")[1].splitlines()[0]
        res = runner.invoke(app, ["grid", "staff", "assign", m, "--person", "person:t-005", "--role", "楼长"])
        assert res.exit_code == 1 and "角色" in res.output
        res = runner.invoke(app, ["grid", "staff", "list", "999999999999999"])
        assert res.exit_code == 1
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM grid_staff WHERE person_ref LIKE 'person:t-%'"))


def test_h3_api_and_cli_agree(client, engine, built):
    code = _communities(engine)[0]
    counts = {}
    for mode in h3grid.MODES:
        r = client.get("/h3/cells", params={"area": code, "res": 10, "mode": mode})
        assert r.status_code == 200
        fc = r.json()
        counts[mode] = {f["properties"]["cell"]: f["properties"] for f in fc["features"]}
    assert set(counts["full"]) <= set(counts["center"]) <= set(counts["overlap"])
    tot = {m: sum(p["households"] for p in c.values()) for m, c in counts.items()}
    assert tot["full"] <= tot["center"] <= tot["overlap"] and tot["overlap"] > 0
    from gis_api.cli import app

    res = CliRunner().invoke(app, ["grid", "h3", "--area", code, "--res", "10", "--mode", "overlap"])
    assert res.exit_code == 0, res.output
    with engine.connect() as conn:
        stored = store.read_h3_cells(conn, code, 10, "overlap")
        hh = conn.execute(
            text(
                "SELECT sum(households) FROM h3_cell WHERE area_code = :c AND res = 10 AND mode = 'overlap'"
            ),
            {"c": code},
        ).scalar_one()
    assert stored == sorted(counts["overlap"])  # the stored layer = the API = h3 in Python
    assert abs(hh - tot["overlap"]) <= len(stored)
    cell = sorted(counts["center"])[0]
    info = client.get(f"/h3/{cell}").json()
    assert info["parent"] and len(info["children"]) == 7 and "households" in info["counts"]
    assert client.get("/h3/cells", params={"area": code, "res": 13}).status_code == 422
    assert client.get("/h3/cells", params={"area": code, "mode": "inside"}).status_code == 422
    assert client.get("/h3/cells", params={"area": "123456789012"}).status_code == 404
    assert client.get("/h3/not-a-cell").status_code == 422


def test_cli_build_and_validate(engine, built):
    from gis_api.cli import app

    code = _communities(engine)[-1]
    runner = CliRunner()
    res = runner.invoke(app, ["grid", "build", "--community", code])
    assert res.exit_code == 0, res.output
    assert code in res.output
    res = runner.invoke(app, ["grid", "validate", "--community", code])
    assert res.exit_code == 0 and "通过" in res.output
    res = runner.invoke(app, ["grid", "build", "--all"])  # also refreshes the H3 layer of every township
    assert res.exit_code == 0, res.output
    with engine.connect() as conn:
        towns = conn.execute(
            text(
                "SELECT count(DISTINCT area_code) FROM h3_cell WHERE res = 10 AND mode = 'center' "
                "AND length(area_code) = 9"
            )
        ).scalar_one()
    assert towns >= 2
    res = runner.invoke(
        app, ["grid", "build", "--community", code, "--target-min", "600", "--target-max", "100"]
    )
    assert res.exit_code != 0
    res = runner.invoke(app, ["grid", "build"])
    assert res.exit_code != 0


def test_import_city_boundaries(engine, built, tmp_path, undo_import):
    """A city's own community file (one boundary self-intersecting): imported, repaired, flagged, gridded."""
    from shapely.geometry import Polygon, mapping

    from gis_api.cli import app

    with engine.connect() as conn:
        t = store.admin_units(conn, "township")[0]
        comm = [u for u in store.admin_units(conn, "community") if u["parent_code"] == t["code"]][:2]
    a, b = comm
    minx, miny, maxx, maxy = b["geom"].bounds
    bowtie = Polygon([(minx, miny), (maxx, maxy), (maxx, miny), (minx, maxy)])
    new_a, new_b, bad = t["code"] + "801", t["code"] + "802", "12345"
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": new_a, "name": "导入社区甲"},
                "geometry": mapping(a["geom"]),
            },
            {
                "type": "Feature",
                "properties": {"code": new_b, "name": "导入社区乙"},
                "geometry": mapping(bowtie),
            },
            {
                "type": "Feature",
                "properties": {"code": bad, "name": "坏编码"},
                "geometry": mapping(a["geom"]),
            },
        ],
    }
    path = tmp_path / "communities.geojson"
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    try:
        res = CliRunner().invoke(app, ["grid", "import", str(path)])
        assert res.exit_code == 0, res.output
        assert "1 街道" not in res.output and "2 社区" in res.output
        assert "12345" in res.output and new_b in res.output  # problems reported
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT code, source, properties FROM admin_unit WHERE code = ANY(:c)"),
                {"c": [new_a, new_b, bad]},
            ).all()
        got = {r.code: r for r in rows}
        assert set(got) == {new_a, new_b}
        assert got[new_b].properties["flags"] == ["boundary_repaired"] and got[new_a].source == "import"
        rep = build_community(engine, new_a, BuildConfig())
        assert rep.written and rep.grids >= 1
        # new_a has a's exact area: a is retired and its grids closed by the build
        with engine.connect() as conn:
            assert store.admin_unit(conn, a["code"])["valid_to"] is not None
            assert store.current_grid_counts(conn, [a["code"]]) == {}
        assert CliRunner().invoke(app, ["grid", "import", str(tmp_path / "missing.gpkg")]).exit_code == 1
    finally:
        # the imported units go, the provisional ones they retired come back with their grids
        undo_import(engine, [new_a, new_b])


def test_buildings_in_an_area_read_through_the_footprint_index(engine, built):
    """`store.buildings_in(conn, area)` runs once per community in `grid build`: its query must reach the
    buildings by the GiST index on their footprints, not read every building of the database (at 10^7
    addresses that read cost ~1 s per community). The statement it runs is captured and explained with
    sequential scans off: with the bounding-box test the planner can use ix_building_geom, without it only a
    full scan of another index is possible. The answer is the anchor-in-area set computed in SQL."""
    from shapely import wkb
    from sqlalchemy import event

    with engine.connect() as conn:
        code, geom = conn.execute(text(
            "SELECT code, ST_AsBinary(geom) FROM admin_unit WHERE level = 'community' ORDER BY code LIMIT 1")).one()
        area = wkb.loads(bytes(geom))
        seen: list[tuple[str, dict]] = []

        def grab(_conn, _cur, statement, params, _ctx, _many):
            if "FROM building b" in statement:
                seen.append((statement, params))

        event.listen(conn, "before_cursor_execute", grab)
        try:
            got = store.buildings_in(conn, area)
        finally:
            event.remove(conn, "before_cursor_execute", grab)
        assert len(seen) == 1
        statement, params = seen[0]
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, params).all())
        assert "ix_building_geom" in plan, plan
        want = conn.execute(text(
            "SELECT b.id FROM building b, admin_unit c WHERE c.code = :c AND c.level = 'community' "
            "AND ST_Intersects(ST_PointOnSurface(b.geom), c.geom) ORDER BY b.id"), {"c": code}).scalars().all()
        conn.rollback()
    assert want and [b.id for b in got] == list(want)
