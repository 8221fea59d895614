"""Coverage by straight line, walking distance on a hand-made grid, camera visibility and occlusion."""

import numpy as np
import pytest
from shapely.geometry import box

from siting.coverage import line_coverage
from siting.network import NetworkError, RoadNetwork
from siting.visibility import CameraModel, bearing_deg, candidate_cameras, visibility_coverage


def test_line_coverage_matches_brute_force_and_is_sparse():
    rng = np.random.default_rng(7)
    d = rng.uniform(0, 1000, (300, 2))
    s = rng.uniform(0, 1000, (80, 2))
    s[0] = d[0]  # a site on a demand point covers it at distance 0
    cov = line_coverage(d, s, 150.0)
    full = np.hypot(*(d[:, None, :] - s[None, :, :]).transpose(2, 0, 1))
    expected = full <= 150.0
    got = np.zeros_like(expected)
    got[cov.demand_idx, cov.indices] = True
    assert (got == expected).all()
    assert np.allclose(cov.distance_m, full[cov.demand_idx, cov.indices])
    assert cov.distances()[0, 0] == 0 and cov.matrix()[0, 0] == 1
    assert cov.nnz == expected.sum() < expected.size / 5


def test_line_coverage_rejects_non_positive_radius():
    with pytest.raises(ValueError):
        line_coverage([[0, 0]], [[1, 1]], 0)


def _grid(n=5, step=100.0):
    """n×n street grid, node ids r*10+c, 100 m blocks."""
    ways = []
    for r in range(n):
        ways.append(([r * 10 + c for c in range(n)], np.array([[c * step, r * step] for c in range(n)])))
    for c in range(n):
        ways.append(([r * 10 + c for r in range(n)], np.array([[c * step, r * step] for r in range(n)])))
    return RoadNetwork.from_ways(ways)


def test_walking_distance_on_a_grid_by_hand():
    net = _grid()
    assert net.n_nodes == 25 and len(net.edge_u) == 40
    demand = np.array([[50, 10], [250, 300], [400, 400]])
    sites = np.array([[0, 0], [60, 0], [390, 410]])
    d = net.distances(demand, sites, 1000).distances().toarray()
    # (50,10): 10 m to the street, 50 m to the corner (0,0); 10 m along the same street to (60,0)
    assert d[0, 0] == pytest.approx(60) and d[0, 1] == pytest.approx(20)
    # (250,300) → (390,410): 50 to (300,300), 100 north, 90 east, 10 to the site = 250 (Manhattan, not 180 straight)
    assert d[1, 2] == pytest.approx(250)
    assert d[2, 2] == pytest.approx(20)
    # cut-off keeps only pairs within it
    near = net.distances(demand, sites, 100)
    assert set(zip(near.demand_idx.tolist(), near.indices.tolist(), strict=True)) == {(0, 0), (0, 1), (2, 2)}


def test_points_off_the_network_are_reported():
    net = _grid()
    with pytest.raises(NetworkError) as err:
        net.snap(np.array([[50, 0], [5000, 5000]]), max_snap_m=200)
    assert err.value.indices == [1]


def test_walk_distance_is_never_shorter_than_straight_line():
    net = _grid(8)
    rng = np.random.default_rng(3)
    d = rng.uniform(0, 700, (200, 2))
    s = rng.uniform(0, 700, (30, 2))
    walk = net.distances(d, s, 400)
    straight = np.hypot(*(d[walk.demand_idx] - s[walk.indices]).T)
    assert (walk.distance_m >= straight - 1e-6).all()


def test_camera_sees_within_range_and_sector_only():
    cams = candidate_cameras([[0, 0]], headings=4, model=CameraModel("t", 50.0, 60.0))  # N, E, S, W
    targets = np.array([[0, 40], [40, 0], [30, 30], [0, 60], [-40, 0]])
    seen = visibility_coverage(targets, cams).matrix().toarray().astype(bool)
    assert seen[0].tolist() == [True, False, False, False]  # north camera
    assert seen[1].tolist() == [False, True, False, False]  # east camera
    assert not seen[2].any()  # 45°: outside both ±30° sectors
    assert not seen[3].any()  # beyond 50 m
    assert seen[4].tolist() == [False, False, False, True]


def test_building_blocks_the_sight_line():
    cams = candidate_cameras([[0, 0]], headings=1, model=CameraModel("t", 100.0, 90.0))  # looks north
    targets = np.array([[0, 60], [30, 60]])
    building = box(-5, 20, 5, 30)  # straight between the camera and the first target
    cov = visibility_coverage(targets, cams, occluders=[building])
    seen = cov.matrix().toarray()[:, 0]
    assert seen.tolist() == [0, 1]
    # without the building both are seen
    assert visibility_coverage(targets, cams).matrix().toarray()[:, 0].tolist() == [1, 1]


def test_camera_on_a_wall_is_not_hidden_by_its_own_building():
    wall = box(-10, -20, 10, 0)  # the camera hangs on the north face (y = 0)
    cams = candidate_cameras([[0, 0]], headings=1, model=CameraModel("t", 50.0, 90.0))
    cov = visibility_coverage(np.array([[0, 30]]), cams, occluders=[wall])
    assert cov.nnz == 1


def test_bearing_is_compass_style():
    assert bearing_deg([0, 0], [0, 1]) == pytest.approx(0)
    assert bearing_deg([0, 0], [1, 0]) == pytest.approx(90)
    assert bearing_deg([0, 0], [-1, 0]) == pytest.approx(270)
