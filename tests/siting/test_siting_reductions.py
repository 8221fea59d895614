"""Issue 18: the exact models' reductions (merged demand rows, dominated sites, dominated rows/columns of the
set cover) never change the optimum: fixed instances solved with the reductions on and off, and tiny ones
against brute force. No timing here (speed is in benchmarks/bench_siting_family.py)."""

import time
from itertools import combinations

import numpy as np
import pytest

import siting.locate.mclp as mclp_module
from siting.coverage import line_coverage
from siting.models import LSCP, MCLP
from siting.solvers.heuristics import lns_max_cover


def _clustered(seed, n_d, n_s, square=2000.0, k=6):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(200, square - 200, (k, 2))
    d = np.clip(centres[rng.integers(0, k, n_d)] + rng.normal(0, 150.0, (n_d, 2)), 0, square)
    s = rng.uniform(0, square, (n_s, 2))
    # the same site twice and a far-away site: an identical column and an empty one
    s = np.vstack([s, s[:3], [[square * 5, square * 5]]])
    d = np.vstack([d, d[:20]])  # identical demand rows
    return d, s, rng.integers(1, 101, d.shape[0]).astype(float)


def _covered(cov, w, sites):
    return float(w[cov.cover_count(np.asarray(sites, dtype=np.int64)) > 0].sum())


@pytest.mark.parametrize("seed", [0, 1, 2, 6])
def test_mclp_reductions_keep_the_optimum(seed):
    d, s, w = _clustered(seed, 800, 160)
    cov = line_coverage(d, s, 250.0)
    m = MCLP(cov, 9, weights=w)
    on = m.solve(method="exact", time_limit=120)
    off = MCLP(cov, 9, weights=w, reduce=False).solve(method="exact", time_limit=120)
    assert on.status == off.status == "Optimal"
    assert on.objective == off.objective
    if seed in (2, 6):  # the LP did not prove the start: the sub-MIP over the LP's support improved it, and
        # HiGHS solved the model reduced after reduced-cost fixing (seeds 0, 1: the LP proves the start)
        assert m.support_submip["before"] < m.support_submip["after"] <= on.objective
        assert m.reduced_milp_shape[1] < cov.n_sites
    for r in (on, off):  # the reported objective is what the p open sites really cover
        assert r.sites.size == 9 and np.unique(r.sites).size == 9
        assert _covered(cov, w, r.sites) == r.objective


def test_mclp_reductions_match_brute_force_and_keep_fixed_sites():
    d, s, w = _clustered(7, 120, 11, square=1200.0, k=3)  # 15 sites: 3 duplicates, 1 covering nothing
    cov = line_coverage(d, s, 200.0)
    n_s, p = s.shape[0], 4
    best = max(_covered(cov, w, c) for c in combinations(range(n_s), p))
    m = MCLP(cov, p, weights=w)
    res = m.solve(method="exact", time_limit=60)
    assert res.objective == best and res.sites.size == p
    assert m.dominated_sites >= 4  # the three copies and the empty site at least
    # the empty site (last) fixed open: it stays open, the optimum over sets that hold it is found
    fixed = [n_s - 1]
    best_f = max(_covered(cov, w, (*c, n_s - 1)) for c in combinations(range(n_s - 1), p - 1))
    res_f = MCLP(cov, p, weights=w, fixed=fixed).solve(method="exact", time_limit=60)
    assert n_s - 1 in res_f.sites and res_f.objective == best_f and res_f.sites.size == p


def test_mclp_p_larger_than_the_useful_sites_is_padded():
    # two useful sites only (the rest copies or empty): p = 4 still opens 4 sites and covers everything
    d = np.array([[0.0, 0.0], [10.0, 0.0], [1000.0, 0.0]])
    s = np.array([[0.0, 0.0], [0.0, 0.0], [1000.0, 0.0], [5000.0, 0.0], [9000.0, 0.0]])
    cov = line_coverage(d, s, 50.0)
    res = MCLP(cov, 4, weights=np.array([1.0, 2.0, 5.0])).solve(method="exact")
    assert res.sites.size == 4 and res.objective == 8 and res.covered_share == 1.0


@pytest.mark.parametrize("seed", [0, 3])
def test_lscp_reductions_keep_the_optimum(seed):
    d, s, _ = _clustered(seed, 500, 120)
    cov = line_coverage(d, s, 300.0)
    on = LSCP(cov, skip_uncoverable=True).solve(method="exact", time_limit=120)
    off = LSCP(cov, skip_uncoverable=True, reduce=False).solve(method="exact", time_limit=120)
    assert on.status == off.status == "Optimal"
    assert on.objective == off.objective
    reach = np.diff(cov.indptr) > 0
    for r in (on, off):  # every coverable demand point is covered
        assert np.all(cov.cover_count(r.sites)[reach] > 0)


