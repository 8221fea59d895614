"""Maximal covering (MCLP): open ``p`` sites (fixed ones included) covering the most demand weight."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..coverage import Coverage
from ..errors import SitingError
from ..solvers.heuristics import greedy_max_cover, lagrangian_mclp_bound, lns_max_cover, swap_improve
from ..solvers.highs import lp_relaxation, run_highs
from .base import HEURISTIC_MAX_SECONDS, SitingResult, _FacilityModel


def _merge_identical_rows(rows, A_r: sp.csr_matrix, c_y):
    """Demand rows with the same site set merged into one (the first stands for them), weights summed."""
    A_r = A_r.copy()
    A_r.sort_indices()
    first: dict[bytes, int] = {}
    rep = np.empty(rows.size, dtype=np.int64)
    for i in range(rows.size):
        key = A_r.indices[A_r.indptr[i]:A_r.indptr[i + 1]].tobytes()
        rep[i] = first.setdefault(key, i)
    keep = np.flatnonzero(rep == np.arange(rows.size))
    if keep.size == rows.size:
        return rows, A_r, c_y
    slot = np.full(rows.size, -1, dtype=np.int64)
    slot[keep] = np.arange(keep.size)
    merged = np.bincount(slot[rep], weights=c_y, minlength=keep.size)
    return rows[keep], A_r[keep], merged


#: HiGHS options of the MCLP branch-and-bound. Left at HiGHS' defaults: turning its primal heuristics off
#: (``mip_heuristic_effort`` 0) made no difference within the noise on the issue-18 family, and on clustered
#: demand the incumbent is not always optimal (HiGHS' heuristics are then worth keeping)
MILP_OPTIONS: dict = {}
#: the site-dominance test forms the site × site overlap Aᵀ A; skipped when it would take more products
DOMINANCE_MAX_PRODUCTS = 30_000_000
#: the large-neighbourhood search runs when the LP bound is this far (relative) above the incumbent …
LNS_MIN_LP_GAP = 0.005
#: … and HiGHS has not proven the optimum within this share of the time limit (at most this many seconds) …
LNS_FIRST_SHARE = 0.1
LNS_FIRST_MAX_SECONDS = 60.0
#: … for at most this share of the time left, and this many seconds
LNS_TIME_SHARE = 0.25
LNS_MAX_SECONDS = 60.0
#: the sub-MIP over the LP's support (sites with x_j > 0 in the LP, and the incumbent's) runs for at most this
#: share of the time limit and this many seconds
SUPPORT_SUBMIP_SHARE = 0.05
SUPPORT_SUBMIP_MAX_SECONDS = 10.0


def _max_cover_arrays(A: sp.csr_matrix, w, p, col_lo, col_hi):
    """``max Σ w_i y_i  s.t. y_i ≤ Σ_j a_ij x_j, Σ x_j ≤ p`` over demand rows × sites ``A`` (0/1): HiGHS' arrays
    (c, M, row_lo, row_hi, col_lo, col_hi, integer), variables [x_0..x_{n-1}, y_0..y_{m-1}]."""
    n_r, n_f = A.shape
    M = sp.vstack([
        sp.hstack([-A, sp.identity(n_r, format="csr")]),
        sp.hstack([sp.csr_matrix(np.ones((1, n_f))), sp.csr_matrix((1, n_r))]),
    ]).tocsc()
    return (np.concatenate([np.zeros(n_f), w]), M,
            np.concatenate([np.full(n_r, -np.inf), [-np.inf]]), np.concatenate([np.zeros(n_r), [p]]),
            np.concatenate([col_lo, np.zeros(n_r)]), np.concatenate([col_hi, np.ones(n_r)]),
            np.concatenate([np.ones(n_f, dtype=bool), np.zeros(n_r, dtype=bool)]))


@dataclass
class _CoverMilp:
    """The sparse MCLP MILP: variables [x_0..x_{n_s-1}, y_0..y_{n_r-1}], y_i − Σ_j a_ij x_j ≤ 0, Σ x_j = p."""

    rows: np.ndarray  # demand rows with a y variable (coverable, weight > 0)
    M: sp.csc_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    c: np.ndarray
    integer: np.ndarray

    def cover_matrix(self, n_sites: int) -> sp.csr_matrix:
        """The (merged) demand rows × sites, 0/1, as read back from the y − Σ a x ≤ 0 rows."""
        return (-self.M[: self.rows.size, :n_sites] > 0).astype(np.float64).tocsr()


def _cover_start(A: sp.csr_matrix, x0: np.ndarray) -> np.ndarray:
    """HiGHS' start for ``_max_cover_arrays``: the sites ``x0`` and the rows they cover."""
    return np.concatenate([x0, (A @ x0 > 0).astype(np.float64)])


