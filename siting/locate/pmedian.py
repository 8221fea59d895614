"""p-median: open ``p`` sites minimising the weighted distance of each demand point to its nearest site."""

from __future__ import annotations

import time

import numpy as np

from ..coverage import Coverage
from ..solvers.heuristics import greedy_max_cover, lagrangian_pmedian_bound
from .base import HEURISTIC_MAX_SECONDS, SitingResult, _FacilityModel


class PMedian(_FacilityModel):
    """p-median: open ``p`` sites minimising the weighted distance of each demand to its nearest site.

    Only pairs within the coverage cut-off exist (sparse); demand no site can reach is left out and
    reported as ``uncoverable``. If ``p`` sites cannot serve all the rest within the cut-off the
    instance is infeasible (raise the radius or ``p``).
    """

    name = "pmedian"

    def __init__(self, coverage: Coverage, p: int, weights=None, fixed=None, capacity=None):
        super().__init__(coverage, p, weights=weights, fixed=fixed, capacity=capacity)

    @classmethod
    def from_cost_matrix(cls, cost, p: int, max_cost: float = np.inf, **kw) -> PMedian:
        """The model over a dense demand × site cost matrix; pairs costing more than ``max_cost`` do not exist."""
        return cls(Coverage.from_cost_matrix(cost, max_cost), p, **kw)

    def solve(self, method="auto", time_limit=600.0, mip_rel_gap=0.0) -> SitingResult:
        """Solve by ``method`` (auto | exact | heuristic) within ``time_limit`` seconds."""
        t0 = time.perf_counter()
        method = self._resolve_method(method)
        if method == "heuristic":
            return self._solve_heuristic(min(time_limit, HEURISTIC_MAX_SECONDS), t0)
        return self._solve_assignment(time_limit, mip_rel_gap, t0)

    def _cost(self, sites):
        """Weighted distance of the served demand to the nearest of ``sites``, and which demand is served."""
        site, dist = self.coverage.nearest(sites)
        served = site >= 0
        return float((self.weights[served] * dist[served]).sum()), served

    def _solve_heuristic(self, time_limit, t0) -> SitingResult:
        """Greedy add + interchange (Teitz–Bart style) over the sparse pairs; gap to a Lagrangian lower bound."""
        cov, w, p, fixed = self.coverage, self.weights, self.p, self.fixed
        reach = np.diff(cov.indptr) > 0
        deadline = t0 + time_limit
        # start with a covering greedy (so every reachable demand gets served), then improve cost
        chosen, count = greedy_max_cover(cov.matrix().tocsc(), reach.astype(np.float64), p, fixed)
        if (count[reach] == 0).any():  # the greedy found no feasible start: let the MILP decide (it may prove infeasible)
            return self._solve_assignment(max(1.0, deadline - time.perf_counter()), 0.0, t0)
        chosen, best_cost = self._interchange(list(chosen), reach, deadline)
        sites = np.sort(np.array(chosen, dtype=np.int64))
        lb = lagrangian_pmedian_bound(cov, w, p, fixed, reach, best_cost,
                                      deadline=max(deadline, time.perf_counter() + 2.0))
        gap = (best_cost - lb) / best_cost if best_cost > 0 else 0.0
        return self._result("heuristic", "heuristic", sites, best_cost, max(0.0, gap), lb, t0)

    def _interchange(self, chosen: list, reach, deadline):
        """First-improvement swaps of an open (non-fixed) site for one sharing demand with it, until none helps."""
        cov = self.coverage
        fixed_set = set(int(f) for f in self.fixed)
        best_cost, _ = self._cost(chosen)
        improved = True
        rng = np.random.default_rng(0)
        while improved and time.perf_counter() < deadline:
            improved = False
            for k in rng.permutation(len(chosen)):
                if chosen[k] in fixed_set or time.perf_counter() > deadline:
                    continue
                s = chosen[k]
                # candidates: sites sharing demand with s
                rows = cov.demand_idx[cov.indices == s]
                cands = np.unique(np.concatenate([cov.indices[cov.indptr[r] : cov.indptr[r + 1]] for r in rows])) \
                    if rows.size else np.zeros(0, dtype=np.int64)
                for j in cands:
                    if j in chosen:
                        continue
                    trial = chosen.copy()
                    trial[k] = int(j)
                    if (cov.cover_count(trial)[reach] == 0).any():
                        continue
                    cost, _ = self._cost(trial)
                    if cost < best_cost - 1e-9:
                        best_cost, chosen, improved = cost, trial, True
                        break
        return chosen, best_cost
