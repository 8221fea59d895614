"""Grid-edit workflow over HTTP on the real demo grids: drafts, submit, approve / reject, versions, tiles and
locate at once, the stale-base conflict, rollback, jurisdiction, refusals that write nothing.

The module leaves the community as it found it: every applied edit is rolled back by the tests, and at the
end the community's grids are rebuilt (the builder is seeded, so codes and shapes come back)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from grid_builder.edit.service import load_layout
from tests.grid_builder._edit_helpers import movable_vertex

EDIT_URL = "/grid-edits"


@pytest.fixture(scope="module")
def place(engine, jurisdictions):
    """The grid manager's community and layout; the community is rebuilt after the module."""
    from grid_builder.build import BuildConfig
    from grid_builder.service import build_all

    comm = jurisdictions["community"]
    with engine.connect() as conn:
        _info, layout, _v = load_layout(conn, comm)
    yield {"community": comm, "layout": layout, "grid": jurisdictions["grid"]}
    build_all(engine, BuildConfig(), codes=[comm])


def versions(engine, codes):
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT code, version FROM grid WHERE code = ANY(:c) AND valid_to IS NULL"),
                                 {"c": list(codes)}).all())


def draft(client, headers, community, ops, reason="测试编辑", **extra):
    return client.post(EDIT_URL, json={"community_code": community, "operations": ops, "reason": reason, **extra},
                       headers=headers)


def test_grid_manager_drafts_staff_approve_and_it_shows_at_once(anon_client, role_headers, place, engine):
    gm, staff = role_headers["grid_manager"], role_headers["community"]
    src, dst, a, b = movable_vertex(place["layout"], must_touch=place["grid"])
    ops = [{"op": "move_vertex", "from": src, "to": dst}]
    figs = anon_client.post(f"{EDIT_URL}/preview", json={"community_code": place["community"], "operations": ops},
                            headers=gm).json()
    assert figs["valid"] and {g["code"] for g in figs["grids"]} == {a, b}
    assert all("in_band" in g and 0 < g["compactness"] <= 1 for g in figs["grids"])
    before = versions(engine, [a, b])
    from tiles.tms import tile_for_lonlat

    t = tile_for_lonlat(src[0], src[1], 17)
    tile_url = f"/collections/grid/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
    etag_before = anon_client.get(tile_url).headers.get("etag")

    res = draft(anon_client, gm, place["community"], ops)
    assert res.status_code == 201, res.text
    edit = res.json()
    assert edit["status"] == "draft" and set(edit["touched"]) == {a, b}
    assert versions(engine, [a, b]) == before  # a draft writes no grid
    assert anon_client.post(f"{EDIT_URL}/{edit['id']}/approve", json={}, headers=gm).status_code == 403
    assert anon_client.post(f"{EDIT_URL}/{edit['id']}/approve", json={}, headers=staff).status_code == 409  # not submitted
    assert anon_client.post(f"{EDIT_URL}/{edit['id']}/submit", headers=gm).json()["status"] == "submitted"
    pending = anon_client.get(EDIT_URL, params={"status": "submitted"}, headers=staff).json()["edits"]
    assert edit["id"] in [e["id"] for e in pending]
    res = anon_client.post(f"{EDIT_URL}/{edit['id']}/approve", json={"reason": "同意"}, headers=staff)
    assert res.status_code == 200, res.text
    done = res.json()
    assert done["status"] == "approved" and done["decided_by"] == "m-community"
    after = versions(engine, [a, b])
    assert after == {c: before[c] + 1 for c in (a, b)}  # exactly the two neighbours, one version more
    assert set(done["result"]["written"]) == {a, b}
    hist = anon_client.get(f"/grids/{a}/history").json()["versions"]
    assert hist[-1]["edit"]["id"] == edit["id"] and hist[-1]["edit"]["by"] == "m-community"
    assert hist[-2]["valid_to"] is not None and hist[-1]["valid_to"] is None
    d = anon_client.get(f"/grids/{a}/diff", params={"from": before[a], "to": after[a]}).json()
    assert d["area_gained_m2"] + d["area_lost_m2"] > 0
    assert d["gained"] is not None or d["lost"] is not None
    assert anon_client.get(tile_url).headers.get("etag") != etag_before  # the tile cache let go at once
    with engine.connect() as conn:  # the other grids of the community are untouched
        others = conn.execute(text("SELECT count(*) FROM grid WHERE community_code = :c AND level = 'grid' AND "
                                   "valid_to IS NULL AND source = 'edit'"), {"c": place["community"]}).scalar()
    assert others == 2
    res = anon_client.post(f"{EDIT_URL}/{edit['id']}/rollback", json={"reason": "测试回退"}, headers=staff)
    assert res.status_code == 200, res.text
    assert versions(engine, [a, b]) == {c: before[c] + 2 for c in (a, b)}  # a rollback is a new version
    with engine.connect() as conn:
        same = conn.execute(text(
            "SELECT bool_and(ST_OrderingEquals(n.geom, o.geom)) FROM grid n "
            "JOIN grid o ON o.code = n.code AND o.version = n.version - 2 WHERE n.code = ANY(:c) "
            "AND n.valid_to IS NULL"), {"c": [a, b]}).scalar()
    assert same
    again = anon_client.post(f"{EDIT_URL}/{edit['id']}/rollback", json={"reason": "再次"}, headers=staff)
    assert again.status_code == 409


