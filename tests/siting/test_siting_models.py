"""Location models on small instances whose optimum can be checked by hand, and exact vs heuristic."""

import numpy as np
import pytest

from siting.coverage import Coverage, line_coverage
from siting.models import LSCP, MCLP, PMedian, SitingError


def _cov(rows, n_sites, dist=None):
    """Coverage from per-demand site lists."""
    d = [i for i, r in enumerate(rows) for _ in r]
    s = [j for r in rows for j in r]
    w = [1.0] * len(s) if dist is None else dist
    return Coverage.from_pairs(d, s, w, len(rows), n_sites)


def test_lscp_hand_instance():
    # demand 0..4; site 0 covers {0,1}, site 1 covers {1,2,3}, site 2 covers {3,4}, site 3 covers {0,4}
    cov = _cov([[0, 3], [0, 1], [1], [1, 2], [2, 3]], 4)
    res = LSCP(cov).solve(method="exact")
    # every cover needs site 1 (only site for demand 2); {1,3} covers 1,2,3 + 0,4 → optimum 2
    assert res.objective == 2
    assert list(res.sites) == [1, 3]
    assert res.gap == 0
    assert res.covered_share == 1.0


def test_lscp_fixed_sites_are_kept():
    cov = _cov([[0, 3], [0, 1], [1], [1, 2], [2, 3]], 4)
    res = LSCP(cov, fixed=[0]).solve(method="exact")
    assert 0 in res.sites and 1 in res.sites
    assert res.objective == 3  # 0 forced, 1 needed, and one of {2,3} for demand 4


def test_lscp_uncoverable_demand_is_an_error_unless_skipped():
    cov = _cov([[0], []], 1)
    with pytest.raises(SitingError, match="无法全覆盖"):
        LSCP(cov)
    res = LSCP(cov, skip_uncoverable=True).solve(method="exact")
    assert list(res.sites) == [0] and list(res.uncoverable) == [1]


def test_mclp_hand_instance_weights_decide():
    # site 0 covers demand {0,1} (weights 1+1), site 1 covers {2} (weight 5), site 2 covers {1,2} (1+5)
    cov = _cov([[0], [0, 2], [1, 2]], 3)
    w = np.array([1.0, 1.0, 5.0])
    r1 = MCLP(cov, 1, weights=w).solve(method="exact")
    assert list(r1.sites) == [2] and r1.objective == 6
    r2 = MCLP(cov, 2, weights=w).solve(method="exact")
    assert r2.objective == 7 and r2.covered_share == 1.0
    # with site 1 fixed, the best second site is 0 (adds demand 0 and 1)
    r3 = MCLP(cov, 2, weights=w, fixed=[1]).solve(method="exact")
    assert list(r3.sites) == [0, 1] and r3.objective == 7


def test_pmedian_on_a_line():
    # demand at x = 0, 1, 10 with weights 1, 1, 3; sites at x = 0, 1, 10; p = 1
    # site 0: 0 + 1 + 30 = 31; site 1: 1 + 0 + 27 = 28; site 10: 10 + 9 + 0 = 19 → site at 10
    xy_d = np.array([[0, 0], [1, 0], [10, 0]], float)
    cost = np.abs(xy_d[:, :1] - xy_d[:, 0][None, :])
    m = PMedian.from_cost_matrix(cost, 1, weights=[1, 1, 3])
    res = m.solve(method="exact")
    assert list(res.sites) == [2] and res.objective == pytest.approx(19)
    res2 = PMedian.from_cost_matrix(cost, 2, weights=[1, 1, 3]).solve(method="exact")
    assert res2.objective == pytest.approx(1)  # {0 or 1, 10}: one unit of distance left


def test_pmedian_capacity_forces_a_split():
    # two demand points at the same spot next to site 0; site 0 can serve only one of them
    cost = np.array([[0.0, 5.0], [0.0, 5.0]])
    res = PMedian.from_cost_matrix(cost, 2, capacity=[1.0, 10.0]).solve(method="exact")
    assert res.objective == pytest.approx(5.0)
    assert sorted(res.assignment.tolist()) == [0, 1]


def test_mclp_capacity_limits_coverage():
    cov = _cov([[0], [0], [0]], 1)
    res = MCLP(cov, 1, capacity=[2.0]).solve(method="exact")
    assert res.objective == pytest.approx(2.0)


@pytest.mark.parametrize("bad", [dict(p=0), dict(p=5)])
def test_mclp_bad_p(bad):
    cov = _cov([[0], [1]], 2)
    with pytest.raises(SitingError):
        MCLP(cov, **bad)


def test_empty_demand_is_rejected():
    with pytest.raises(SitingError, match="empty demand"):
        LSCP(Coverage.from_pairs([], [], [], 0, 3))


def _random_instance(seed, n_d, n_s, r):
    rng = np.random.default_rng(seed)
    d = rng.uniform(0, 2000, (n_d, 2))
    s = rng.uniform(0, 2000, (n_s, 2))
    return line_coverage(d, s, r), rng.integers(1, 10, n_d).astype(float)


def test_mclp_heuristic_within_its_reported_bound():
    cov, w = _random_instance(1, 600, 120, 200)
    exact = MCLP(cov, 8, weights=w).solve(method="exact")
    heur = MCLP(cov, 8, weights=w).solve(method="heuristic", time_limit=20)
    assert exact.gap == 0
    assert heur.objective <= exact.objective + 1e-9
    assert heur.bound >= exact.objective - 1e-6  # Lagrangian bound is a valid upper bound
    assert heur.gap == pytest.approx((heur.bound - heur.objective) / heur.bound)
    assert heur.objective >= 0.9 * exact.objective
    assert len(heur.sites) == 8


def test_lscp_heuristic_brackets_the_optimum():
    cov, _ = _random_instance(2, 400, 150, 350)
    m = LSCP(cov, skip_uncoverable=True)
    exact = m.solve(method="exact")
    heur = m.solve(method="heuristic")
    assert heur.bound <= exact.objective <= heur.objective
    assert heur.covered_share == exact.covered_share  # both cover every coverable point
    assert (cov.cover_count(heur.sites)[np.diff(cov.indptr) > 0] > 0).all()


def test_pmedian_heuristic_matches_exact_on_small_instance():
    cov, w = _random_instance(3, 150, 30, 900)
    exact = PMedian(cov, 4, weights=w).solve(method="exact")
    heur = PMedian(cov, 4, weights=w).solve(method="heuristic", time_limit=20)
    assert heur.objective >= exact.objective - 1e-6
    assert heur.objective <= 1.05 * exact.objective
    # the Lagrangian bound is a valid lower bound, and the gap is measured against it
    assert heur.bound <= exact.objective + 1e-6
    assert heur.gap == pytest.approx((heur.objective - heur.bound) / heur.objective)
