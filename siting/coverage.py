"""Sparse demand × site coverage.

A :class:`Coverage` holds, for every demand point, the sites that serve it and the distance to each,
as CSR arrays (rows = demand, columns = sites). It is never a dense |I|×|J| matrix: only pairs within
the cut-off are stored, so a city-size instance (100,000 × 10,000) stays a few million entries.

Coordinates are metres in a projected CRS (the API projects WGS84 to EPSG:32651 first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class Coverage:
    """Demand × site pairs within a cut-off, CSR layout (row = demand point).

    ``distance_m`` is kept alongside the pattern (explicit zeros included: a site standing on a demand
    point covers it at distance 0), so the same object feeds LSCP/MCLP (the pattern) and p-median
    (the distances).
    """

    n_demand: int
    n_sites: int
    indptr: np.ndarray  # int64, len n_demand + 1
    indices: np.ndarray  # int64 site index per pair
    distance_m: np.ndarray  # float64 per pair

    @classmethod
    def from_pairs(cls, demand_idx, site_idx, distance_m, n_demand: int, n_sites: int) -> Coverage:
        """Build from unordered (demand, site, distance) triples; duplicate pairs keep the shortest."""
        d = np.asarray(demand_idx, dtype=np.int64)
        s = np.asarray(site_idx, dtype=np.int64)
        dist = np.asarray(distance_m, dtype=np.float64)
        if d.size:
            order = np.lexsort((dist, s, d))
            d, s, dist = d[order], s[order], dist[order]
            keep = np.ones(d.size, dtype=bool)
            keep[1:] = (d[1:] != d[:-1]) | (s[1:] != s[:-1])
            d, s, dist = d[keep], s[keep], dist[keep]
        indptr = np.zeros(n_demand + 1, dtype=np.int64)
        np.cumsum(np.bincount(d, minlength=n_demand), out=indptr[1:])
        return cls(int(n_demand), int(n_sites), indptr, s, dist)

    @classmethod
    def from_cost_matrix(cls, cost, max_cost: float) -> Coverage:
        """From a dense or sparse cost matrix (rows demand, columns sites): pairs with cost ≤ ``max_cost``.

        For a sparse input, only its stored entries are candidates (absent = unreachable).
        """
        if sp.issparse(cost):
            coo = sp.coo_matrix(cost)
            mask = coo.data <= max_cost
            return cls.from_pairs(coo.row[mask], coo.col[mask], coo.data[mask], *coo.shape)
        cost = np.asarray(cost, dtype=np.float64)
        i, j = np.nonzero(cost <= max_cost)
        return cls.from_pairs(i, j, cost[i, j], *cost.shape)

    @property
    def nnz(self) -> int:
        """Number of stored demand–site pairs."""
        return int(self.indices.size)

    @property
    def demand_idx(self) -> np.ndarray:
        """Row (demand) index of every stored pair."""
        return np.repeat(np.arange(self.n_demand, dtype=np.int64), np.diff(self.indptr))

    def matrix(self) -> sp.csr_matrix:
        """0/1 coverage matrix a_ij (float64, CSR)."""
        return sp.csr_matrix(
            (np.ones(self.nnz), self.indices, self.indptr), shape=(self.n_demand, self.n_sites)
        )

    def distances(self) -> sp.csr_matrix:
        """Distance matrix of the stored pairs (explicit zeros kept)."""
        return sp.csr_matrix(
            (self.distance_m.copy(), self.indices, self.indptr), shape=(self.n_demand, self.n_sites)
        )

    def within(self, max_distance_m: float) -> Coverage:
        """The pairs at most ``max_distance_m`` apart (e.g. one radius out of a wider walk matrix)."""
        keep = self.distance_m <= max_distance_m
        return Coverage.from_pairs(
            self.demand_idx[keep], self.indices[keep], self.distance_m[keep], self.n_demand, self.n_sites
        )

    def subset_sites(self, site_idx) -> Coverage:
        """Restrict to the given sites (columns renumbered 0..len(site_idx)-1, in the given order)."""
        site_idx = np.asarray(site_idx, dtype=np.int64)
        remap = np.full(self.n_sites, -1, dtype=np.int64)
        remap[site_idx] = np.arange(site_idx.size)
        new = remap[self.indices]
        keep = new >= 0
        return Coverage.from_pairs(
            self.demand_idx[keep], new[keep], self.distance_m[keep], self.n_demand, site_idx.size
        )

    def cover_count(self, open_sites) -> np.ndarray:
        """How many of ``open_sites`` cover each demand point."""
        is_open = np.zeros(self.n_sites, dtype=bool)
        is_open[np.asarray(open_sites, dtype=np.int64)] = True
        return np.rint(self.matrix() @ is_open.astype(np.float64)).astype(np.int64)

    def nearest(self, open_sites) -> tuple[np.ndarray, np.ndarray]:
        """For each demand point, the nearest open site covering it and its distance (-1 / inf if none)."""
        is_open = np.zeros(self.n_sites, dtype=bool)
        is_open[np.asarray(open_sites, dtype=np.int64)] = True
        rows = self.demand_idx
        m = is_open[self.indices]
        site = np.full(self.n_demand, -1, dtype=np.int64)
        dist = np.full(self.n_demand, np.inf)
        if m.any():
            r, s, d = rows[m], self.indices[m], self.distance_m[m]
            order = np.lexsort((d, r))
            r, s, d = r[order], s[order], d[order]
            first = np.ones(r.size, dtype=bool)
            first[1:] = r[1:] != r[:-1]
            site[r[first]] = s[first]
            dist[r[first]] = d[first]
        return site, dist


def line_coverage(demand_xy, site_xy, radius_m: float) -> Coverage:
    """Straight-line (Euclidean, metres) coverage: pairs with distance ≤ ``radius_m``."""
    demand_xy = np.asarray(demand_xy, dtype=np.float64).reshape(-1, 2)
    site_xy = np.asarray(site_xy, dtype=np.float64).reshape(-1, 2)
    if radius_m <= 0:
        raise ValueError("radius_m must be > 0")
    if len(demand_xy) == 0 or len(site_xy) == 0:
        return Coverage.from_pairs([], [], [], len(demand_xy), len(site_xy))
    pairs = cKDTree(demand_xy).sparse_distance_matrix(cKDTree(site_xy), radius_m, output_type="ndarray")
    return Coverage.from_pairs(pairs["i"], pairs["j"], pairs["v"], len(demand_xy), len(site_xy))


def summarize(coverage: Coverage, open_sites, weights=None) -> dict:
    """Covered weight/share of demand by ``open_sites`` and each site's catchment (nearest-site rule)."""
    w = np.ones(coverage.n_demand) if weights is None else np.asarray(weights, dtype=np.float64)
    site, _ = coverage.nearest(open_sites)
    covered = site >= 0
    total = float(w.sum())
    catchment = np.bincount(site[covered], weights=w[covered], minlength=coverage.n_sites)
    return {
        "covered": covered,
        "covered_weight": float(w[covered].sum()),
        "total_weight": total,
        "covered_share": float(w[covered].sum() / total) if total > 0 else 0.0,
        "nearest_site": site,
        "catchment_weight": catchment,
    }