def test_locate_and_reverse_follow_an_approved_edit(anon_client, client, place, engine):
    from grid_builder.edit.samples import try_apply
    from grid_builder.geom import polygons_of, to_wgs84

    layout = place["layout"]
    src, dst, a, b = movable_vertex(layout)
    ops = [{"op": "move_vertex", "from": src, "to": dst}]
    res_core = try_apply(layout, ops)
    swept = res_core.grids[a].symmetric_difference(layout.grids[a])  # the area that changes hands
    piece = max(polygons_of(swept), key=lambda g: g.area)
    probe = to_wgs84(piece.buffer(-0.05).representative_point() if not piece.buffer(-0.05).is_empty
                     else piece.representative_point())
    params = {"lon": probe.x, "lat": probe.y}
    before = anon_client.get("/grids/locate", params=params).json()["grid"]["code"]
    res = client.post(f"{EDIT_URL}/apply", json={"community_code": place["community"], "operations": ops,
                                                 "reason": "管理员直接生效"})
    assert res.status_code == 201, res.text
    after = anon_client.get("/grids/locate", params=params).json()["grid"]["code"]
    assert {before, after} == {a, b}
    assert anon_client.get("/reverse", params=params).json()["grid"]["code"] == after
    assert client.post(f"{EDIT_URL}/{res.json()['id']}/rollback", json={"reason": "还原"}).status_code == 200
    assert anon_client.get("/grids/locate", params=params).json()["grid"]["code"] == before


def test_second_save_on_a_changed_base_is_a_conflict_and_writes_nothing(anon_client, client, role_headers,
                                                                       place, engine):
    gm = role_headers["grid_manager"]
    src, dst, a, b = movable_vertex(place["layout"], must_touch=place["grid"])
    ops = [{"op": "move_vertex", "from": src, "to": dst}]
    first = draft(anon_client, gm, place["community"], ops).json()
    second = draft(anon_client, gm, place["community"], ops).json()
    assert anon_client.post(f"{EDIT_URL}/{first['id']}/submit", headers=gm).status_code == 200
    ok = anon_client.post(f"{EDIT_URL}/{first['id']}/approve", json={}, headers=role_headers["street"])
    assert ok.status_code == 200, ok.text
    now = versions(engine, [a, b])
    for call in (lambda: anon_client.post(f"{EDIT_URL}/{second['id']}/submit", headers=gm),
                 lambda: client.post(f"{EDIT_URL}/{second['id']}/approve", json={}),
                 lambda: anon_client.put(f"{EDIT_URL}/{second['id']}", headers=gm,
                                         json={"community_code": place["community"], "operations": ops})):
        res = call()
        assert res.status_code == 409, res.text
        assert res.json()["error"] == "stale_base"
        assert {x["code"] for x in res.json()["detail"]["changed"]} & {a, b}
    stale = draft(anon_client, gm, place["community"], ops, base_versions={a: now[a] - 1})
    assert stale.status_code == 409
    assert versions(engine, [a, b]) == now
    assert client.get(f"{EDIT_URL}/{second['id']}").json()["status"] == "draft"
    assert client.post(f"{EDIT_URL}/{first['id']}/rollback", json={"reason": "还原"}).status_code == 200