def test_lscp_matches_brute_force():
    d, s, _ = _clustered(5, 150, 12, square=1200.0, k=3)
    cov = line_coverage(d, s, 250.0)
    reach = np.diff(cov.indptr) > 0
    n_s = s.shape[0]
    best = next(k for k in range(1, n_s + 1)
                if any(np.all(cov.cover_count(np.array(c))[reach] > 0) for c in combinations(range(n_s), k)))
    res = LSCP(cov, skip_uncoverable=True).solve(method="exact")
    assert res.objective == best


def test_lns_reaches_the_brute_force_optimum_and_never_loses_weight():
    # a small instance where two overlap hops reach every site: one neighbourhood is the whole problem
    d, s, w = _clustered(7, 120, 11, square=1200.0, k=3)
    cov = line_coverage(d, s, 400.0)
    n_s, p = s.shape[0], 4
    A = cov.matrix().tocsr()
    best = max(_covered(cov, w, c) for c in combinations(range(n_s), p))
    movable = np.ones(n_s, dtype=bool)
    for start in combinations(range(n_s), p):
        if _covered(cov, w, start) >= best:
            continue
        sites, val, moves = lns_max_cover(A, w, np.array(start), movable, time.perf_counter() + 60,
                                          max_destroy=p, max_free=n_s)
        assert sites.size == p and val == _covered(cov, w, sites) == best and moves >= 1
        break
    else:
        raise AssertionError("no start below the optimum")
    # a site that may not move stays open; the result never covers less than the start
    start = np.array([0, 1, 2, 3])
    movable[0] = False
    sites, val, _ = lns_max_cover(A, w, start, movable, time.perf_counter() + 60, max_destroy=2, max_free=6)
    assert 0 in sites and sites.size == p and val == _covered(cov, w, sites) >= _covered(cov, w, start)


@pytest.mark.parametrize("seed", [2, 3])
def test_mclp_lns_path_keeps_the_optimum(seed, monkeypatch):
    # no first HiGHS phase and no gap threshold: the search runs whenever the LP does not prove the
    # incumbent, then HiGHS proves the optimum from what it found
    monkeypatch.setattr(mclp_module, "LNS_FIRST_MAX_SECONDS", 0.0)
    monkeypatch.setattr(mclp_module, "LNS_MIN_LP_GAP", 0.0)
    d, s, w = _clustered(seed, 800, 160)
    cov = line_coverage(d, s, 250.0)
    fixed = [5]
    m = MCLP(cov, 9, weights=w, fixed=fixed)
    on = m.solve(method="exact", time_limit=120)
    off = MCLP(cov, 9, weights=w, fixed=fixed, reduce=False).solve(method="exact", time_limit=120)
    assert m.lp_gap > 0 and "moves" in m.lns  # the search did run
    assert on.status == off.status == "Optimal"
    assert on.objective == off.objective == _covered(cov, w, on.sites)
    assert 5 in on.sites and on.sites.size == 9


def test_mclp_reduced_model_after_fixing_is_exact():
    # sites fixed to 0 and to 1 as reduced-cost fixing would: the reduced model (fixed-to-1 demand folded into a
    # constant, rows merged) gives every admissible site set the same covered weight as the full model
    d, s, w = _clustered(4, 400, 60)
    cov = line_coverage(d, s, 250.0)
    m = MCLP(cov, 8, weights=w, fixed=[3])
    milp = m._cover_milp(cov.matrix())
    m._dominated_sites(milp)
    rng = np.random.default_rng(0)
    n_s = cov.n_sites
    free0 = np.flatnonzero((milp.col_hi[:n_s] > 0.5) & (milp.col_lo[:n_s] < 0.5))
    to0, to1 = free0[:15], free0[15:17]
    milp.col_hi[to0] = 0.0
    milp.col_lo[to1] = 1.0
    A_f, w_f, free, ones, const = m._reduced_after_fixing(milp)
    assert set(ones) == {3, *to1} and not set(free) & set(to0) and not set(free) & set(ones)
    assert A_f.shape == (w_f.size, free.size) and A_f.shape[0] < milp.rows.size  # rows left out or merged
    for _ in range(200):
        pick = rng.choice(free.size, rng.integers(0, 8 - ones.size + 1), replace=False)
        x = np.zeros(free.size)
        x[pick] = 1.0
        reduced = const + float(w_f[(A_f @ x) > 0].sum())
        assert reduced == _covered(cov, w, np.concatenate([ones, free[pick]]))
