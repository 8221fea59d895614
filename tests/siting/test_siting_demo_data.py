"""Coverage, siting and camera plans on the real demo data in PostGIS (fixtures from tests/conftest.py)."""

import subprocess
import sys

import networkx as nx
import numpy as np
import pytest

from siting import service, store
from siting.network import RoadNetwork


@pytest.fixture(scope="module")
def network(engine):
    with engine.connect() as conn:
        return service.road_network(conn)


def test_walking_distances_agree_with_networkx_on_the_demo_roads(network):
    """Our multi-source Dijkstra against networkx on the same graph, node to node."""
    g = nx.Graph()
    for u, v, w in zip(network.edge_u, network.edge_v, network.edge_len_m, strict=True):
        g.add_edge(int(u), int(v), weight=float(w))
    rng = np.random.default_rng(11)
    main_nodes = np.unique(network.edge_u[network.main_edges])
    src = rng.choice(main_nodes, 5, replace=False)
    dst = rng.choice(main_nodes, 300, replace=False)
    cov = network.distances(network.node_xy[dst], network.node_xy[src], 1500.0)
    got = cov.distances().toarray()
    for k, s in enumerate(src):
        ref = nx.single_source_dijkstra_path_length(g, int(s), cutoff=1500.0, weight="weight")
        for i, t in enumerate(dst):
            if int(t) in ref:
                assert got[i, k] == pytest.approx(ref[int(t)], abs=1e-3)  # zero-length legs carry 1 µm
            else:
                assert got[i, k] == 0 and not cov.matrix()[i, k]


def test_network_uses_osm_node_ids_as_junctions(network):
    assert network.n_nodes > 10_000
    assert (network.node_key > 0).all()  # every vertex came with its OSM node id
    deg = np.bincount(np.concatenate([network.edge_u, network.edge_v]))
    assert (deg >= 3).sum() > 1000  # real junctions were joined


def test_coverage_api_on_demo_data(client):
    walk = client.post("/analysis/coverage", json={"facility_type": "幼儿园", "distance": "walk"})
    line = client.post("/analysis/coverage", json={"facility_type": "kindergarten", "distance": "line"})
    assert walk.status_code == 200 and line.status_code == 200
    sw, sl = walk.json()["summary"], line.json()["summary"]
    assert sw["radius_m"] == 300 and "GB 50180-2018" in sw["clause"]
    assert sw["facilities"] >= 1  # DongChang kindergarten (OSM POI)
    assert sw["households"] == sl["households"] > 10_000
    # walking distance ≥ straight line, so walking coverage can only be smaller
    assert 0 < sw["covered_households"] <= sl["covered_households"] < sl["households"]
    walk_cov = {f["properties"]["id"] for f in walk.json()["layers"]["buildings"]["features"] if f["properties"]["covered"]}
    line_cov = {f["properties"]["id"] for f in line.json()["layers"]["buildings"]["features"] if f["properties"]["covered"]}
    assert walk_cov <= line_cov
    # per-area sums add up to the total, each facility's catchment to the covered households
    assert sum(a["households"] for a in sl["by_area"]) == sl["households"]
    assert sum(f["properties"]["catchment_households"] for f in line.json()["layers"]["facilities"]["features"]) \
        == sl["covered_households"]
    assert line.json()["layers"]["uncovered_area"]["features"]


def test_coverage_api_bad_input(client):
    r = client.post("/analysis/coverage", json={"facility_type": "火箭发射场"})
    assert r.status_code == 422 and "未知设施类型" in r.json()["message"]
    r = client.post("/analysis/coverage", json={"facility_type": "幼儿园", "radius_m": 0})
    assert r.status_code == 422
    r = client.post("/analysis/coverage", json={"facility_type": "幼儿园", "community_code": "999999999999"})
    assert r.status_code == 404


def test_siting_api_adds_sites_and_raises_coverage(client):
    r = client.post("/analysis/siting", json={"facility_type": "幼儿园", "model": "mclp", "new_sites": 2,
                                              "distance": "line"})
    assert r.status_code == 200, r.text
    s = r.json()["summary"]
    assert s["existing"] >= 1 and s["p"] == s["existing"] + 2 and s["gap"] == 0
    assert s["covered_after"] > s["covered_before"]
    statuses = [f["properties"]["status"] for f in r.json()["layers"]["sites"]["features"]]
    assert statuses.count("planned") == 2 and statuses.count("existing") == s["existing"]