def test_reject_needs_a_reason(anon_client, role_headers, place):
    gm, staff = role_headers["grid_manager"], role_headers["community"]
    src, dst, _a, _b = movable_vertex(place["layout"], must_touch=place["grid"])
    e = draft(anon_client, gm, place["community"], [{"op": "move_vertex", "from": src, "to": dst}]).json()
    anon_client.post(f"{EDIT_URL}/{e['id']}/submit", headers=gm)
    assert anon_client.post(f"{EDIT_URL}/{e['id']}/reject", json={"reason": " "}, headers=staff).status_code == 422
    res = anon_client.post(f"{EDIT_URL}/{e['id']}/reject", json={"reason": "边界应沿道路"}, headers=staff).json()
    assert res["status"] == "rejected" and res["decision_reason"] == "边界应沿道路"


def test_refused_edits_name_the_rule_and_place_and_write_nothing(client, place, engine):
    layout = place["layout"]
    codes = sorted(layout.grids)
    before = versions(engine, codes)
    apart = [(x, y) for i, x in enumerate(codes) for y in codes[i + 1:]
             if layout.grids[x].distance(layout.grids[y]) > 1]
    bad = [([{"op": "split", "grid": codes[0], "line": [[121.0, 31.0], [121.1, 31.1], [121.0, 31.1],
                                                          [121.1, 31.0]]}], "split_line_self_intersecting")]
    if apart:
        bad.append(([{"op": "merge", "grids": list(apart[0])}], "merge_not_adjacent"))
    for ops, rule in bad:
        for url in (EDIT_URL, f"{EDIT_URL}/apply"):
            res = client.post(url, json={"community_code": place["community"], "operations": ops})
            assert res.status_code == 422, res.text
            body = res.json()
            assert body["error"] == "edit_refused" and body["detail"]["rule"] == rule and rule in body["message"]
            assert body["detail"]["geometry"] is not None
    assert versions(engine, codes) == before


def test_jurisdiction(anon_client, role_headers, place, jurisdictions):
    gm = role_headers["grid_manager"]
    layout = place["layout"]
    far = [c for c in sorted(layout.grids) if c != place["grid"]
           and layout.grids[c].distance(layout.grids[place["grid"]]) > 1]
    if far:  # a grid manager cannot touch grids that are not theirs
        from tests.grid_builder._edit_helpers import shared_vertices, lonlat  # noqa: I001
        others = [(a, b, p) for a, b, p in shared_vertices(layout) if place["grid"] not in (a, b)]
        if others:
            a, b, p = others[0]
            res = draft(anon_client, gm, place["community"], [{"op": "move_vertex", "from": lonlat(p),
                                                                 "to": lonlat(p)}])
            assert res.status_code == 403 and res.json()["error"] == "outside_jurisdiction"
    other = jurisdictions["other_community"]
    for role in ("grid_manager", "community"):
        res = anon_client.post(f"{EDIT_URL}/preview", headers=role_headers[role], json={
            "community_code": other, "operations": [{"op": "merge", "grids": [f"{other}001", f"{other}002"]}]})
        assert res.status_code == 403, (role, res.text)
    for role in ("planner", "police", "public"):
        res = draft(anon_client, role_headers[role], place["community"], [{"op": "merge", "grids": ["1", "2"]}])
        assert res.status_code in (401, 403)
    assert anon_client.post(f"{EDIT_URL}/apply", headers=role_headers["community"], json={
        "community_code": place["community"], "operations": [{"op": "merge", "grids": ["1", "2"]}]}).status_code == 403


def test_split_then_merge_keep_the_code_map(client, place, engine):
    from tests.grid_builder._edit_helpers import try_apply
    from tests.grid_builder.test_grid_edit_ops import _lines_across, _ll

    layout = place["layout"]
    for code in sorted(layout.grids):
        for line in _lines_across(layout.grids[code]):
            ops = [{"op": "split", "grid": code, "line": _ll(line)}]
            res = try_apply(layout, ops)
            if res is None or len(res.created) != 2:
                continue
            out = client.post(f"{EDIT_URL}/apply", json={"community_code": place["community"], "operations": ops,
                                                         "reason": "拆分"})
            assert out.status_code == 201, out.text
            new = out.json()["result"]["created"]
            assert len(new) == 2 and versions(engine, [code]) == {}
            hist = client.get(f"/grids/{code}/history").json()
            assert {m["new_code"] for m in hist["code_map"]} == set(new)
            merged = client.post(f"{EDIT_URL}/apply", json={"community_code": place["community"],
                                                            "operations": [{"op": "merge", "grids": new}]})
            assert merged.status_code == 201, merged.text
            (m,) = merged.json()["result"]["created"]
            assert client.get(f"/grids/{m}/history").json()["code_map"][0]["old_code"] in new
            for e in (merged.json(), out.json()):  # undo in reverse order: the split's code comes back
                assert client.post(f"{EDIT_URL}/{e['id']}/rollback", json={"reason": "还原"}).status_code == 200
            assert code in versions(engine, [code])
            return
    pytest.fail("no straight line split a demo grid in two")


