"""Location set covering (LSCP): the fewest sites such that every coverable demand point is covered."""

from __future__ import annotations

import time

import numpy as np

from ..coverage import Coverage
from ..errors import SitingError
from ..solvers.heuristics import lagrangian_set_cover, reduce_set_cover
from ..solvers.highs import run_highs
from .base import SitingResult, _FacilityModel

#: the exact path's Lagrangian phase stops by this many seconds: it gives HiGHS a start and proves the
#: optimum alone only where the LP bound would (then HiGHS proves it at the root too); on the issue-18
#: family it ran 1–10 s for HiGHS proofs of 2–30 s, so a longer phase is time taken from the proof. 0.25 s
#: (was 1 s): in-process pairs on 7 members, 1 s against 0.25 s, the CPU of the solve fell on 6 (0.06–1.3 s;
#: the clustered members 0.06–0.63 s) and rose on one (uniform s0, +0.9 s, within HiGHS' run-to-run spread)
EXACT_LAGRANGIAN_SECONDS = 0.25


class LSCP(_FacilityModel):
    """Location set covering: the fewest sites such that every demand point is covered.

    Demand no site reaches is an error unless ``skip_uncoverable`` (then it is left out and reported in
    ``uncoverable``). Exact: dominated rows and columns out, a Lagrangian heuristic as the incumbent,
    then HiGHS on the reduced cover matrix; heuristic: the Lagrangian heuristic and its bound alone.
    """

    name = "lscp"

    def __init__(self, coverage: Coverage, weights=None, fixed=None, capacity=None, skip_uncoverable=False,
                 reduce=True):
        super().__init__(coverage, None, weights=weights, fixed=fixed, capacity=capacity)
        #: exact reductions (dominated rows and columns out); off: HiGHS on the plain cover matrix
        self.reduce = bool(reduce)
        if self.uncoverable.size and not skip_uncoverable:
            raise SitingError(
                f"{self.uncoverable.size} 个需求点在服务半径内没有任何候选点，无法全覆盖 "
                f"(demand points not coverable by any site, e.g. index {int(self.uncoverable[0])})"
            )

    @classmethod
    def from_cost_matrix(cls, cost, service_radius: float, **kw) -> LSCP:
        """The model over a dense demand × site cost matrix: a pair covers when its cost ≤ ``service_radius``."""
        return cls(Coverage.from_cost_matrix(cost, service_radius), **kw)

    def solve(self, method="auto", time_limit=600.0, mip_rel_gap=0.0) -> SitingResult:
        """Solve by ``method`` (auto | exact | heuristic) within ``time_limit`` seconds."""
        t0 = time.perf_counter()
        if self.capacity is not None:
            return self._solve_assignment(time_limit, mip_rel_gap, t0)
        A = self.coverage.matrix()
        rows = self._rows_to_cover(A)
        method = self._resolve_method(method)
        free = np.ones(self.coverage.n_sites, dtype=bool)
        free[self.fixed] = False
        free_cols = np.flatnonzero(free)
        # dominated rows / columns out (exact for unit costs), then a Lagrangian heuristic + bound
        if self.reduce:
            r_keep, c_keep = reduce_set_cover(A[rows][:, free_cols].tocsr())
        else:
            r_keep, c_keep = np.arange(rows.size), np.arange(free_cols.size)
        cols = free_cols[c_keep]
        B = A[rows[r_keep]][:, cols].tocsr()
        deadline = t0 + (min(time_limit, 30.0) if method == "heuristic"
                         else min(0.05 * time_limit, EXACT_LAGRANGIAN_SECONDS))
        cover, lb = lagrangian_set_cover(B, deadline)
        lb_total = float(self.fixed.size + lb)
        if method == "heuristic" or cover.size + self.fixed.size <= lb_total:
            sites = np.concatenate([self.fixed, cols[cover]])
            gap = (sites.size - lb_total) / sites.size if sites.size else 0.0
            status = "Optimal" if gap <= 0 else "heuristic"
            return self._result(method, status, sites, float(sites.size), gap, lb_total, t0)
        return self._solve_reduced(B, cols, cover, lb_total, time_limit, mip_rel_gap, t0)

    def _rows_to_cover(self, A) -> np.ndarray:
        """Coverable demand rows not yet covered by a fixed (existing) site."""
        rows = np.flatnonzero(np.diff(self.coverage.indptr) > 0)
        if self.fixed.size:  # demand already served by existing facilities needs no new site
            done = (A[:, self.fixed].sum(axis=1).A1 > 0)
            rows = rows[~done[rows]]
        return rows

    def _solve_reduced(self, B, cols, cover, lb_total, time_limit, mip_rel_gap, t0) -> SitingResult:
        """HiGHS on the reduced cover matrix ``B`` (columns ``cols``), started from the heuristic ``cover``."""
        n_b = B.shape[1]
        start = np.zeros(n_b)
        start[cover] = 1.0
        status, x, obj, gap, bound = run_highs(
            np.ones(n_b), B, np.ones(B.shape[0]), np.full(B.shape[0], np.inf), np.zeros(n_b), np.ones(n_b),
            np.ones(n_b, dtype=bool), False, max(0.01, t0 + time_limit - time.perf_counter()), mip_rel_gap,
            start=start,
        )
        if x is None or np.sum(x > 0.5) > cover.size:
            chosen = cols[cover]
        else:
            chosen = cols[np.flatnonzero(x > 0.5)]
        sites = np.concatenate([self.fixed, chosen])
        bound = max(lb_total, self.fixed.size + bound) if np.isfinite(bound) else lb_total
        gap = 0.0 if status == "Optimal" else max(0.0, (sites.size - bound) / sites.size)
        return self._result("exact", status, sites, float(sites.size), gap, bound, t0)