def test_siting_api_inline_points_and_errors(client):
    body = {"model": "mclp", "p": 1, "radius_m": 300,
            "demand": [{"id": 1, "lon": 121.49, "lat": 31.23, "weight": 2}, {"id": 2, "lon": 121.491, "lat": 31.23}],
            "sites": [{"id": "a", "lon": 121.4905, "lat": 31.23}, {"id": "b", "lon": 121.52, "lat": 31.25}]}
    r = client.post("/analysis/siting", json=body)
    assert r.status_code == 200 and r.json()["summary"]["sites"] == ["a"]
    assert r.json()["summary"]["covered_weight"] == 3
    assert client.post("/analysis/siting", json=body | {"p": 5}).status_code == 422
    assert client.post("/analysis/siting", json=body | {"demand": []}).status_code == 400
    far = body | {"distance": "walk", "model": "lscp",
                  "sites": [{"id": "x", "lon": 121.9, "lat": 31.0}]}
    r = client.post("/analysis/siting", json=far)
    assert r.status_code == 422 and "outside the network" in r.json()["message"]
    r = client.post("/analysis/siting", json=body | {"demand": [{"id": 1, "lon": 2.35, "lat": 48.85}]})
    assert r.status_code == 422  # outside China


def test_camera_plan_sees_targets_and_reports_blind_spots(engine):
    with engine.connect() as conn:
        plan = service.camera_plan(conn, None, model="bullet-6mm", headings=8)
    s = plan["summary"]
    assert s["cameras"] == len(plan["layers"]["cameras"]["features"]) > 0
    assert s["seen_targets"] + s["blind_spots"] == s["targets"]
    assert s["blind_spots"] == len(plan["layers"]["blind_spots"]["features"])
    assert s["gap"] is not None
    # every planned camera sees something, headings are multiples of 45°
    for f in plan["layers"]["cameras"]["features"]:
        assert f["properties"]["targets_seen"] >= 1
        assert f["properties"]["heading_deg"] % 45 == 0
    if s["area_level"] != "community":
        assert "note" in s  # the fallback is said


def test_camera_occlusion_on_real_footprints(engine):
    """A camera pointed through a real building sees nothing behind it."""
    with engine.connect() as conn:
        fps = store.building_footprints(conn)
    big = max(fps, key=lambda g: g.area)
    c = big.centroid
    minx, miny, maxx, maxy = big.bounds
    from siting.visibility import CameraModel, candidate_cameras, visibility_coverage
    cam_xy = np.array([[c.x, miny - 5.0]])  # just south of the building, looking north through it
    target = np.array([[c.x, maxy + 5.0]])
    model = CameraModel("long", (maxy - miny) + 20.0, 30.0)
    cams = candidate_cameras(cam_xy, headings=1, model=model)
    assert big.intersects(__import__("shapely").LineString([cam_xy[0], target[0]]))
    assert visibility_coverage(target, cams, occluders=fps).nnz == 0
    assert visibility_coverage(target, cams, occluders=[]).nnz == 1