def test_moved_buildings_take_their_assignment_and_come_back_on_rollback(client, anon_client, place, engine):
    from grid_builder.edit.samples import shared_vertices, try_apply
    from grid_builder.geom import to_wgs84

    layout = place["layout"]
    for a, b, _p in shared_vertices(layout)[:40]:
        mine = sorted((x for x in layout.buildings if layout.grids[a].contains(x.anchor)),
                      key=lambda x: layout.grids[b].distance(x.footprint))
        for bld in mine[:5]:
            ops = [{"op": "move_buildings", "buildings": [bld.id], "to": b}]
            if try_apply(layout, ops) is None:
                continue
            res = client.post(f"{EDIT_URL}/apply", json={"community_code": place["community"], "operations": ops,
                                                         "reason": "楼栋划入相邻网格"})
            assert res.status_code == 201, res.text
            assert [m["building"] for m in res.json()["result"]["moved_buildings"]] == [bld.id]

            def assigned(bid: int):
                with engine.connect() as conn:
                    return conn.execute(text("SELECT grid_code, microgrid_code FROM grid_assignment WHERE "
                                             "building_id = :b"), {"b": bid}).one()

            g, m = assigned(bld.id)
            assert g == b and m.startswith(b)
            pt = to_wgs84(bld.anchor)
            found = anon_client.get("/grids/locate", params={"lon": pt.x, "lat": pt.y}).json()
            assert found["grid"]["code"] == b and found["microgrid"]["code"] == m
            back = client.post(f"{EDIT_URL}/{res.json()['id']}/rollback", json={"reason": "还原"})
            assert back.status_code == 200, back.text
            assert assigned(bld.id)[0] == a
            return
    pytest.fail("no building could move to a neighbouring grid")


_NEAREST = """
WITH p AS (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 4326), 32651) AS g),
t AS (SELECT kind, CASE WHEN kind = 'road' THEN m ELSE ST_Boundary(m) END AS line FROM (
        SELECT 'road' AS kind, ST_Transform(geom, 32651) AS m FROM road
        UNION ALL SELECT 'block', ST_Transform(geom, 32651) FROM street_block WHERE community_code = :c
        UNION ALL SELECT 'building', ST_Transform(geom, 32651) FROM building) x, p
      WHERE ST_DWithin(x.m, p.g, :tol)),
v AS (SELECT 0 AS pass, kind, (ST_DumpPoints(line)).geom AS g FROM t
      UNION ALL SELECT 1, kind, ST_ClosestPoint(line, p.g) FROM t, p)
SELECT pass, kind, ST_X(ST_Transform(v.g, 4326)), ST_Y(ST_Transform(v.g, 4326)), ST_Distance(v.g, p.g) AS d
FROM v, p WHERE ST_Distance(v.g, p.g) <= :tol ORDER BY pass, d LIMIT 5
"""