class MCLP(_FacilityModel):
    """Maximal covering: open ``p`` sites (fixed ones included) covering the most demand weight.

    Exact: a greedy + swap incumbent, the LP relaxation (which may prove it optimal), a sub-MIP over the
    LP's support for a better incumbent, reduced-cost fixing against it, then HiGHS on the model reduced
    after the fixings; where the LP bound is weak and HiGHS has not proven the optimum in a
    first phase, a large-neighbourhood search improves the incumbent and HiGHS starts again from it.
    Heuristic: greedy + swaps + Lagrangian rounding, with the Lagrangian upper bound for the gap.
    """

    name = "mclp"

    def __init__(self, coverage: Coverage, p: int, weights=None, fixed=None, capacity=None, reduce=True):
        super().__init__(coverage, p, weights=weights, fixed=fixed, capacity=capacity)
        #: exact reductions of the MILP (identical demand rows merged, dominated sites out); off: the plain model
        self.reduce = bool(reduce)

    @classmethod
    def from_cost_matrix(cls, cost, service_radius: float, p: int, **kw) -> MCLP:
        """The model over a dense demand × site cost matrix: a pair covers when its cost ≤ ``service_radius``."""
        return cls(Coverage.from_cost_matrix(cost, service_radius), p, **kw)

    def solve(self, method="auto", time_limit=600.0, mip_rel_gap=0.0) -> SitingResult:
        """Solve by ``method`` (auto | exact | heuristic) within ``time_limit`` seconds."""
        t0 = time.perf_counter()
        if self.capacity is not None:
            return self._solve_assignment(time_limit, mip_rel_gap, t0)
        A = self.coverage.matrix()
        A_csc = A.tocsc()
        method = self._resolve_method(method)
        chosen, count = greedy_max_cover(A_csc, self.weights, self.p, self.fixed)
        if method == "heuristic":
            return self._solve_heuristic(A_csc, chosen, count, min(time_limit, HEURISTIC_MAX_SECONDS), t0)
        return self._solve_exact(A, A_csc, chosen, count, time_limit, mip_rel_gap, t0)

    # ------------------------------------------------------------------------------------ heuristic

    def _solve_heuristic(self, A_csc, chosen, count, time_limit, t0) -> SitingResult:
        """Swaps from the greedy start, the Lagrangian bound (and its primal), then Lagrangian rounding."""
        w = self.weights
        chosen, count = swap_improve(A_csc, w, chosen, count, self.fixed, t0 + 0.3 * time_limit)
        primal = float(w[count > 0].sum())
        ub, lb, x_best, lam = lagrangian_mclp_bound(
            A_csc, w, self.p, self.fixed, (primal, chosen), iterations=1000,
            deadline=t0 + 0.7 * time_limit, return_multipliers=True,
        )
        if lb > primal:
            chosen, primal = x_best, lb
        chosen, primal = self._lagrangian_rounding(A_csc, lam, chosen, primal, t0 + time_limit)
        sites = np.sort(np.asarray(chosen))
        gap = (ub - primal) / ub if ub > 0 else 0.0
        return self._result("heuristic", "heuristic", sites, primal, max(gap, 0.0), ub, t0)

    def _lagrangian_rounding(self, A_csc, lam, chosen, primal, deadline):
        """The p best sites by Aᵀλ at the best multipliers, improved by swaps; kept if better than ``chosen``."""
        cov, w = self.coverage, self.weights
        k_free = self.p - self.fixed.size
        if k_free > 0:
            score = A_csc.T.tocsr() @ lam
            score[self.fixed] = -np.inf
            trial = np.concatenate([self.fixed, np.argsort(-score, kind="stable")[:k_free]])
            trial, tcount = swap_improve(A_csc, w, trial, cov.cover_count(trial), self.fixed, deadline)
            if float(w[tcount > 0].sum()) > primal:
                chosen, primal = trial, float(w[tcount > 0].sum())
        return chosen, primal

    # ---------------------------------------------------------------------------------------- exact

    def _solve_exact(self, A, A_csc, chosen, count, time_limit, mip_rel_gap, t0) -> SitingResult:
        """Incumbent, LP relaxation (proof or reduced-cost fixing), then the MILP started from the incumbent."""
        w = self.weights
        milp = self._cover_milp(A)
        dom_to = self._dominated_sites(milp) if self.reduce else None
        # 1) incumbent: greedy + a short swap search
        chosen, count = swap_improve(A_csc, w, chosen, count, self.fixed, t0 + min(0.1 * time_limit, 10.0))
        best_val = float(w[count > 0].sum())
        # 2) LP relaxation by interior point; 3) reduced-cost fixing against the incumbent: a site whose
        #    LP bound with its value flipped cannot beat the incumbent is fixed (classic, exact)
        status, x_lp, ub_lp, dj = lp_relaxation(milp.c, milp.M, milp.row_lo, milp.row_hi, milp.col_lo, milp.col_hi,
                                                True, max(0.01, t0 + time_limit - time.perf_counter()))
        fixed0 = fixed1 = 0
        need = None
        if x_lp is not None and mip_rel_gap == 0.0:
            best_val, chosen, count = self._lp_rounding(A_csc, x_lp, best_val, chosen, count, time_limit)
            need = self._to_beat(best_val)
            if ub_lp >= need and self.reduce:  # a better incumbent from the sites the LP uses
                best_val, chosen, count = self._support_submip(milp, dom_to, x_lp, best_val, chosen, count,
                                                               t0, time_limit)
                need = self._to_beat(best_val)
            if ub_lp < need:  # the LP bound proves the incumbent optimal
                return self._result("exact", "Optimal", np.sort(chosen), best_val, 0.0, ub_lp, t0)
            self.lp_gap = (ub_lp - best_val) / ub_lp if ub_lp > 0 else 0.0
            fixed0, fixed1 = self._reduced_cost_fixing(milp, x_lp, ub_lp, dj, need)
        # 4) HiGHS from the incumbent. Where the LP bound is weak (clustered demand) and HiGHS has not proven
        #    the optimum within a first share of the time, a large-neighbourhood search improves the incumbent
        #    (HiGHS on regions of it), then HiGHS starts again from it for the time left
        lns = (need is not None and self.reduce and getattr(self, "lp_gap", 0.0) > LNS_MIN_LP_GAP)
        end = t0 + time_limit
        first_end = min(end, time.perf_counter() + min(LNS_FIRST_SHARE * time_limit, LNS_FIRST_MAX_SECONDS)) \
            if lns else end
        status, x, bound = self._run_milp(milp, dom_to, chosen, count, first_end, mip_rel_gap)
        bounds = [bound]
        best_val, chosen, count = self._better_of(x, best_val, chosen, count)
        if lns and status != "Optimal" and time.perf_counter() < end - 1.0:
            best_val, chosen, count = self._lns(milp, best_val, chosen, count, t0, time_limit)
            assert ub_lp is not None and x_lp is not None and dj is not None
            need = self._to_beat(best_val)
            if ub_lp < need:
                return self._result("exact", "Optimal", np.sort(chosen), best_val, 0.0, ub_lp, t0)
            f0, f1 = self._reduced_cost_fixing(milp, x_lp, ub_lp, dj, need)
            fixed0, fixed1 = max(fixed0, f0), max(fixed1, f1)
            status, x, bound = self._run_milp(milp, dom_to, chosen, count, end, mip_rel_gap)
            bounds.append(bound)
            best_val, chosen, count = self._better_of(x, best_val, chosen, count)
        self.reduced_cost_fixed = (fixed0, fixed1)
        self.incumbent = best_val
        if x is None and best_val <= 0:
            raise SitingError(f"HiGHS 未找到可行解 (status: {status})")
        sites, covered = np.sort(chosen), best_val
        finite = [b for b in bounds if np.isfinite(b)]
        bound = min(finite) if finite else (ub_lp if ub_lp is not None else covered)
        if ub_lp is not None:
            bound = min(bound, ub_lp)
        bound = max(bound, covered)
        gap = 0.0 if status == "Optimal" else (bound - covered) / bound if bound > 0 else 0.0
        return self._result("exact", status, sites, covered, gap, bound, t0)

    def _better_of(self, x, best_val, chosen, count):
        """HiGHS' solution ``x`` (if any) as (covered weight, sites, cover counts) when it covers more than the
        incumbent ``(best_val, chosen, count)``, else the incumbent."""
        if x is None:
            return best_val, chosen, count
        sites = self._pad_to_p(np.flatnonzero(x[:self.coverage.n_sites] > 0.5))
        counts = self.coverage.cover_count(sites)
        val = float(self.weights[counts > 0].sum())
        return (val, sites, counts) if val > best_val else (best_val, chosen, count)

    def _support_submip(self, milp: _CoverMilp, dom_to, x_lp, best_val, chosen, count, t0, time_limit):
        """The MCLP restricted to the sites the LP relaxation uses (x_j > 0) and the incumbent's, solved by HiGHS
        for a short time (RINS-like); its sites, padded to ``p``, replace the incumbent when they cover more.

        On the uniform members of the issue-18 family the LP's support is 50–65 sites and this sub-MIP finds
        the optimum in 0.05–0.2 s, where greedy + swaps + LP rounding stay 0.2 % below it; reduced-cost
        fixing against the better incumbent then closes most of the sites.
        """
        n_s = self.coverage.n_sites
        mapped = chosen if dom_to is None else dom_to[chosen]
        F = np.union1d(np.flatnonzero(x_lp[:n_s] > 1e-6), mapped)
        F = F[milp.col_hi[F] > 0.5]
        A_f = milp.cover_matrix(n_s)[:, F]
        R = np.flatnonzero(np.diff(A_f.indptr) > 0)
        if F.size == 0 or R.size == 0:
            return best_val, chosen, count
        A_f = A_f[R]
        c, M, rlo, rhi, clo, chi, integer = _max_cover_arrays(A_f, milp.c[n_s:][R], self.p, milp.col_lo[F],
                                                              milp.col_hi[F])
        x0 = np.isin(F, mapped).astype(np.float64)
        start = _cover_start(A_f, x0)
        seconds = min(SUPPORT_SUBMIP_SHARE * time_limit, SUPPORT_SUBMIP_MAX_SECONDS,
                      max(0.01, t0 + time_limit - time.perf_counter()))
        _status, x, _obj, _gap, _bound = run_highs(c, M, rlo, rhi, clo, chi, integer, True, seconds, 0.0,
                                                   start=start, options=MILP_OPTIONS)
        self.support_submip = {"sites": int(F.size), "before": best_val}
        if x is None:
            return best_val, chosen, count
        sites = self._pad_to_p(F[x[:F.size] > 0.5])
        tcount = self.coverage.cover_count(sites)
        val = float(self.weights[tcount > 0].sum())
        self.support_submip["after"] = val
        return (val, sites, tcount) if val > best_val else (best_val, chosen, count)

    def _reduced_after_fixing(self, milp: _CoverMilp):
        """The MILP with the bounds' fixings applied: sites fixed to 0 out, sites fixed to 1 folded into a
        constant (the demand they cover counts, ``p`` shrinks), demand no free site reaches out, and demand
        rows left with the same free sites merged (weights summed).

        Exact: over solutions that respect the fixings, its objective + the constant is the MILP's. Its
        cardinality row is ``Σ x ≤ p − |fixed to 1|``: a solution with fewer sites is padded afterwards
        (:meth:`_pad_to_p`), which never lowers the coverage. Returns (A rows × free sites, row weights, free
        sites, sites fixed to 1, constant).
        """
        n_s, n_r = self.coverage.n_sites, milp.rows.size
        A_r = milp.cover_matrix(n_s)
        lo, hi = milp.col_lo[:n_s], milp.col_hi[:n_s]
        ones = np.flatnonzero(lo > 0.5)
        free = np.flatnonzero((hi > 0.5) & (lo < 0.5))
        w_r = milp.c[n_s:]
        done = (A_r[:, ones] @ np.ones(ones.size)) > 0 if ones.size else np.zeros(n_r, dtype=bool)
        const = float(w_r[done].sum())
        A_f = A_r[~done][:, free].tocsr()
        w_f = w_r[~done]
        live = np.diff(A_f.indptr) > 0
        idx = np.arange(int(live.sum()))
        _, A_f, w_f = _merge_identical_rows(idx, A_f[live].tocsr(), w_f[live])
        return A_f, w_f, free, ones, const

    def _run_milp(self, milp: _CoverMilp, dom_to, chosen, count, end, mip_rel_gap):
        """HiGHS on the MILP until ``end``, started from the incumbent; (status, x or None, best bound).

        With the reductions on, HiGHS gets the MILP after its fixings (:meth:`_reduced_after_fixing`) and its
        solution and bound are mapped back; off: the MILP as it is.
        """
        if self.reduce:
            return self._run_reduced_milp(milp, dom_to, chosen, end, mip_rel_gap)
        n_s = self.coverage.n_sites
        start = np.zeros(n_s + milp.rows.size)
        start[chosen if dom_to is None else dom_to[chosen]] = 1.0  # a dominated site → its dominator
        start[n_s:] = (count[milp.rows] > 0).astype(np.float64)
        status, x, _obj, _gap, bound = run_highs(
            milp.c, milp.M, milp.row_lo, milp.row_hi, milp.col_lo, milp.col_hi, milp.integer, True,
            max(0.01, end - time.perf_counter()), mip_rel_gap, start=start, options=MILP_OPTIONS
        )
        return status, x, bound

    def _run_reduced_milp(self, milp: _CoverMilp, dom_to, chosen, end, mip_rel_gap):
        """HiGHS on :meth:`_reduced_after_fixing`'s model, started from the incumbent's sites that are free in
        it; the solution as an x over all sites (y left out), the bound with the constant added."""
        n_s = self.coverage.n_sites
        A_f, w_f, free, ones, const = self._reduced_after_fixing(milp)
        p_left = int(self.p or 0) - ones.size
        x_full = np.zeros(n_s + milp.rows.size)
        x_full[ones] = 1.0
        if free.size == 0 or A_f.shape[0] == 0 or p_left <= 0:
            return "Optimal", x_full, const
        c, M, rlo, rhi, clo, chi, integer = _max_cover_arrays(A_f, w_f, p_left, np.zeros(free.size),
                                                              np.ones(free.size))
        pos = np.full(n_s, -1, dtype=np.int64)
        pos[free] = np.arange(free.size)
        mapped = pos[chosen if dom_to is None else dom_to[chosen]]
        x0 = np.zeros(free.size)
        x0[mapped[mapped >= 0]] = 1.0
        start = _cover_start(A_f, x0)
        status, x, _obj, _gap, bound = run_highs(c, M, rlo, rhi, clo, chi, integer, True,
                                                 max(0.01, end - time.perf_counter()), mip_rel_gap, start=start,
                                                 options=MILP_OPTIONS)
        self.reduced_milp_shape = A_f.shape
        if x is None:
            return status, None, bound + const
        x_full[free] = x[:free.size]
        return status, x_full, bound + const

    def _lns(self, milp: _CoverMilp, best_val, chosen, count, t0, time_limit):
        """A better incumbent by large-neighbourhood search (HiGHS on regions of it); kept if it covers more."""
        n_s = self.coverage.n_sites
        A_r = milp.cover_matrix(n_s)
        movable = np.ones(n_s, dtype=bool)
        movable[self.fixed] = False
        left = t0 + time_limit - time.perf_counter()
        t_lns = time.perf_counter()
        sites, _, moves = lns_max_cover(A_r, milp.c[n_s:], chosen, movable,
                                        time.perf_counter() + min(LNS_TIME_SHARE * left, LNS_MAX_SECONDS))
        self.lns = {"moves": moves, "seconds": time.perf_counter() - t_lns, "before": best_val}
        tcount = self.coverage.cover_count(sites)
        val = float(self.weights[tcount > 0].sum())
        self.lns["after"] = val
        if val > best_val:
            return val, sites, tcount
        return best_val, chosen, count

    def _cover_milp(self, A) -> _CoverMilp:
        """The MILP over the demand that can count (coverable, weight > 0); fixed sites forced open."""
        cov, w = self.coverage, self.weights
        rows = np.flatnonzero(np.diff(cov.indptr) > 0)  # uncoverable demand cannot count
        rows = rows[w[rows] > 0]
        A_r = A[rows].tocsr()
        c_y = w[rows]
        if self.reduce:  # demand points reached by the same sites act as one: one y with their summed weight
            rows, A_r, c_y = _merge_identical_rows(rows, A_r, c_y)
        n_s, n_r = cov.n_sites, rows.size
        # variables [x_0..x_{n_s-1}, y_0..y_{n_r-1}];  y_i − Σ_j a_ij x_j ≤ 0;  Σ x_j = p
        M = sp.vstack([
            sp.hstack([-A_r, sp.identity(n_r, format="csr")]),
            sp.hstack([sp.csr_matrix(np.ones((1, n_s))), sp.csr_matrix((1, n_r))]),
        ]).tocsc()
        col_lo = np.zeros(n_s + n_r)
        col_lo[self.fixed] = 1.0
        return _CoverMilp(
            rows=rows, M=M,
            row_lo=np.concatenate([np.full(n_r, -np.inf), [self.p]]),
            row_hi=np.concatenate([np.zeros(n_r), [self.p]]),
            col_lo=col_lo, col_hi=np.ones(n_s + n_r),
            c=np.concatenate([np.zeros(n_s), c_y]),
            integer=np.concatenate([np.ones(n_s, dtype=bool), np.zeros(n_r, dtype=bool)]),
        )

    def _dominated_sites(self, milp: _CoverMilp) -> np.ndarray:
        """Close the free sites whose counted demand is a subset of another site's (exact; Σ x_j = p → ≤ p).

        Returns ``to``: each site's replacement (itself unless dominated; a dominated site's dominator is
        one of the largest covering sets that contain its own, lowest index among ties, so never dominated).
        A solution with fewer than ``p`` sites is padded afterwards (:meth:`_pad_to_p`): coverage never drops.
        """
        n_s = self.coverage.n_sites
        A_r = milp.cover_matrix(n_s).tocsc()
        deg = np.diff(A_r.indptr)
        to = np.arange(n_s)
        row_deg = np.diff(A_r.tocsr().indptr).astype(np.float64)
        if float(row_deg @ row_deg) > DOMINANCE_MAX_PRODUCTS:  # the site × site overlap would not fit: skip
            self.dominated_sites = 0
            return to
        G = (A_r.T @ A_r).tocsr()  # |rows(j) ∩ rows(k)|
        free = np.ones(n_s, dtype=bool)
        free[self.fixed] = False
        best_deg = int(deg.max()) if deg.size else 0
        top = int(np.flatnonzero(deg == best_deg)[0]) if deg.size else 0
        for j in np.flatnonzero(free):
            if deg[j] == 0:  # covers nothing that counts
                to[j] = top
                continue
            ks = G.indices[G.indptr[j]:G.indptr[j + 1]]
            inter = G.data[G.indptr[j]:G.indptr[j + 1]]
            sup = ks[(inter >= deg[j] - 0.5) & (ks != j)]
            if sup.size == 0:
                continue
            sup = sup[(deg[sup] > deg[j]) | (sup < j)]
            if sup.size:
                dk = deg[sup]
                to[j] = int(sup[dk == dk.max()].min())
        dominated = to != np.arange(n_s)
        if dominated.any():
            milp.col_hi = milp.col_hi.copy()
            milp.col_hi[:n_s][dominated] = 0.0
            milp.row_lo = milp.row_lo.copy()
            milp.row_lo[-1] = -np.inf  # Σ x_j ≤ p: the optimum is the same, padded to p afterwards
        self.dominated_sites = int(dominated.sum())
        return to

    def _pad_to_p(self, sites: np.ndarray) -> np.ndarray:
        """Open further sites (the largest covering sets first) until ``p`` are open; coverage cannot drop."""
        p = int(self.p or 0)
        if sites.size >= p:
            return sites
        deg = np.diff(self.coverage.matrix().tocsc().indptr)
        is_open = np.zeros(self.coverage.n_sites, dtype=bool)
        is_open[sites] = True
        order = [j for j in np.argsort(-deg, kind="stable") if not is_open[j]]
        return np.sort(np.concatenate([sites, np.asarray(order[: p - sites.size], dtype=np.int64)]))

    def _lp_rounding(self, A_csc, x_lp, best_val, chosen, count, time_limit):
        """The fixed sites + the largest free x_j of the LP, improved by swaps; kept if it beats the incumbent."""
        cov, w, n_s = self.coverage, self.weights, self.coverage.n_sites
        k_free = self.p - self.fixed.size
        if k_free > 0:
            free = np.ones(n_s, dtype=bool)
            free[self.fixed] = False
            fs = np.flatnonzero(free)
            top = fs[np.argsort(-x_lp[:n_s][fs], kind="stable")[:k_free]]
            trial = np.concatenate([self.fixed, top])
            trial, tcount = swap_improve(A_csc, w, trial, cov.cover_count(trial), self.fixed,
                                         time.perf_counter() + min(0.05 * time_limit, 5.0))
            val = float(w[tcount > 0].sum())
            if val > best_val:
                best_val, chosen, count = val, trial, tcount
        return best_val, chosen, count

    def _to_beat(self, best_val: float) -> float:
        """The objective value a solution must reach to beat the incumbent (integral weights: one more unit)."""
        w = self.weights
        integral = bool(np.all(w == np.round(w)))
        return best_val + (1.0 - 1e-6 if integral else 1e-9 * max(1.0, abs(best_val)))

    def _reduced_cost_fixing(self, milp: _CoverMilp, x_lp, ub_lp, dj, need) -> tuple[int, int]:
        """Fix the x_j whose flip costs the LP bound more than its lead over ``need``; returns (to 0, to 1)."""
        n_s = self.coverage.n_sites
        d = np.abs(dj[:n_s])
        xs = x_lp[:n_s]
        can_flip = np.ones(n_s, dtype=bool)
        can_flip[self.fixed] = False
        f0 = can_flip & (xs < 1e-7) & (ub_lp - d < need)
        f1 = can_flip & (xs > 1 - 1e-7) & (ub_lp - d < need)
        milp.col_hi = milp.col_hi.copy()
        milp.col_lo = milp.col_lo.copy()
        milp.col_hi[:n_s][f0] = 0.0
        milp.col_lo[:n_s][f1] = 1.0
        return int(f0.sum()), int(f1.sum())