def test_cli_coverage_and_cameras_write_map_and_csv(pg_url, tmp_path):
    p = subprocess.run([sys.executable, "-m", "gis_api.cli", "coverage", "--type", "幼儿园", "--distance", "walk",
                        "-o", str(tmp_path / "cov")], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    html = (tmp_path / "cov" / "coverage_kindergarten.html").read_text(encoding="utf-8")
    assert "leaflet" in html.lower() and "geo_json" in html
    assert "幼儿园" in html or "\\u5e7c\\u513f\\u56ed" in html  # folium may escape the title
    rows = (tmp_path / "cov" / "coverage_kindergarten_buildings.csv").read_text(encoding="utf-8-sig").splitlines()
    assert rows[0].startswith("id,name,households,covered") and len(rows) > 1000
    p = subprocess.run([sys.executable, "-m", "gis_api.cli", "siting", "cameras", "-o", str(tmp_path / "cam")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "cam" / "cameras.html").stat().st_size > 10_000
    assert len((tmp_path / "cam" / "cameras.csv").read_text(encoding="utf-8-sig").splitlines()) > 1
    p = subprocess.run([sys.executable, "-m", "gis_api.cli", "coverage", "--type", "不存在"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode != 0 and "未知设施类型" in p.stderr


def test_roads_without_node_ids_are_joined_by_coordinates():
    ways = [(None, np.array([[0, 0], [100, 0]])), (None, np.array([[100, 0], [100, 100]]))]
    net = RoadNetwork.from_ways(ways)
    assert net.n_nodes == 3


def test_camera_api_best_k(client):
    r = client.post("/analysis/cameras", json={"k": 5, "headings": 4})
    assert r.status_code == 200, r.text
    s = r.json()["summary"]
    assert s["objective"] == "mclp" and s["planned_cameras"] == 5
    assert len(r.json()["layers"]["sectors"]["features"]) == 5
    assert client.post("/analysis/cameras", json={"community_code": "999999999999"}).status_code == 404
    assert client.post("/analysis/cameras", json={"headings": 0}).status_code == 422


def test_existing_cameras_are_kept_and_corners_add_candidates(engine):
    """An existing camera (inserted in a transaction that is rolled back) stays in the plan."""
    from sqlalchemy import text

    with engine.connect() as conn:
        base = service.camera_plan(conn, None, headings=4)
        conn.rollback()  # end the read's implicit transaction
        cams = [f["properties"] for f in base["layers"]["cameras"]["features"]]
        cam = cams[0]
        if base["summary"]["area_level"] == "community":
            # poles stand on roads and communities are bounded by roads: take a camera well inside the
            # community, not one on its boundary (which may fall a hair outside after reprojection)
            for c in cams:
                inside = conn.execute(text("""
                    SELECT ST_Contains(ST_Buffer(geom::geography, -5)::geometry, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
                    FROM admin_unit WHERE code = :code"""),
                    {"lon": c["lon"], "lat": c["lat"], "code": base["summary"]["area_code"]}).scalar_one()
                if inside:
                    cam = c
                    break
            conn.rollback()
        trans = conn.begin()
        try:
            conn.execute(text("""
                INSERT INTO camera (name, model, heading_deg, range_m, fov_deg, status, geom)
                VALUES ('test existing', 'bullet-6mm', :h, 50, 60, 'existing', ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"""),
                {"h": (cam["heading_deg"] + 180) % 360, "lon": cam["lon"], "lat": cam["lat"]})
            plan = service.camera_plan(conn, None, headings=4)
        finally:
            trans.rollback()
        corners = service.camera_plan(conn, None, headings=4, building_corners=True)
    s = plan["summary"]
    assert s["existing_cameras"] == 1
    existing = [f for f in plan["layers"]["cameras"]["features"] if f["properties"]["status"] == "existing"]
    assert len(existing) == 1 and existing[0]["properties"]["heading_deg"] == (cam["heading_deg"] + 180) % 360
    assert s["cameras"] == s["planned_cameras"] + 1
    assert corners["summary"]["candidate_positions"] > base["summary"]["candidate_positions"]
    # more candidates can only make more targets visible; the plan must see every target any candidate sees
    # (LSCP over the coverable targets), so with the same coverable set it needs no more cameras
    cs, bs = corners["summary"], base["summary"]
    assert cs["gap"] == 0 and bs["gap"] == 0
    assert cs["targets"] == bs["targets"]
    assert cs["blind_spots"] <= bs["blind_spots"]
    if cs["seen_targets"] == bs["seen_targets"]:
        assert cs["cameras"] <= bs["cameras"]


def test_cli_plan_next_sites(pg_url, tmp_path):
    p = subprocess.run([sys.executable, "-m", "gis_api.cli", "siting", "plan", "--type", "幼儿园", "--new", "2",
                        "--distance", "line", "-o", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    rows = (tmp_path / "sites.csv").read_text(encoding="utf-8-sig").splitlines()
    assert sum(",planned," in r for r in rows) == 2
    p = subprocess.run([sys.executable, "-m", "gis_api.cli", "siting", "plan", "--type", "幼儿园", "--model", "xyz"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode != 0 and "model" in p.stderr


def test_siting_save_writes_planned_facilities(client, engine):
    from sqlalchemy import text

    body = {"facility_type": "幼儿园", "model": "mclp", "new_sites": 2, "distance": "line", "save": True}
    try:
        for _ in range(2):  # saving twice replaces the plan, never duplicates it
            r = client.post("/analysis/siting", json=body)
            assert r.status_code == 200, r.text
            assert r.json()["summary"]["saved_planned_facilities"] == 2
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT name, source, properties FROM facility WHERE status = 'planned' "
                                     "AND type_code = 'kindergarten'")).all()
        assert len(rows) == 2 and all(r.source == "siting" and r.name.startswith("规划幼儿园") for r in rows)
        assert all(r.properties["new_households_covered"] > 0 for r in rows)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM facility WHERE status = 'planned' AND source = 'siting'"))


def test_households_per_area_and_grid_in_bulk_equal_a_loop_per_polygon(engine, _session_jurisdictions):
    """`service.households_in` (one STRtree query for all polygons; coverage reports sum households per area
    and grid with it) gives each polygon the households a `contains` test per polygon gives, on the demo's
    residential buildings, its provisional communities and built grids, with a real covered / uncovered split."""
    import shapely

    with engine.connect() as conn:
        demand, _ = store.residential_buildings(conn)
        polys = [a.geom for a in store.areas(conn, "community")] + [g.geom for g in store.grids(conn)]
    assert len(demand) > 500 and len(polys) > 20
    pts = shapely.points(demand.xy)
    hh = demand.weight
    covered = np.random.default_rng(3).random(len(hh)) < 0.6
    cov_hh = np.where(covered, hh, 0.0)
    tot, cov, in_any = service.households_in(pts, polys, hh, cov_hh)
    want_any = np.zeros(len(pts), bool)
    for i, poly in enumerate(polys):
        inside = shapely.contains(poly, pts)
        want_any |= inside
        assert tot[i] == pytest.approx(hh[inside].sum()) and cov[i] == pytest.approx(hh[inside & covered].sum())
    assert (in_any == want_any).all() and 0 < in_any.sum() < len(pts) + 1
    assert (tot > 0).sum() > 10
    empty = service.households_in(pts, [], hh, cov_hh)
    assert len(empty[0]) == 0 and not empty[2].any()