def test_snapping_to_roads_block_edges_and_footprints(anon_client, role_headers, place, engine):
    """A dragged vertex 1.2 m off a grid corner snaps, within the tolerance asked for, to the nearest vertex of
    a road, a street block or a footprint, else the nearest point on one of their lines — the one PostGIS
    finds independently; 0 (the server's default)
    leaves it; the snapped point is what the draft stores; a tolerance above 10 m is refused."""
    from shapely.geometry import Point

    from grid_builder.edit.samples import lonlat, shared_vertices
    from grid_builder.geom import to_wgs84

    gm = role_headers["community"]  # community staff may edit any grid of the community
    out = None
    for _a, _b, v in shared_vertices(place["layout"])[:40]:  # the first grid corner with a target near
        src = lonlat(v)
        p = to_wgs84(Point(v.x + 1.2, v.y + 0.5))
        raw = [{"op": "move_vertex", "from": src, "to": [p.x, p.y]}]
        with engine.connect() as conn:
            near = [r[1:] for r in conn.execute(text(_NEAREST), {"x": p.x, "y": p.y, "c": place["community"],
                                                                     "tol": 3.0}).all()]
        if not near:
            continue
        body = {"community_code": place["community"], "operations": raw, "snap_m": 3}
        res = anon_client.post(f"{EDIT_URL}/preview", json=body, headers=gm)
        if res.status_code == 200:
            out = res.json()
            break
        assert res.status_code == 422, res.text  # the snapped move broke a rule there: try the next corner
    assert out is not None, "no grid corner of the test community has a road, block or footprint within 3 m"
    to = out["operations"][0]["to"]
    assert abs(to[0] - near[0][1]) < 1e-7 and abs(to[1] - near[0][2]) < 1e-7  # ~1 cm
    (s,) = out["snaps"]
    assert s["op"] == 0 and s["point"] == "to" and abs(s["distance_m"] - near[0][3]) < 0.02
    assert s["kind"] in {k for k, _x, _y, d in near if d <= near[0][3] + 0.01}
    for off in ({"snap_m": 0}, {}):  # off, and the server's default (SHEQU_EDIT_SNAP_M = 0)
        res = anon_client.post(f"{EDIT_URL}/preview", json={**body, **off} if off else
                               {k: v for k, v in body.items() if k != "snap_m"}, headers=gm)
        assert res.status_code in (200, 422), res.text
        if res.status_code == 200:
            assert res.json()["operations"][0]["to"] == [p.x, p.y] and res.json()["snaps"] == []
    assert anon_client.post(f"{EDIT_URL}/preview", json={**body, "snap_m": 11}, headers=gm).status_code == 422
    res = draft(anon_client, gm, place["community"], raw, snap_m=3)
    assert res.status_code == 201, res.text
    assert res.json()["operations"][0]["snap_m"] == 3
    stored = res.json()["operations"][0]["to"]
    assert stored == to  # the draft keeps the snapped point: approval re-applies exactly what was previewed
    again = anon_client.post(f"{EDIT_URL}/preview", json={**body, "operations": out["operations"], "snap_m": 3},
                             headers=gm).json()
    assert again["operations"] == out["operations"] and again["snaps"] == []  # snapped once, never again
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM grid_edit WHERE id = :i"), {"i": res.json()["id"]})


_NESTING = """
WITH m AS (SELECT geom FROM grid WHERE parent_code = :g AND level = 'microgrid' AND valid_to IS NULL),
g AS (SELECT geom FROM grid WHERE code = :g AND valid_to IS NULL),
u AS (SELECT ST_Union(geom) AS geom FROM m)
SELECT ST_Area(ST_Difference(u.geom, g.geom)::geography), ST_Area(ST_Difference(g.geom, u.geom)::geography),
       (SELECT count(*) FROM m a, m b WHERE a.geom < b.geom AND ST_Intersects(a.geom, b.geom)
          AND ST_Area(ST_Intersection(a.geom, b.geom)::geography) > 1.0),
       (SELECT count(*) FROM grid_assignment ga JOIN building bd ON bd.id = ga.building_id WHERE ga.grid_code = :g
          AND NOT EXISTS (SELECT 1 FROM grid x WHERE x.code = ga.microgrid_code AND x.valid_to IS NULL
                          AND x.parent_code = :g AND ST_Covers(x.geom, ST_PointOnSurface(bd.geom))))
FROM u, g
"""


