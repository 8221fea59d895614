"""Heuristic pieces of the location models: greedy, interchange (swap) searches and Lagrangian bounds.

Maximal covering: `greedy_max_cover`, `swap_improve`, `lagrangian_mclp_bound` (an upper bound, with the
best primal met on the way) and `lns_max_cover` (large-neighbourhood search: HiGHS on regions of an incumbent). Set covering: `reduce_set_cover` (dominance), `complete_and_prune`,
`two_for_one` and `lagrangian_set_cover` (Beasley-style heuristic with a lower bound). p-median:
`lagrangian_pmedian_bound` (a lower bound). All work on scipy sparse matrices; none knows a model class.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from ..coverage import Coverage

# ------------------------------------------------------------------------------ maximal covering


def greedy_max_cover(A_csc: sp.csc_matrix, w, p, fixed):
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


def swap_improve(A_csc: sp.csc_matrix, w, chosen, count, fixed, deadline, max_rounds=10_000):
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


def lagrangian_mclp_bound(A_csc, w, p, fixed, best_primal, iterations=300, deadline=None,
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

def lns_max_cover(A_csr: sp.csr_matrix, c, chosen, movable, deadline, max_destroy=6, max_free=250,
                  sub_seconds=5.0):
    """Large-neighbourhood search for MCLP: re-solve a region of the incumbent exactly with HiGHS.

    ``A_csr`` rows × sites (0/1), ``c`` the row weights, ``chosen`` the open sites, ``movable`` a bool per
    site (False: must stay as it is — a fixed site). For each open movable site s in turn: the free sites
    are those within two overlap hops of s (sharing demand with a site that shares demand with s; up to
    ``max_free``, nearest hops first), the destroyed ones the open sites among them (s first, up to
    ``max_destroy``); the sub-MIP re-places that many sites over the free ones to cover the most weight
    that the other open sites leave uncovered. A better placement replaces the old one; the search stops
    after a full pass without improvement or at ``deadline``. Returns (open sites, covered weight, moves).
    """
    from .highs import run_highs

    n_r, n_s = A_csr.shape
    A_csc = A_csr.tocsc()
    G = (A_csc.T @ A_csc).tocsr()  # sites sharing demand
    is_open = np.zeros(n_s, dtype=bool)
    is_open[np.asarray(chosen, dtype=np.int64)] = True
    count = A_csr @ is_open.astype(np.float64)
    moves = 0
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        for s in np.flatnonzero(is_open & movable):
            if time.perf_counter() >= deadline:
                break
            if not is_open[s]:
                continue
            h1 = G.indices[G.indptr[s]:G.indptr[s + 1]]
            h2 = np.setdiff1d(np.unique(G[h1].indices), h1)
            F = np.concatenate([[s], np.setdiff1d(h1, [s]), h2])[:max_free]
            F = F[movable[F]]
            D = F[is_open[F]][:max_destroy]
            F = F[~is_open[F] | np.isin(F, D)]
            cnt_keep = count - (A_csr[:, D] @ np.ones(D.size) if D.size else 0.0)
            R = np.unique(A_csc[:, F].indices)
            R = R[cnt_keep[R] == 0]
            if R.size == 0:
                continue
            A_sub = A_csr[R][:, F].tocsc()
            c_sub = np.asarray(c, dtype=np.float64)[R]
            in_d = np.isin(F, D).astype(np.float64)
            cur = float(c_sub[(A_sub @ in_d) > 0].sum())
            nf, nr = F.size, R.size
            M = sp.vstack([
                sp.hstack([-A_sub, sp.identity(nr, format="csc")]),
                sp.hstack([sp.csc_matrix(np.ones((1, nf))), sp.csc_matrix((1, nr))]),
            ]).tocsc()
            start = np.concatenate([in_d, ((A_sub @ in_d) > 0).astype(np.float64)])
            status, x, obj, _gap, _bound = run_highs(
                np.concatenate([np.zeros(nf), c_sub]), M, np.concatenate([np.full(nr, -np.inf), [D.size]]),
                np.concatenate([np.zeros(nr), [D.size]]), np.zeros(nf + nr), np.ones(nf + nr),
                np.concatenate([np.ones(nf, dtype=bool), np.zeros(nr, dtype=bool)]), True,
                min(sub_seconds, max(0.01, deadline - time.perf_counter())), 0.0, start=start,
            )
            if x is None:
                continue
            new = F[x[:nf] > 0.5]
            if new.size != D.size:
                continue
            gain = float(c_sub[(A_sub[:, x[:nf] > 0.5] @ np.ones(new.size)) > 0].sum()) - cur
            if gain > 1e-9:
                count -= A_csr[:, D] @ np.ones(D.size)
                count += A_csr[:, new] @ np.ones(new.size)
                is_open[D] = False
                is_open[new] = True
                moves += 1
                improved = True
    sites = np.flatnonzero(is_open)
    return sites, float(np.asarray(c, dtype=np.float64)[count > 0].sum()), moves

# ------------------------------------------------------------------------------- set covering


def reduce_set_cover(A: sp.csr_matrix):
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


def complete_and_prune(B_csr, B_csc, x, score):
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


def two_for_one(B_csr, B_csc, x, deadline=None, max_cover=150):
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


def lagrangian_set_cover(B: sp.csr_matrix, deadline, iterations=2000):
    """Lagrangian heuristic for unit-cost set cover (subgradient on the cover rows, Beasley style).

    Returns (best cover as column indices, lower bound ⌈max L(u)⌉). L(u) = Σu_i + Σ_j min(0, 1 − (Bᵀu)_j).
    """
    n_r, n_c = B.shape
    if n_r == 0:
        return np.zeros(0, dtype=np.int64), 0.0
    B_csc = B.tocsc()
    Bt = B_csc.T.tocsr()
    col_size = np.diff(B_csc.indptr).astype(np.float64)
    greedy = two_for_one(B, B_csc, complete_and_prune(B, B_csc, np.zeros(n_c, dtype=bool), -col_size), deadline)
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
        cand = complete_and_prune(B, B_csc, x, rc)
        if cand.sum() <= ub + 1:
            cand = two_for_one(B, B_csc, cand, deadline)
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

# ------------------------------------------------------------------------------------- p-median


def lagrangian_pmedian_bound(cov: Coverage, w, p, fixed, reach, ub, iterations=500, deadline=None):
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
