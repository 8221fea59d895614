"""Facility-location models: LSCP, MCLP and p-median over a sparse :class:`~siting.coverage.Coverage`.

The shape follows pysal/spopt (one class per model, built by ``from_coverage`` / ``from_cost_matrix``,
solved by ``solve()``), but the formulations are sparse: only demand–site pairs within the cut-off exist.

* ``method="exact"``: a MILP solved by HiGHS (highspy); the result carries HiGHS' relative MIP gap
  (0 when proven optimal; > 0 when a time limit stopped it). MCLP first fixes sites by LP reduced
  costs against a heuristic incumbent; LSCP first removes dominated rows/columns.
* ``method="heuristic"``: greedy + swaps + Lagrangian rounding (MCLP), a Lagrangian heuristic with
  2-for-1 swaps (LSCP), greedy + interchange (p-median), each with a Lagrangian bound (the LP bound's
  value at best), so the gap to it is reported too.
* ``method="auto"``: exact for ordinary sizes, heuristic for city-size instances.

Fixed (existing) sites are forced open. ``p`` is the total number of open sites including the fixed
ones (as in spopt). Optional ``capacity`` (per site, in demand-weight units) switches to the
assignment formulation (exact only). p-median assigns each demand point within the cut-off only
(sparse); demand no site reaches is reported as ``uncoverable``, and if ``p`` sites cannot serve the
rest within it the instance is infeasible (a clear error).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .coverage import Coverage

EXACT_MAX_PAIRS = 3_000_000
EXACT_MAX_SITES = 5_000
#: the heuristics stop by this many seconds even when a longer (exact-sized) time limit is passed
HEURISTIC_MAX_SECONDS = 45.0


class SitingError(ValueError):
    """Bad input or an infeasible instance; the message says which (shown to the user as is)."""


@dataclass
class SitingResult:
    model: str
    method: str
    status: str
    sites: np.ndarray  # indices of open sites (fixed ones included), ascending
    objective: float
    covered_weight: float
    total_weight: float
    covered_share: float
    gap: float | None  # relative gap to the best proven bound (0 = proven optimal)
    bound: float | None
    seconds: float
    assignment: np.ndarray | None = None  # demand -> serving site index (-1 = none)
    uncoverable: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def as_dict(self, site_ids=None) -> dict:
        ids = [int(s) for s in self.sites] if site_ids is None else [site_ids[int(s)] for s in self.sites]
        return {
            "model": self.model,
            "sites": ids,
            "objective": _num(self.objective),
            "covered_weight": _num(self.covered_weight),
            "covered_share": round(float(self.covered_share), 6),
            "gap": None if self.gap is None else round(float(self.gap), 6),
            "seconds": round(float(self.seconds), 4),
        }


def _num(x: float):
    x = float(x)
    return int(round(x)) if abs(x - round(x)) < 1e-6 else round(x, 4)


# --------------------------------------------------------------------------------------------- HiGHS


def _new_highs():
    """A silent ``highspy.Highs``: its constructor prints a banner on the C-level stdout, which must stay
    clean for ``--json`` output, so fd 1 points at /dev/null while it is built."""
    import ctypes
    import os
    import sys

    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        try:
            ctypes.CDLL(None).fflush(None)
        except (OSError, AttributeError):
            pass
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    return h


def _build_highs(c, A, row_lo, row_hi, col_lo, col_hi, integer, maximize, time_limit, options=None):
    import highspy

    h = _new_highs()
    h.setOptionValue("time_limit", float(max(time_limit, 0.01)))
    for k, v in (options or {}).items():
        h.setOptionValue(k, v)
    A = sp.csc_matrix(A)
    lp = highspy.HighsLp()
    lp.num_col_ = int(A.shape[1])
    lp.num_row_ = int(A.shape[0])
    lp.col_cost_ = np.asarray(c, dtype=np.float64)
    lp.col_lower_ = np.asarray(col_lo, dtype=np.float64)
    lp.col_upper_ = np.asarray(col_hi, dtype=np.float64)
    lp.row_lower_ = np.asarray(row_lo, dtype=np.float64)
    lp.row_upper_ = np.asarray(row_hi, dtype=np.float64)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = int(A.shape[1])
    lp.a_matrix_.num_row_ = int(A.shape[0])
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(np.float64)
    lp.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    is_int = np.asarray(integer, dtype=bool)
    if is_int.any():
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if f else highspy.HighsVarType.kContinuous for f in is_int
        ]
    h.passModel(lp)
    return h, is_int


def _run_highs(c, A, row_lo, row_hi, col_lo, col_hi, integer, maximize, time_limit, mip_rel_gap, start=None,
               options=None):
    """Solve ``min/max c·x  s.t. row_lo ≤ A x ≤ row_hi, col_lo ≤ x ≤ col_hi`` with HiGHS."""
    import highspy

    h, is_int = _build_highs(c, A, row_lo, row_hi, col_lo, col_hi, integer, maximize, time_limit,
                             {"mip_rel_gap": float(mip_rel_gap), **(options or {})})
    if start is not None and is_int.any():
        sol = highspy.HighsSolution()
        sol.col_value = list(np.asarray(start, dtype=np.float64))
        sol.value_valid = True
        h.setSolution(sol)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    solution = h.getSolution()
    x = np.asarray(solution.col_value, dtype=np.float64) if solution.value_valid else None
    if is_int.any():
        gap, bound = float(info.mip_gap), float(info.mip_dual_bound)
    else:
        gap, bound = 0.0, float(info.objective_function_value)
    return status, x, float(info.objective_function_value), gap, bound


def _lp_relaxation(c, A, row_lo, row_hi, col_lo, col_hi, maximize, time_limit):
    """LP relaxation by interior point + crossover (much faster than dual simplex on coverage LPs);
    returns (status, x, objective, reduced costs) — reduced costs from the crossover basis."""
    n = len(c)
    h, _ = _build_highs(c, A, row_lo, row_hi, col_lo, col_hi, np.zeros(n, dtype=bool), maximize, time_limit,
                        {"solver": "ipm", "run_crossover": "on"})
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    sol = h.getSolution()
    if not (sol.value_valid and sol.dual_valid) or status != "Optimal":
        return status, None, None, None
    return status, np.asarray(sol.col_value), float(h.getInfo().objective_function_value), np.asarray(sol.col_dual)


def _check_common(coverage: Coverage, weights, fixed, p=None):
    if coverage.n_demand == 0:
        raise SitingError("需求点为空 (empty demand)")
    if coverage.n_sites == 0:
        raise SitingError("候选点为空 (no candidate sites)")
    w = np.ones(coverage.n_demand) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (coverage.n_demand,):
        raise SitingError("weights must have one value per demand point")
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise SitingError("需求权重必须是非负数 (weights must be finite and ≥ 0)")
    fixed = np.unique(np.asarray([] if fixed is None else fixed, dtype=np.int64))
    if fixed.size and (fixed.min() < 0 or fixed.max() >= coverage.n_sites):
        raise SitingError("fixed site index out of range")
    if p is not None:
        if p < 1:
            raise SitingError(f"p 必须 ≥ 1 (p={p})")
        if p > coverage.n_sites:
            raise SitingError(f"p={p} 大于候选点数 {coverage.n_sites} (p larger than the number of sites)")
        if p < fixed.size:
            raise SitingError(f"p={p} 小于已有设施数 {fixed.size} (p counts the fixed sites too)")
    return w, fixed


def _capacity(capacity, n_sites):
    if capacity is None:
        return None
    cap = np.broadcast_to(np.asarray(capacity, dtype=np.float64), (n_sites,)).copy()
    if (cap < 0).any() or not np.all(np.isfinite(cap)):
        raise SitingError("capacity must be finite and ≥ 0")
    return cap


def _auto_exact(coverage: Coverage) -> bool:
    return coverage.nnz <= EXACT_MAX_PAIRS and coverage.n_sites <= EXACT_MAX_SITES


# ------------------------------------------------------------------------- shared heuristic pieces


def _greedy_max_cover(A_csc: sp.csc_matrix, w, p, fixed):
    """Greedy MCLP: start from ``fixed``, add the site with the largest uncovered weight ``p-|fixed|`` times."""
    n_d, n_s = A_csc.shape
    At = A_csc.T.tocsr()
    count = np.zeros(n_d)
    chosen = list(fixed)
    is_open = np.zeros(n_s, dtype=bool)
    is_open[fixed] = True
    if len(fixed):
        count = A_csc[:, fixed].sum(axis=1).A1
    for _ in range(p - len(fixed)):
        gain = At @ (w * (count == 0))
        gain[is_open] = -1.0
        j = int(np.argmax(gain))
        chosen.append(j)
        is_open[j] = True
        col = A_csc.indices[A_csc.indptr[j] : A_csc.indptr[j + 1]]
        count[col] += 1
    return np.array(chosen, dtype=np.int64), count


def _swap_improve(A_csc: sp.csc_matrix, w, chosen, count, fixed, deadline, max_rounds=10_000):
    """Best-improvement interchange for MCLP: close one open (non-fixed) site, open another.

    delta(s→j) = gain_j − loss_s + overlap_sj, where gain_j is the uncovered weight j would add,
    loss_s the weight only s covers, and overlap_sj the part of that weight j covers too; all pairs at
    once as one sparse product  A_sᵀ · diag(w · [count = 1]) · A.
    """
    n_d, n_s = A_csc.shape
    At = A_csc.T.tocsr()
    chosen = np.array(chosen, dtype=np.int64)
    count = np.asarray(count, dtype=np.float64).copy()
    fixed_set = set(int(f) for f in fixed)
    movable = np.array([k for k, s in enumerate(chosen) if int(s) not in fixed_set], dtype=np.int64)
    if movable.size == 0:
        return chosen, count
    is_open = np.zeros(n_s, dtype=bool)
    is_open[chosen] = True
    for _ in range(max_rounds):
        if time.perf_counter() > deadline:
            break
        single_w = w * (count == 1)
        gain = At @ (w * (count == 0))
        sel = chosen[movable]
        loss = At[sel] @ single_w
        overlap = (At[sel] @ sp.diags(single_w) @ A_csc).toarray()
        delta = gain[None, :] - loss[:, None] + overlap
        delta[:, is_open] = -np.inf
        k, j = np.unravel_index(int(np.argmax(delta)), delta.shape)
        if delta[k, j] <= 1e-9:
            break
        s = int(sel[k])
        count[A_csc.indices[A_csc.indptr[s] : A_csc.indptr[s + 1]]] -= 1
        count[A_csc.indices[A_csc.indptr[j] : A_csc.indptr[j + 1]]] += 1
        is_open[s], is_open[j] = False, True
        chosen[movable[k]] = j
    return chosen, count


def _lagrangian_mclp_bound(A_csc, w, p, fixed, best_primal, iterations=300, deadline=None,
                           return_multipliers=False):
    """Upper bound on MCLP (max covered weight) from the Lagrangian relaxation of y_i ≤ Σ a_ij x_j.

    UB(λ) = Σ max(0, w_i − λ_i) + Σ_{j∈top-p} (Aᵀλ)_j (fixed sites forced in); minimised by subgradient.
    Also returns the best primal solution met on the way (each x(λ) is a feasible site set).
    """
    n_d, n_s = A_csc.shape
    At = A_csc.T.tocsr()
    free = np.ones(n_s, dtype=bool)
    free[fixed] = False
    k_free = p - len(fixed)
    deg = np.diff(A_csc.tocsr().indptr)
    lam = np.where(deg > 0, w / np.maximum(deg, 1), 0.0)
    best_ub = np.inf
    best_lam = lam
    best_lb, best_x = best_primal
    theta = 1.0
    stall = 0
    for _ in range(iterations):
        if deadline is not None and time.perf_counter() > deadline:
            break
        score = At @ lam
        x = np.zeros(n_s)
        x[fixed] = 1.0
        if k_free > 0:
            fs = np.flatnonzero(free)
            top = fs[np.argpartition(-score[fs], k_free - 1)[:k_free]] if k_free < fs.size else fs
            x[top] = 1.0
        y = (w - lam > 0).astype(np.float64)
        ub = float(np.maximum(w - lam, 0).sum() + score @ x)
        cover = A_csc @ x
        primal = float(w[cover > 0].sum())
        if primal > best_lb:
            best_lb, best_x = primal, np.flatnonzero(x)
        if ub < best_ub - 1e-9:
            best_ub, best_lam, stall = ub, lam, 0
        else:
            stall += 1
            if stall >= 15:
                theta, stall = theta / 2, 0
        g = y - cover  # UB(λ) decreases along −(−y + cover)
        norm = float(g @ g)
        if norm == 0 or best_ub - best_lb <= 1e-9 * max(1.0, best_ub) or theta < 1e-6:
            break
        step = theta * (ub - best_lb) / norm
        lam = np.clip(lam + step * g, 0.0, w)
    if return_multipliers:
        return best_ub, best_lb, best_x, best_lam
    return best_ub, best_lb, best_x


# ------------------------------------------------------------------------------------------ LSCP


class LSCP:
    """Location set covering: the fewest sites such that every demand point is covered."""

    name = "lscp"

    def __init__(self, coverage: Coverage, weights=None, fixed=None, capacity=None, skip_uncoverable=False):
        self.coverage = coverage
        self.weights, self.fixed = _check_common(coverage, weights, fixed)
        self.capacity = _capacity(capacity, coverage.n_sites)
        deg = np.diff(coverage.indptr)
        self.uncoverable = np.flatnonzero(deg == 0)
        if self.uncoverable.size and not skip_uncoverable:
            raise SitingError(
                f"{self.uncoverable.size} 个需求点在服务半径内没有任何候选点，无法全覆盖 "
                f"(demand points not coverable by any site, e.g. index {int(self.uncoverable[0])})"
            )

    @classmethod
    def from_coverage(cls, coverage: Coverage, **kw) -> LSCP:
        return cls(coverage, **kw)

    @classmethod
    def from_cost_matrix(cls, cost, service_radius: float, **kw) -> LSCP:
        return cls(Coverage.from_cost_matrix(cost, service_radius), **kw)

    def solve(self, method="auto", time_limit=600.0, mip_rel_gap=0.0) -> SitingResult:
        t0 = time.perf_counter()
        cov = self.coverage
        if self.capacity is not None:
            return _solve_assignment(self, "lscp", None, time_limit, mip_rel_gap, t0)
        A = cov.matrix()
        rows = np.flatnonzero(np.diff(cov.indptr) > 0)
        if self.fixed.size:  # demand already served by existing facilities needs no new site
            done = (A[:, self.fixed].sum(axis=1).A1 > 0)
            rows = rows[~done[rows]]
        if method == "auto":
            method = "exact" if _auto_exact(cov) else "heuristic"
        if method not in ("exact", "heuristic"):
            raise SitingError(f"unknown method {method!r}")
        free = np.ones(cov.n_sites, dtype=bool)
        free[self.fixed] = False
        free_cols = np.flatnonzero(free)
        # dominated rows / columns out (exact for unit costs), then a Lagrangian heuristic + bound
        r_keep, c_keep = _reduce_set_cover(A[rows][:, free_cols].tocsr())
        B = A[rows[r_keep]][:, free_cols[c_keep]].tocsr()
        deadline = t0 + (min(time_limit, 30.0) if method == "heuristic" else min(0.2 * time_limit, 10.0))
        cover, lb = _lagrangian_set_cover(B, deadline)
        best = free_cols[c_keep[cover]]
        lb_total = float(self.fixed.size + lb)
        if method == "heuristic" or best.size + self.fixed.size <= lb_total:
            sites = np.concatenate([self.fixed, best])
            gap = (sites.size - lb_total) / sites.size if sites.size else 0.0
            status = "Optimal" if gap <= 0 else "heuristic"
            return _result(self, "lscp", method, status, sites, float(sites.size), gap, lb_total, t0)
        n_b = B.shape[1]
        start = np.zeros(n_b)
        start[cover] = 1.0
        status, x, obj, gap, bound = _run_highs(
            np.ones(n_b), B, np.ones(B.shape[0]), np.full(B.shape[0], np.inf), np.zeros(n_b), np.ones(n_b),
            np.ones(n_b, dtype=bool), False, max(0.01, t0 + time_limit - time.perf_counter()), mip_rel_gap,
            start=start,
        )
        if x is None or np.sum(x > 0.5) > cover.size:
            chosen = best
        else:
            chosen = free_cols[c_keep[np.flatnonzero(x > 0.5)]]
        sites = np.concatenate([self.fixed, chosen])
        bound = max(lb_total, self.fixed.size + bound) if np.isfinite(bound) else lb_total
        gap = 0.0 if status == "Optimal" else max(0.0, (sites.size - bound) / sites.size)
        return _result(self, "lscp", method, status, sites, float(sites.size), gap, bound, t0)


def _reduce_set_cover(A: sp.csr_matrix):
    """Row and column dominance for unit-cost set cover, repeated to a fixed point.

    A row whose site set contains another row's set is implied by it; a column whose rows are a subset of
    another column's is never needed (ties keep the lower index). Returns kept row and column indices.
    """
    rows = np.arange(A.shape[0])
    cols = np.arange(A.shape[1])
    # the pairwise products have up to Σ|column|² (rows) / Σ|row|² (columns) entries: skip when too big
    if (np.diff(A.tocsc().indptr).astype(np.float64) ** 2).sum() > 3e7 or \
            (np.diff(A.indptr).astype(np.float64) ** 2).sum() > 3e7:
        return rows, cols
    while True:
        changed = False
        B = A[rows][:, cols].tocsr()
        S = (B @ B.T).tocoo()
        deg = np.diff(B.indptr)
        m = (S.row != S.col) & (S.data == deg[S.row]) & ((deg[S.row] < deg[S.col]) | (S.row < S.col))
        drop = np.unique(S.col[m])
        if drop.size:
            rows = np.delete(rows, drop)
            changed = True
        B = A[rows][:, cols].tocsc()
        T = (B.T @ B).tocoo()
        cdeg = np.diff(B.indptr)
        m = (T.row != T.col) & (T.data == cdeg[T.row]) & ((cdeg[T.row] < cdeg[T.col]) | (T.row > T.col))
        dropc = np.union1d(np.unique(T.row[m]), np.flatnonzero(cdeg == 0))
        if dropc.size:
            cols = np.delete(cols, dropc)
            changed = True
        if not changed:
            return rows, cols


def _complete_and_prune(B_csr, B_csc, x, score):
    """Make ``x`` (bool per column) a cover: each uncovered row takes its best-scored column; then
    drop redundant columns, worst score first."""
    x = x.copy()
    count = B_csr @ x.astype(np.float64)
    unc = np.flatnonzero(count == 0)
    for i in unc:
        if count[i] > 0:
            continue
        cols = B_csr.indices[B_csr.indptr[i] : B_csr.indptr[i + 1]]
        j = cols[np.argmin(score[cols])]
        x[j] = True
        count[B_csc.indices[B_csc.indptr[j] : B_csc.indptr[j + 1]]] += 1
    for j in np.flatnonzero(x)[np.argsort(-score[x], kind="stable")]:
        rws = B_csc.indices[B_csc.indptr[j] : B_csc.indptr[j + 1]]
        if (count[rws] >= 2).all():
            x[j] = False
            count[rws] -= 1
    return x


def _two_for_one(B_csr, B_csc, x, deadline=None, max_cover=150):
    """Local search on a cover: replace two of its columns by one column covering what they alone
    covered, while such a move exists. ``x`` bool per column (a cover); returns an equal or smaller cover.
    Quadratic in the cover size, so only for covers up to ``max_cover`` columns and until ``deadline``."""
    if x.sum() > max_cover:
        return x
    x = x.copy()
    count = B_csr @ x.astype(np.float64)
    improved = True
    while improved:
        improved = False
        chosen = np.flatnonzero(x)
        only = {}
        for j in chosen:  # rows covered by j alone, and rows covered exactly twice with j among them
            rws = B_csc.indices[B_csc.indptr[j] : B_csc.indptr[j + 1]]
            only[j] = (rws[count[rws] == 1], rws[count[rws] == 2])
        for a_i, a in enumerate(chosen):
            if deadline is not None and time.perf_counter() > deadline:
                return x
            for b in chosen[a_i + 1 :]:
                twice = np.intersect1d(only[a][1], only[b][1], assume_unique=True)
                need = np.concatenate([only[a][0], only[b][0], twice])
                if need.size == 0:
                    new = None
                else:
                    hits = np.bincount(B_csr.indices[np.concatenate(
                        [np.arange(B_csr.indptr[i], B_csr.indptr[i + 1]) for i in need])], minlength=B_csr.shape[1])
                    cand = np.flatnonzero(hits == need.size)
                    cand = cand[~x[cand]]
                    if cand.size == 0:
                        continue
                    new = int(cand[0])
                for j in (a, b):
                    x[j] = False
                    count[B_csc.indices[B_csc.indptr[j] : B_csc.indptr[j + 1]]] -= 1
                if new is not None:
                    x[new] = True
                    count[B_csc.indices[B_csc.indptr[new] : B_csc.indptr[new + 1]]] += 1
                improved = True
                break
            if improved:
                break
    return x


def _lagrangian_set_cover(B: sp.csr_matrix, deadline, iterations=2000):
    """Lagrangian heuristic for unit-cost set cover (subgradient on the cover rows, Beasley style).

    Returns (best cover as column indices, lower bound ⌈max L(u)⌉). L(u) = Σu_i + Σ_j min(0, 1 − (Bᵀu)_j).
    """
    n_r, n_c = B.shape
    if n_r == 0:
        return np.zeros(0, dtype=np.int64), 0.0
    B_csc = B.tocsc()
    Bt = B_csc.T.tocsr()
    col_size = np.diff(B_csc.indptr).astype(np.float64)
    greedy = _two_for_one(B, B_csc, _complete_and_prune(B, B_csc, np.zeros(n_c, dtype=bool), -col_size), deadline)
    best_x, ub = greedy, int(greedy.sum())
    # u_i = 1 / (size of the largest column covering i): a dual-feasible start
    big = np.maximum.reduceat(col_size[B.indices], B.indptr[:-1]) if B.nnz else np.ones(n_r)
    u = 1.0 / np.maximum(big, 1.0)
    lb, f, stall = 0.0, 2.0, 0
    for _ in range(iterations):
        if time.perf_counter() > deadline:
            break
        rc = 1.0 - Bt @ u
        x = rc < 0
        val = float(u.sum() + rc[x].sum())
        if val > lb + 1e-9:
            lb, stall = val, 0
        else:
            stall += 1
            if stall >= 20:
                f, stall = f / 2, 0
        cand = _complete_and_prune(B, B_csc, x, rc)
        if cand.sum() <= ub + 1:
            cand = _two_for_one(B, B_csc, cand, deadline)
        if cand.sum() < ub:
            best_x, ub = cand, int(cand.sum())
        if np.ceil(lb - 1e-6) >= ub or f < 1e-4:
            break
        g = 1.0 - B @ x.astype(np.float64)
        norm = float(g @ g)
        if norm == 0:
            break
        u = np.maximum(0.0, u + f * (1.05 * ub - val) / norm * g)
    return np.flatnonzero(best_x), float(np.ceil(lb - 1e-6))


# ------------------------------------------------------------------------------------------ MCLP


class MCLP:
    """Maximal covering: open ``p`` sites (fixed ones included) covering the most demand weight."""

    name = "mclp"

    def __init__(self, coverage: Coverage, p: int, weights=None, fixed=None, capacity=None):
        self.coverage = coverage
        self.p = int(p)
        self.weights, self.fixed = _check_common(coverage, weights, fixed, p=self.p)
        self.capacity = _capacity(capacity, coverage.n_sites)
        self.uncoverable = np.flatnonzero(np.diff(coverage.indptr) == 0)

    @classmethod
    def from_coverage(cls, coverage: Coverage, p: int, **kw) -> MCLP:
        return cls(coverage, p, **kw)

    @classmethod
    def from_cost_matrix(cls, cost, service_radius: float, p: int, **kw) -> MCLP:
        return cls(Coverage.from_cost_matrix(cost, service_radius), p, **kw)

    def solve(self, method="auto", time_limit=600.0, mip_rel_gap=0.0) -> SitingResult:
        t0 = time.perf_counter()
        cov, w = self.coverage, self.weights
        if self.capacity is not None:
            return _solve_assignment(self, "mclp", self.p, time_limit, mip_rel_gap, t0)
        A = cov.matrix()
        A_csc = A.tocsc()
        if method == "auto":
            method = "exact" if _auto_exact(cov) else "heuristic"
        chosen, count = _greedy_max_cover(A_csc, w, self.p, self.fixed)
        if method == "heuristic":
            time_limit = min(time_limit, HEURISTIC_MAX_SECONDS)
            deadline = t0 + time_limit
            chosen, count = _swap_improve(A_csc, w, chosen, count, self.fixed, t0 + 0.3 * time_limit)
            primal = float(w[count > 0].sum())
            ub, lb, x_best, lam = _lagrangian_mclp_bound(
                A_csc, w, self.p, self.fixed, (primal, chosen), iterations=1000,
                deadline=t0 + 0.7 * time_limit, return_multipliers=True,
            )
            if lb > primal:
                chosen, count, primal = x_best, cov.cover_count(x_best).astype(np.float64), lb
            # Lagrangian rounding (the p best sites by Aᵀλ at the best multipliers), then swaps
            k_free = self.p - self.fixed.size
            if k_free > 0:
                score = A_csc.T.tocsr() @ lam
                score[self.fixed] = -np.inf
                trial = np.concatenate([self.fixed, np.argsort(-score, kind="stable")[:k_free]])
                trial, tcount = _swap_improve(A_csc, w, trial, cov.cover_count(trial), self.fixed, deadline)
                if float(w[tcount > 0].sum()) > primal:
                    chosen, primal = trial, float(w[tcount > 0].sum())
            sites = np.sort(np.asarray(chosen))
            gap = (ub - primal) / ub if ub > 0 else 0.0
            return _result(self, "mclp", "heuristic", "heuristic", sites, primal, max(gap, 0.0), ub, t0)
        if method != "exact":
            raise SitingError(f"unknown method {method!r}")
        rows = np.flatnonzero(np.diff(cov.indptr) > 0)  # uncoverable demand cannot count
        rows = rows[w[rows] > 0]
        A_r = A[rows]
        n_s, n_r = cov.n_sites, rows.size
        # variables [x_0..x_{n_s-1}, y_0..y_{n_r-1}];  y_i − Σ_j a_ij x_j ≤ 0;  Σ x_j = p
        M = sp.vstack([
            sp.hstack([-A_r, sp.identity(n_r, format="csr")]),
            sp.hstack([sp.csr_matrix(np.ones((1, n_s))), sp.csr_matrix((1, n_r))]),
        ]).tocsc()
        row_lo = np.concatenate([np.full(n_r, -np.inf), [self.p]])
        row_hi = np.concatenate([np.zeros(n_r), [self.p]])
        col_lo = np.zeros(n_s + n_r)
        col_lo[self.fixed] = 1.0
        col_hi = np.ones(n_s + n_r)
        c = np.concatenate([np.zeros(n_s), w[rows]])
        integer = np.concatenate([np.ones(n_s, dtype=bool), np.zeros(n_r, dtype=bool)])
        # 1) incumbent: greedy + a short swap search
        chosen, count = _swap_improve(A_csc, w, chosen, count, self.fixed, t0 + min(0.1 * time_limit, 10.0))
        best_val = float(w[count > 0].sum())
        # 2) LP relaxation by interior point; 3) reduced-cost fixing against the incumbent: a site whose
        #    LP bound with its value flipped cannot beat the incumbent is fixed (classic, exact)
        status, x_lp, ub_lp, dj = _lp_relaxation(c, M, row_lo, row_hi, col_lo, col_hi, True,
                                                 max(0.01, t0 + time_limit - time.perf_counter()))
        fixed0 = fixed1 = 0
        if x_lp is not None and mip_rel_gap == 0.0:
            k_free = self.p - self.fixed.size
            if k_free > 0:  # LP rounding: the largest x_j
                free = np.ones(n_s, dtype=bool)
                free[self.fixed] = False
                fs = np.flatnonzero(free)
                top = fs[np.argsort(-x_lp[:n_s][fs], kind="stable")[:k_free]]
                trial = np.concatenate([self.fixed, top])
                trial, tcount = _swap_improve(A_csc, w, trial, cov.cover_count(trial), self.fixed,
                                              time.perf_counter() + min(0.05 * time_limit, 5.0))
                val = float(w[tcount > 0].sum())
                if val > best_val:
                    best_val, chosen, count = val, trial, tcount
            integral = bool(np.all(w == np.round(w)))
            need = best_val + (1.0 - 1e-6 if integral else 1e-9 * max(1.0, abs(best_val)))
            if ub_lp < need:  # the LP bound proves the incumbent optimal
                sites = np.sort(chosen)
                return _result(self, "mclp", "exact", "Optimal", sites, best_val, 0.0, ub_lp, t0)
            d = np.abs(dj[:n_s])
            xs = x_lp[:n_s]
            can_flip = np.ones(n_s, dtype=bool)
            can_flip[self.fixed] = False
            f0 = can_flip & (xs < 1e-7) & (ub_lp - d < need)
            f1 = can_flip & (xs > 1 - 1e-7) & (ub_lp - d < need)
            col_hi = col_hi.copy()
            col_lo = col_lo.copy()
            col_hi[:n_s][f0] = 0.0
            col_lo[:n_s][f1] = 1.0
            fixed0, fixed1 = int(f0.sum()), int(f1.sum())
        start = np.zeros(n_s + n_r)
        start[chosen] = 1.0
        start[n_s:] = (count[rows] > 0).astype(np.float64)
        status, x, obj, gap, bound = _run_highs(
            c, M, row_lo, row_hi, col_lo, col_hi, integer, True,
            max(0.01, t0 + time_limit - time.perf_counter()), mip_rel_gap, start=start
        )
        self.reduced_cost_fixed = (fixed0, fixed1)
        self.incumbent = best_val
        if x is None or obj < best_val:
            if x is None and best_val <= 0:
                raise SitingError(f"HiGHS 未找到可行解 (status: {status})")
            sites, covered = np.sort(chosen), best_val
        else:
            sites = np.flatnonzero(x[:n_s] > 0.5)
            covered = float(w[cov.cover_count(sites) > 0].sum())
        bound = max(bound, covered) if np.isfinite(bound) else (ub_lp if ub_lp is not None else covered)
        if ub_lp is not None:
            bound = min(bound, ub_lp)
        gap = 0.0 if status == "Optimal" else (bound - covered) / bound if bound > 0 else 0.0
        return _result(self, "mclp", "exact", status, sites, covered, gap, bound, t0)


# -------------------------------------------------------------------------------------- p-median


class PMedian:
    """p-median: open ``p`` sites minimising the weighted distance of each demand to its nearest site.

    Only pairs within the coverage cut-off exist (sparse); demand no site can reach is left out and
    reported as ``uncoverable``. If ``p`` sites cannot serve all the rest within the cut-off the
    instance is infeasible (raise the radius or ``p``).
    """

    name = "pmedian"

    def __init__(self, coverage: Coverage, p: int, weights=None, fixed=None, capacity=None):
        self.coverage = coverage
        self.p = int(p)
        self.weights, self.fixed = _check_common(coverage, weights, fixed, p=self.p)
        self.capacity = _capacity(capacity, coverage.n_sites)
        self.uncoverable = np.flatnonzero(np.diff(coverage.indptr) == 0)

    @classmethod
    def from_coverage(cls, coverage: Coverage, p: int, **kw) -> PMedian:
        return cls(coverage, p, **kw)

    @classmethod
    def from_cost_matrix(cls, cost, p: int, max_cost: float = np.inf, **kw) -> PMedian:
        return cls(Coverage.from_cost_matrix(cost, max_cost), p, **kw)

    def solve(self, method="auto", time_limit=600.0, mip_rel_gap=0.0) -> SitingResult:
        t0 = time.perf_counter()
        if method == "auto":
            method = "exact" if _auto_exact(self.coverage) else "heuristic"
        if method == "heuristic":
            time_limit = min(time_limit, HEURISTIC_MAX_SECONDS)
            return _pmedian_heuristic(self, time_limit, t0)
        if method != "exact":
            raise SitingError(f"unknown method {method!r}")
        return _solve_assignment(self, "pmedian", self.p, time_limit, mip_rel_gap, t0)


def _pmedian_cost(cov: Coverage, w, sites):
    site, dist = cov.nearest(sites)
    served = site >= 0
    return float((w[served] * dist[served]).sum()), served


def _pmedian_heuristic(model: PMedian, time_limit, t0):
    """Greedy add + interchange (Teitz–Bart style) over the sparse pairs; gap to a Lagrangian lower bound."""
    cov, w, p, fixed = model.coverage, model.weights, model.p, model.fixed
    reach = np.diff(cov.indptr) > 0
    deadline = t0 + time_limit
    # start with a covering greedy (so every reachable demand gets served), then improve cost
    chosen, count = _greedy_max_cover(cov.matrix().tocsc(), reach.astype(np.float64), p, fixed)
    if (count[reach] == 0).any():  # the greedy found no feasible start: let the MILP decide (it may prove infeasible)
        return _solve_assignment(model, "pmedian", p, max(1.0, deadline - time.perf_counter()), 0.0, t0)
    chosen = list(chosen)
    fixed_set = set(int(f) for f in fixed)
    best_cost, _ = _pmedian_cost(cov, w, chosen)
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
            cands = np.unique(np.concatenate([cov.indices[cov.indptr[r] : cov.indptr[r + 1]] for r in rows])) if rows.size else []
            for j in cands:
                if j in chosen:
                    continue
                trial = chosen.copy()
                trial[k] = int(j)
                if (cov.cover_count(trial)[reach] == 0).any():
                    continue
                cost, _ = _pmedian_cost(cov, w, trial)
                if cost < best_cost - 1e-9:
                    best_cost, chosen, improved = cost, trial, True
                    break
    sites = np.sort(np.array(chosen, dtype=np.int64))
    lb = _lagrangian_pmedian_bound(cov, w, p, fixed, reach, best_cost, deadline=max(deadline, time.perf_counter() + 2.0))
    gap = (best_cost - lb) / best_cost if best_cost > 0 else 0.0
    return _result(model, "pmedian", "heuristic", "heuristic", sites, best_cost, max(0.0, gap), lb, t0)


def _lagrangian_pmedian_bound(cov: Coverage, w, p, fixed, reach, ub, iterations=500, deadline=None):
    """Lower bound on the sparse p-median from relaxing Σ_j z_ij = 1 (multipliers u_i):

    L(u) = Σ_i u_i + Σ_{j ∈ S(u)} ρ_j,  ρ_j = Σ_{i: (i,j) within the cut-off} min(0, w_i d_ij − u_i),
    S(u) = the fixed sites + the p − |fixed| most negative ρ. Maximised by subgradient.
    """
    rows = cov.demand_idx
    cost = w[rows] * cov.distance_m
    n_s = cov.n_sites
    free = np.ones(n_s, dtype=bool)
    free[fixed] = False
    k = p - len(fixed)
    # start: each demand's second-cheapest (else cheapest) assignment cost
    u = np.zeros(cov.n_demand)
    order = np.lexsort((cost, rows))
    r_sorted, c_sorted = rows[order], cost[order]
    first = np.ones(r_sorted.size, dtype=bool)
    first[1:] = r_sorted[1:] != r_sorted[:-1]
    u[r_sorted[first]] = c_sorted[first]
    u = u * reach
    best, theta, stall = -np.inf, 2.0, 0
    for _ in range(iterations):
        if deadline is not None and time.perf_counter() > deadline:
            break
        v = cost - u[rows]
        neg = v < 0
        rho = np.bincount(cov.indices[neg], weights=v[neg], minlength=n_s)
        x = np.zeros(n_s, dtype=bool)
        x[fixed] = True
        if k > 0:
            fs = np.flatnonzero(free)
            x[fs[np.argpartition(rho[fs], k - 1)[:k]] if k < fs.size else fs] = True
        val = float(u.sum() + rho[x].sum())
        if val > best + 1e-9:
            best, stall = val, 0
        else:
            stall += 1
            if stall >= 20:
                theta, stall = theta / 2, 0
        assigned = np.bincount(rows[neg & x[cov.indices]], minlength=cov.n_demand)
        g = (1.0 - assigned) * reach
        norm = float(g @ g)
        if norm == 0 or theta < 1e-5 or ub - best <= 1e-9 * max(1.0, abs(ub)):
            break
        u = u + theta * (ub - val) / norm * g
    return float(max(best, 0.0))


def _solve_assignment(model, name, p, time_limit, mip_rel_gap, t0):
    """Assignment formulation (p-median, and capacitated LSCP/MCLP): variables x_j (open) and z_k per pair."""
    cov, w, fixed, cap = model.coverage, model.weights, model.fixed, model.capacity
    n_s, n_d = cov.n_sites, cov.n_demand
    reach = np.diff(cov.indptr) > 0
    if name == "mclp":
        pair_keep = reach[cov.demand_idx] & (w[cov.demand_idx] > 0)
    else:
        pair_keep = reach[cov.demand_idx]
    dem = cov.demand_idx[pair_keep]
    site = cov.indices[pair_keep]
    dist = cov.distance_m[pair_keep]
    n_z = dem.size
    rows_d = np.unique(dem)
    rmap = np.full(n_d, -1, dtype=np.int64)
    rmap[rows_d] = np.arange(rows_d.size)
    blocks, lo, hi = [], [], []
    zcols = n_s + np.arange(n_z)
    # each demand: Σ_j z_ij = 1 (LSCP, p-median) or ≤ 1 (MCLP)
    blocks.append(sp.csr_matrix((np.ones(n_z), (rmap[dem], zcols)), shape=(rows_d.size, n_s + n_z)))
    lo.append(np.ones(rows_d.size) if name != "mclp" else np.zeros(rows_d.size))
    hi.append(np.ones(rows_d.size))
    # linking z_ij ≤ x_j
    k = np.arange(n_z)
    blocks.append(sp.csr_matrix(
        (np.concatenate([np.ones(n_z), -np.ones(n_z)]), (np.concatenate([k, k]), np.concatenate([zcols, site]))),
        shape=(n_z, n_s + n_z)))
    lo.append(np.full(n_z, -np.inf))
    hi.append(np.zeros(n_z))
    if cap is not None:  # Σ_i w_i z_ij − c_j x_j ≤ 0
        blocks.append(sp.csr_matrix(
            (np.concatenate([w[dem], -cap]), (np.concatenate([site, np.arange(n_s)]),
                                              np.concatenate([zcols, np.arange(n_s)]))),
            shape=(n_s, n_s + n_z)))
        lo.append(np.full(n_s, -np.inf))
        hi.append(np.zeros(n_s))
    if p is not None:
        blocks.append(sp.csr_matrix((np.ones(n_s), (np.zeros(n_s, dtype=np.int64), np.arange(n_s))),
                                    shape=(1, n_s + n_z)))
        lo.append([p])
        hi.append([p])
    M = sp.vstack(blocks).tocsc()
    col_lo = np.zeros(n_s + n_z)
    col_lo[fixed] = 1.0
    col_hi = np.ones(n_s + n_z)
    integer = np.concatenate([np.ones(n_s, dtype=bool), np.zeros(n_z, dtype=bool)])
    if name == "lscp":
        c, maximize = np.concatenate([np.ones(n_s), np.zeros(n_z)]), False
    elif name == "mclp":
        c, maximize = np.concatenate([np.zeros(n_s), w[dem]]), True
    else:
        c, maximize = np.concatenate([np.zeros(n_s), w[dem] * dist]), False
    status, x, obj, gap, bound = _run_highs(
        c, M, np.concatenate(lo), np.concatenate(hi), col_lo, col_hi, integer, maximize, time_limit, mip_rel_gap
    )
    if x is None:
        if status.lower().startswith("infeasible"):
            raise SitingError(
                f"模型无可行解：{'p 个' if p else ''}设施无法在半径/容量约束下服务所有需求 "
                f"(infeasible: raise p, the radius or the capacities)"
            )
        raise SitingError(f"HiGHS 未找到可行解 (status: {status})")
    sites = np.flatnonzero(x[:n_s] > 0.5)
    z = x[n_s:]
    assignment = np.full(n_d, -1, dtype=np.int64)
    best = np.zeros(n_d)
    for d_, s_, v_ in zip(dem, site, z, strict=True):  # assignment = the largest share
        if v_ > best[d_] + 1e-9:
            best[d_], assignment[d_] = v_, s_
    if name == "lscp":
        objective = float(sites.size)
    elif name == "mclp":
        objective = float(c[n_s:] @ z)
    else:
        objective = float(obj)
    res = _result(model, name, "exact", status, sites, objective, gap, bound, t0)
    if cap is not None or name == "pmedian":
        res.assignment = assignment
        served = assignment >= 0
        res.covered_weight = float((w * best)[served].sum()) if name == "mclp" else float(w[served].sum())
        res.covered_share = res.covered_weight / res.total_weight if res.total_weight > 0 else 0.0
    return res


def _result(model, name, method, status, sites, objective, gap, bound, t0) -> SitingResult:
    cov, w = model.coverage, model.weights
    sites = np.sort(np.asarray(sites, dtype=np.int64))
    site_of, _ = cov.nearest(sites)
    covered = site_of >= 0
    total = float(w.sum())
    cw = float(w[covered].sum())
    return SitingResult(
        model=name, method=method, status=status, sites=sites, objective=float(objective),
        covered_weight=cw, total_weight=total, covered_share=cw / total if total > 0 else 0.0,
        gap=None if gap is None else float(max(0.0, gap)), bound=bound,
        seconds=time.perf_counter() - t0, assignment=site_of if name == "pmedian" else None,
        uncoverable=getattr(model, "uncoverable", np.zeros(0, dtype=np.int64)),
    )


MODELS = {"lscp": LSCP, "mclp": MCLP, "pmedian": PMedian}