def test_micro_grid_edits_inside_a_grid_keep_nesting(anon_client, role_headers, place, engine):
    """The same operations one level down ("level": "microgrid", "in": the grid): a shared micro-grid vertex
    moved inside the grid — preview (30–50 band), draft, submit, approval — writes new versions of exactly
    those micro-grids, the grid keeps its version, and PostGIS finds the micro-grids still nested, without
    overlap, every building of the grid in the micro-grid holding its anchor; a rollback restores the
    micro-grids' previous geometry as new versions, still nested. A vertex of the grid's own boundary cannot
    move at this level; levels cannot be mixed."""
    from shapely.geometry import Point

    from grid_builder.edit.samples import lonlat, shared_vertices, try_apply
    from grid_builder.edit.service import load_micro_layout

    gm, staff = role_headers["grid_manager"], role_headers["community"]
    grid = place["grid"]
    with engine.connect() as conn:
        _info, micro, v0 = load_micro_layout(conn, place["community"], grid)
    ops, moved = None, set()
    for _a, _b, p in shared_vertices(micro):
        if micro.community.boundary.distance(p) < 3.0:
            continue
        raw = [{"op": "move_vertex", "level": "microgrid", "in": grid, "from": lonlat(p),
                "to": lonlat(Point(p.x + 1.5, p.y + 1.0))}]
        res = try_apply(micro, raw)
        if res is not None:
            ops, moved = raw, set(res.changed)  # type: ignore[attr-defined]
            break
    assert ops is not None and len(moved) >= 2, "no inner shared micro-grid vertex of the test grid can move"
    a, b = sorted(moved)[:2]
    figs = anon_client.post(f"{EDIT_URL}/preview", json={"community_code": place["community"], "operations": ops},
                            headers=gm).json()
    assert figs["valid"], figs.get("issues")
    assert {g["code"] for g in figs["grids"]} == moved and figs["grids"][0]["band"] == [30, 50]
    assert figs["touched"] == [grid]
    res = draft(anon_client, gm, place["community"], ops)
    assert res.status_code == 201, res.text
    eid = res.json()["id"]
    assert set(res.json()["base_versions"]) == set(v0)  # the grid and every micro-grid of it
    assert anon_client.post(f"{EDIT_URL}/{eid}/submit", headers=gm).status_code == 200
    res = anon_client.post(f"{EDIT_URL}/{eid}/approve", json={"reason": "同意"}, headers=staff)
    assert res.status_code == 200, res.text
    assert set(res.json()["result"]["written"]) == moved
    now = versions(engine, list(v0))
    assert now == {c: v0[c] + (1 if c in moved else 0) for c in v0}  # the grid keeps its version
    with engine.connect() as conn:
        over, gap, overlaps, misplaced = conn.execute(text(_NESTING), {"g": grid}).one()
    assert over < 1.0 and gap < 1.0 and overlaps == 0 and misplaced == 0
    res = anon_client.post(f"{EDIT_URL}/{eid}/rollback", json={"reason": "还原"}, headers=staff)
    assert res.status_code == 200, res.text  # a rollback of a micro-grid edit: one more version, nothing deleted
    rb = res.json()
    assert rb["kind"] == "rollback" and rb["rollback_of"] == eid and rb["touched"] == [grid]
    assert set(rb["result"]["written"]) == moved and rb["result"]["level"] == "microgrid"
    assert versions(engine, list(v0)) == {c: v0[c] + (2 if c in moved else 0) for c in v0}
    with engine.connect() as conn:
        same = conn.execute(text(
            "SELECT bool_and(ST_OrderingEquals(n.geom, o.geom)) FROM grid n JOIN grid o ON o.code = n.code "
            "AND o.version = n.version - 2 WHERE n.code = ANY(:c) AND n.valid_to IS NULL"), {"c": sorted(moved)}).scalar()
        over, gap, overlaps, misplaced = conn.execute(text(_NESTING), {"g": grid}).one()
    assert same  # the micro-grids' previous geometry exactly
    assert over < 1.0 and gap < 1.0 and overlaps == 0 and misplaced == 0
    assert anon_client.post(f"{EDIT_URL}/{eid}/rollback", json={"reason": "再次"}, headers=staff).status_code == 409

    corner = Point(micro.community.geoms[0].exterior.coords[0])
    c = micro.community.centroid
    d = max(1e-9, corner.distance(c))
    out = Point(corner.x + (corner.x - c.x) / d * 3, corner.y + (corner.y - c.y) / d * 3)
    bad = [{"op": "move_vertex", "level": "microgrid", "in": grid, "from": lonlat(corner), "to": lonlat(out)}]
    res = anon_client.post(f"{EDIT_URL}/preview", json={"community_code": place["community"], "operations": bad},
                           headers=staff)
    body = res.json()
    assert (res.status_code == 422 and body["detail"]["rule"] in ("microgrid_not_nested", "self_intersection")) or \
        (res.status_code == 200 and not body["valid"]
         and {i["rule"] for i in body["issues"]} & {"microgrid_not_nested", "gap"}), body
    mixed = [ops[0], {"op": "merge", "grids": [a, b]}]
    res = anon_client.post(f"{EDIT_URL}/preview", json={"community_code": place["community"], "operations": mixed},
                           headers=staff)
    assert res.status_code == 422 and res.json()["detail"]["rule"] == "bad_operation"


