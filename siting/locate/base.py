"""What the location models share: input checks, the result record, the assignment MILP, `_FacilityModel`.

The shape follows pysal/spopt's ``locate/base.py``: one base class owns the constructor (coverage, ``p``,
weights, fixed sites, capacities), ``from_coverage``, the ``uncoverable`` demand and the result record;
each model family lives in its own module (:mod:`.lscp`, :mod:`.mclp`, :mod:`.pmedian`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Self

import numpy as np
import scipy.sparse as sp

from ..coverage import Coverage
from ..errors import SitingError
from ..solvers.highs import run_highs

EXACT_MAX_PAIRS = 3_000_000
EXACT_MAX_SITES = 5_000
#: the heuristics stop by this many seconds even when a longer (exact-sized) time limit is passed
HEURISTIC_MAX_SECONDS = 45.0


@dataclass
class SitingResult:
    """A solved model: the open sites, the objective, coverage, and the gap to the best proven bound."""

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
        """The JSON summary (site indices, or their ids when ``site_ids`` is given)."""
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


def auto_exact(coverage: Coverage) -> bool:
    """Whether ``method="auto"`` picks the exact MILP for this instance (ordinary sizes) over a heuristic."""
    return coverage.nnz <= EXACT_MAX_PAIRS and coverage.n_sites <= EXACT_MAX_SITES


@dataclass
class _AssignmentMilp:
    """The assignment formulation's arrays: variables x_j (open) then z_k (one per kept pair)."""

    dem: np.ndarray  # demand index of each kept pair
    site: np.ndarray  # site index of each kept pair
    c: np.ndarray
    M: sp.csc_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    integer: np.ndarray
    maximize: bool


class _FacilityModel:
    """Base of the location models: checked inputs, ``from_coverage``, ``uncoverable`` and the result.

    ``p`` is the total number of open sites, fixed ones included (``None`` for models without one);
    ``capacity`` (per site, in demand-weight units) switches to the assignment formulation.
    """

    name = ""

    def __init__(self, coverage: Coverage, p: int | None, weights=None, fixed=None, capacity=None):
        self.coverage = coverage
        self.p = None if p is None else int(p)
        self.weights, self.fixed = _check_common(coverage, weights, fixed, p=self.p)
        self.capacity = _capacity(capacity, coverage.n_sites)
        #: demand points no site reaches within the cut-off
        self.uncoverable = np.flatnonzero(np.diff(coverage.indptr) == 0)

    @classmethod
    def from_coverage(cls, coverage: Coverage, *args, **kw) -> Self:
        """The model over a ready :class:`~siting.coverage.Coverage` (the other arguments as the constructor's)."""
        return cls(coverage, *args, **kw)

    def _resolve_method(self, method: str) -> str:
        """``"auto"`` → exact for ordinary sizes, heuristic for city-size instances; others must be one of them."""
        if method == "auto":
            method = "exact" if auto_exact(self.coverage) else "heuristic"
        if method not in ("exact", "heuristic"):
            raise SitingError(f"unknown method {method!r}")
        return method

    def _result(self, method, status, sites, objective, gap, bound, t0) -> SitingResult:
        cov, w = self.coverage, self.weights
        sites = np.sort(np.asarray(sites, dtype=np.int64))
        site_of, _ = cov.nearest(sites)
        covered = site_of >= 0
        total = float(w.sum())
        cw = float(w[covered].sum())
        return SitingResult(
            model=self.name, method=method, status=status, sites=sites, objective=float(objective),
            covered_weight=cw, total_weight=total, covered_share=cw / total if total > 0 else 0.0,
            gap=None if gap is None else float(max(0.0, gap)), bound=bound,
            seconds=time.perf_counter() - t0, assignment=site_of if self.name == "pmedian" else None,
            uncoverable=self.uncoverable,
        )

    # ------------------------------------------------------------ assignment formulation (exact only)

    def _assignment_milp(self) -> _AssignmentMilp:
        """p-median, and capacitated LSCP/MCLP: Σ_j z_ij = 1 (≤ 1 for MCLP), z_ij ≤ x_j, capacities, Σ x_j = p."""
        cov, w, cap, p, name = self.coverage, self.weights, self.capacity, self.p, self.name
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
        blocks: list[sp.csr_matrix] = []
        lo: list = []
        hi: list = []
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
        col_lo = np.zeros(n_s + n_z)
        col_lo[self.fixed] = 1.0
        if name == "lscp":
            c, maximize = np.concatenate([np.ones(n_s), np.zeros(n_z)]), False
        elif name == "mclp":
            c, maximize = np.concatenate([np.zeros(n_s), w[dem]]), True
        else:
            c, maximize = np.concatenate([np.zeros(n_s), w[dem] * dist]), False
        return _AssignmentMilp(
            dem=dem, site=site, c=c, M=sp.vstack(blocks).tocsc(), row_lo=np.concatenate(lo),
            row_hi=np.concatenate(hi), col_lo=col_lo, col_hi=np.ones(n_s + n_z),
            integer=np.concatenate([np.ones(n_s, dtype=bool), np.zeros(n_z, dtype=bool)]), maximize=maximize,
        )

    def _solve_assignment(self, time_limit, mip_rel_gap, t0) -> SitingResult:
        """Solve the assignment formulation with HiGHS; the result carries each demand's serving site."""
        cov, w, name = self.coverage, self.weights, self.name
        n_s, n_d = cov.n_sites, cov.n_demand
        m = self._assignment_milp()
        status, x, obj, gap, bound = run_highs(
            m.c, m.M, m.row_lo, m.row_hi, m.col_lo, m.col_hi, m.integer, m.maximize, time_limit, mip_rel_gap
        )
        if x is None:
            if status.lower().startswith("infeasible"):
                raise SitingError(
                    f"模型无可行解：{'p 个' if self.p else ''}设施无法在半径/容量约束下服务所有需求 "
                    f"(infeasible: raise p, the radius or the capacities)"
                )
            raise SitingError(f"HiGHS 未找到可行解 (status: {status})")
        sites = np.flatnonzero(x[:n_s] > 0.5)
        z = x[n_s:]
        assignment = np.full(n_d, -1, dtype=np.int64)
        best = np.zeros(n_d)
        for d_, s_, v_ in zip(m.dem, m.site, z, strict=True):  # assignment = the largest share
            if v_ > best[d_] + 1e-9:
                best[d_], assignment[d_] = v_, s_
        if name == "lscp":
            objective = float(sites.size)
        elif name == "mclp":
            objective = float(m.c[n_s:] @ z)
        else:
            objective = float(obj)
        res = self._result("exact", status, sites, objective, gap, bound, t0)
        if self.capacity is not None or name == "pmedian":
            res.assignment = assignment
            served = assignment >= 0
            res.covered_weight = float((w * best)[served].sum()) if name == "mclp" else float(w[served].sum())
            res.covered_share = res.covered_weight / res.total_weight if res.total_weight > 0 else 0.0
        return res