def _items(client, layer, **params):
    res = client.get(f"/collections/{layer}/items", params={"limit": 10000, **params})
    assert res.status_code == 200, res.text
    return {f["properties"]["code"]: f for f in res.json()["features"]}


def test_items_datetime_answers_the_versions_valid_then(client, anon_client, place, engine):
    """The map's "as of" date rests on OGC API Features: with ``datetime`` the grid and micro-grid layers
    answer the versions valid at that instant (the edited grids' old rows before an applied edit, the new
    ones after it), without it only the current rows; a rollback is one more version, so the instant after
    the edit still answers the edited boundary."""
    from shapely.geometry import shape

    from grid_builder.edit.service import load_layout

    comm = place["community"]
    with engine.connect() as conn:
        _info, layout, _v = load_layout(conn, comm)
    src, dst, a, b = movable_vertex(layout, must_touch=place["grid"])
    with engine.connect() as conn:
        t0 = conn.execute(text("SELECT clock_timestamp()")).scalar()
    before = versions(engine, [a, b])
    micro_before = {c: f["properties"]["version"] for c, f in _items(client, "microgrid", community_code=comm).items()
                    if f["properties"]["parent_code"] == a}
    res = client.post(f"{EDIT_URL}/apply", json={"community_code": comm, "reason": "时点测试",
                                                 "operations": [{"op": "move_vertex", "from": src, "to": dst}]})
    assert res.status_code == 201, res.text
    eid = res.json()["id"]
    try:
        with engine.connect() as conn:
            t1 = conn.execute(text("SELECT clock_timestamp()")).scalar()
        then = _items(anon_client, "grid", community_code=comm, datetime=t0.isoformat())
        now = _items(anon_client, "grid", community_code=comm, datetime=t1.isoformat())
        live = _items(anon_client, "grid", community_code=comm)
        assert {c: then[c]["properties"]["version"] for c in (a, b)} == before
        assert {c: now[c]["properties"]["version"] for c in (a, b)} == {c: before[c] + 1 for c in (a, b)}
        assert {c: f["properties"]["version"] for c, f in live.items()} == \
            {c: f["properties"]["version"] for c, f in now.items()}  # no datetime: the current rows only
        assert set(then) == set(live)  # one version of each grid at each instant, no duplicates
        old_a, new_a = shape(then[a]["geometry"]), shape(now[a]["geometry"])
        vertices = lambda g: [p for poly in getattr(g, "geoms", [g]) for p in poly.exterior.coords]  # noqa: E731
        assert min(abs(x - src[0]) + abs(y - src[1]) for x, y in vertices(old_a)) < 1e-6  # the old corner
        assert min(abs(x - dst[0]) + abs(y - dst[1]) for x, y in vertices(new_a)) < 1e-6  # the moved one
        micro_then = _items(client, "microgrid", community_code=comm, datetime=t0.isoformat())
        assert {c: micro_then[c]["properties"]["version"] for c in micro_before} == micro_before
        micro_now = {c: f for c, f in _items(client, "microgrid", community_code=comm).items()
                     if f["properties"]["parent_code"] == a}
        assert all(f["properties"]["version"] > micro_before.get(c, 0) for c, f in micro_now.items())
        span = anon_client.get("/collections/grid/items", params={"code": a, "datetime": f"{t0.isoformat()}/{t1.isoformat()}"})
        assert sorted(f["properties"]["version"] for f in span.json()["features"]) == [before[a], before[a] + 1]
        hidden = anon_client.get("/collections/microgrid/items", params={"datetime": t0.isoformat()})
        assert hidden.status_code in (401, 403, 404)  # micro-grids stay staff-only, with or without a date
    finally:
        res = client.post(f"{EDIT_URL}/{eid}/rollback", json={"reason": "时点测试还原"})
        assert res.status_code == 200, res.text


def test_micro_grid_merge_rolls_back_and_a_changed_grid_blocks_it(client, anon_client, role_headers, place, engine):
    """Rolling back a micro-grid merge ends the merged code and brings the merged micro-grids back (new
    versions, their old geometry, a `rollback` code-map entry, buildings assigned to them again); once the
    grid itself has changed shape, a micro-grid edit made before cannot be rolled back (409 naming the grid)."""
    from grid_builder.edit.ops import shared_length
    from grid_builder.edit.samples import try_apply
    from grid_builder.edit.service import load_micro_layout

    staff, comm = role_headers["community"], place["community"]

    def micro_merge(grid):
        with engine.connect() as conn:
            info, micro, _v = load_micro_layout(conn, comm, grid)
        codes = sorted(c for c in micro.grids if not info["micro"][c].get("part"))  # unit strips never merge
        for i, x in enumerate(codes):
            for y in codes[i + 1:]:
                raw = [{"op": "merge", "level": "microgrid", "in": grid, "grids": [x, y]}]
                if shared_length(micro.grids[x], micro.grids[y]) > 5 and try_apply(micro, raw) is not None:
                    return raw, [x, y]
        return None, []

    with engine.connect() as conn:
        _info, layout, _v = load_layout(conn, comm)
    grid = next((g for g in sorted(layout.grids) if micro_merge(g)[0] is not None), None)
    assert grid is not None, "no grid of the test community has two adjacent micro-grids that can merge"
    ops, pair = micro_merge(grid)
    v0 = versions(engine, [grid, *pair])
    with engine.connect() as conn:
        members = dict(conn.execute(text("SELECT building_id, microgrid_code FROM grid_assignment WHERE "
                                         "microgrid_code = ANY(:c)"), {"c": pair}).all())
    res = client.post(f"{EDIT_URL}/apply", json={"community_code": comm, "operations": ops, "reason": "合并微网格"})
    assert res.status_code == 201, res.text
    eid, merged = res.json()["id"], res.json()["result"]["created"]
    assert len(merged) == 1 and versions(engine, pair) == {}
    res = anon_client.post(f"{EDIT_URL}/{eid}/rollback", json={"reason": "撤销合并"}, headers=staff)
    assert res.status_code == 200, res.text
    assert versions(engine, [grid, *pair, *merged]) == {grid: v0[grid], **{c: v0[c] + 1 for c in pair}}
    with engine.connect() as conn:
        same = conn.execute(text(
            "SELECT bool_and(ST_OrderingEquals(n.geom, o.geom)) FROM grid n JOIN grid o ON o.code = n.code "
            "AND o.version = n.version - 1 WHERE n.code = ANY(:c) AND n.valid_to IS NULL"), {"c": pair}).scalar()
        back = dict(conn.execute(text("SELECT building_id, microgrid_code FROM grid_assignment WHERE "
                                      "building_id = ANY(:b)"), {"b": list(members)}).all())
        cmap = conn.execute(text("SELECT kind, old_code, new_code FROM grid_code_map WHERE edit_id = :e"),
                            {"e": res.json()["id"]}).all()
        over, gap, overlaps, misplaced = conn.execute(text(_NESTING), {"g": grid}).one()
    assert same and back == members
    assert sorted(cmap) == sorted(("rollback", merged[0], c) for c in pair)
    assert over < 1.0 and gap < 1.0 and overlaps == 0 and misplaced == 0

    # a micro-grid edit, then the grid's own boundary moves: the micro-grid edit can no longer be undone
    ops, pair = micro_merge(grid)
    assert ops is not None
    res = client.post(f"{EDIT_URL}/apply", json={"community_code": comm, "operations": ops, "reason": "合并微网格"})
    assert res.status_code == 201, res.text
    micro_id = res.json()["id"]
    with engine.connect() as conn:
        _info, layout, _v = load_layout(conn, comm)
    src, dst, _a, _b = movable_vertex(layout, must_touch=grid)
    res = client.post(f"{EDIT_URL}/apply", json={"community_code": comm, "reason": "边界调整",
                                                 "operations": [{"op": "move_vertex", "from": src, "to": dst}]})
    assert res.status_code == 201, res.text
    grid_id = res.json()["id"]
    blocked = anon_client.post(f"{EDIT_URL}/{micro_id}/rollback", json={"reason": "撤销"}, headers=staff)
    assert blocked.status_code == 409 and blocked.json()["error"] == "stale_base"
    assert grid in {x["code"] for x in blocked.json()["detail"]["changed"]}
    assert client.post(f"{EDIT_URL}/{grid_id}/rollback", json={"reason": "还原"}).status_code == 200
