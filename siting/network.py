"""Walking distance over the road network.

A :class:`RoadNetwork` is an undirected graph (pedestrians ignore one-way rules) built from road ways
and their OSM node ids (shared ids = junctions), in metres. Demand points and sites are snapped to the
nearest edge of the largest connected component (the point-to-road leg counts as walking), and
demand × site distances within a cut-off come from one multi-source Dijkstra per chunk of sites
(``scipy.sparse.csgraph.dijkstra(indices=…, limit=cutoff)``), kept sparse.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from .coverage import Coverage
from .errors import NetworkError

__all__ = ["NOT_WALKABLE", "NetworkError", "RoadNetwork", "Snap"]

#: highway kinds nobody walks on (elevated expressways and their ramps)
NOT_WALKABLE = frozenset({"motorway", "motorway_link"})


@dataclass(frozen=True)
class Snap:
    """Points placed on network edges: the edge, the fraction along it, the offset walked to it."""
    edge: np.ndarray  # edge index
    t: np.ndarray  # fraction along the edge from u to v
    offset_m: np.ndarray  # point-to-edge distance (walked too)
    xy: np.ndarray  # the snapped position on the edge


@dataclass
class RoadNetwork:
    """An undirected walking graph in metres (nodes, edges with lengths, the main component)."""
    node_xy: np.ndarray  # (n, 2) metres
    node_key: np.ndarray  # OSM node id (or a synthetic key) per node
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_len_m: np.ndarray

    def __post_init__(self):
        n = len(self.node_xy)
        g = sp.coo_matrix((np.maximum(self.edge_len_m, 1e-6), (self.edge_u, self.edge_v)), shape=(n, n)).tocsr()
        ncomp, label = csgraph.connected_components(g, directed=False)
        main = np.argmax(np.bincount(label)) if n else 0
        self.component = label
        self.main_edges = np.flatnonzero(label[self.edge_u] == main) if n else np.zeros(0, dtype=np.int64)
        self._tree = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_ways(cls, ways: Iterable[tuple[Sequence[int] | None, np.ndarray]]) -> RoadNetwork:
        """Build from ``(node_ids, xy)`` per way: ``xy`` is (k, 2) metres, ``node_ids`` the k OSM node
        ids of its vertices (or ``None``: vertices are then joined where coordinates coincide, 1 cm)."""
        index: dict = {}
        node_xy: list = []
        node_key: list = []
        us, vs = [], []
        for node_ids, xy in ways:
            xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
            if len(xy) < 2:
                continue
            keys: list[tuple[str, int] | tuple[str, int, int]]
            if node_ids is not None and len(node_ids) == len(xy):
                keys = [("n", int(k)) for k in node_ids]
            else:
                keys = [("c", int(round(x * 100)), int(round(y * 100))) for x, y in xy]
            ids = []
            for k, p in zip(keys, xy, strict=True):
                i = index.get(k)
                if i is None:
                    i = index[k] = len(node_xy)
                    node_xy.append(p)
                    node_key.append(k[1] if k[0] == "n" else -(i + 1))
                ids.append(i)
            us.extend(ids[:-1])
            vs.extend(ids[1:])
        if not us:
            raise NetworkError("道路网络为空 (empty road network)")
        u, v = np.asarray(us), np.asarray(vs)
        return cls.from_edges(np.asarray(node_xy), node_key, u, v)

    @classmethod
    def from_edges(cls, node_xy, node_key, u, v, length_m=None) -> RoadNetwork:
        """A network from node coordinates and edge end indices (lengths default to straight lines)."""
        node_xy = np.asarray(node_xy, dtype=np.float64)
        u = np.asarray(u, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        keep = u != v
        u, v = u[keep], v[keep]
        if length_m is None:
            length = np.hypot(*(node_xy[u] - node_xy[v]).T)
        else:
            length = np.asarray(length_m, dtype=np.float64)[keep]
        a, b = np.minimum(u, v), np.maximum(u, v)  # undirected: one edge per node pair, the shortest
        order = np.lexsort((length, b, a))
        a, b, length = a[order], b[order], length[order]
        first = np.ones(a.size, dtype=bool)
        first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
        return cls(node_xy, np.asarray(node_key, dtype=np.int64), a[first], b[first], length[first])

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_xy)

    def graph(self, extra_u=(), extra_v=(), extra_w=(), n_extra=0) -> sp.csr_matrix:
        """Directed adjacency (both directions of every road edge), plus optional extra directed edges."""
        n = self.n_nodes + n_extra
        rows = np.concatenate([self.edge_u, self.edge_v, np.asarray(extra_u, dtype=np.int64)])
        cols = np.concatenate([self.edge_v, self.edge_u, np.asarray(extra_v, dtype=np.int64)])
        w = np.concatenate([self.edge_len_m, self.edge_len_m, np.asarray(extra_w, dtype=np.float64)])
        # csgraph ignores explicit zeros in some paths: give zero-length legs a micrometre
        return sp.csr_matrix((np.maximum(w, 1e-6), (rows, cols)), shape=(n, n))

    # ------------------------------------------------------------------ snapping
    def snap(self, xy, max_snap_m: float | None = None) -> Snap:
        """Nearest point on an edge of the main component; ``NetworkError`` for points farther than
        ``max_snap_m`` (their indices in ``.indices``)."""
        import shapely

        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if self.main_edges.size == 0:
            raise NetworkError("道路网络为空 (empty road network)")
        if self._tree is None:
            e = self.main_edges
            segs = shapely.linestrings(np.stack([self.node_xy[self.edge_u[e]], self.node_xy[self.edge_v[e]]], axis=1))
            self._tree = shapely.STRtree(segs)
        pts = shapely.points(xy)
        (pi, ti), dist = self._tree.query_nearest(pts, return_distance=True, all_matches=False)
        found = np.full(len(xy), -1, dtype=np.int64)
        found[pi] = ti
        if (found < 0).any():
            raise NetworkError("部分点无法匹配到道路网络", np.flatnonzero(found < 0))
        edge = self.main_edges[found]
        a, b = self.node_xy[self.edge_u[edge]], self.node_xy[self.edge_v[edge]]
        ab = b - a
        denom = np.maximum((ab * ab).sum(axis=1), 1e-12)
        t = np.clip(((xy - a) * ab).sum(axis=1) / denom, 0.0, 1.0)
        proj = a + ab * t[:, None]
        offset = np.hypot(*(xy - proj).T)
        if max_snap_m is not None:
            far = np.flatnonzero(offset > max_snap_m)
            if far.size:
                raise NetworkError(
                    f"{far.size} 个点距道路网络超过 {max_snap_m:g} 米 (outside the network)", far
                )
        return Snap(edge, t, offset, proj)

    # ------------------------------------------------------------------ distances
    def distances(self, demand_xy, site_xy, cutoff_m: float, max_snap_m: float | None = None,
                  chunk: int = 256, progress=None) -> Coverage:
        """Walking distance demand × site (rows demand) for pairs within ``cutoff_m``, sparse."""
        if cutoff_m <= 0:
            raise ValueError("cutoff_m must be > 0")
        ds = self.snap(demand_xy, max_snap_m)
        ss = self.snap(site_xy, max_snap_m)
        return self.distances_snapped(ds, ss, cutoff_m, chunk=chunk, progress=progress)

    def node_distances(self, source_nodes, cutoff_m: float, target_nodes=None, chunk: int = 256) -> Coverage:
        """Network-node distances (rows = ``target_nodes`` or every node, columns = sources) within the cut-off."""
        source_nodes = np.asarray(source_nodes, dtype=np.int64)
        g = self.graph()
        n = self.n_nodes
        if target_nodes is None:
            row_of = np.arange(n)
            n_rows = n
        else:
            target_nodes = np.asarray(target_nodes, dtype=np.int64)
            row_of = np.full(n, -1, dtype=np.int64)
            row_of[target_nodes] = np.arange(target_nodes.size)
            n_rows = target_nodes.size
        out_r, out_s, out_w = [], [], []
        for start in range(0, source_nodes.size, chunk):
            idx = np.arange(start, min(source_nodes.size, start + chunk))
            D = csgraph.dijkstra(g, directed=True, indices=source_nodes[idx], limit=cutoff_m)
            si, node = np.nonzero(np.isfinite(D))
            r = row_of[node]
            keep = r >= 0
            out_r.append(r[keep])
            out_s.append(idx[si[keep]])
            out_w.append(D[si[keep], node[keep]])
        return Coverage.from_pairs(np.concatenate(out_r), np.concatenate(out_s), np.concatenate(out_w),
                                   n_rows, source_nodes.size)

    def distances_snapped(self, ds: Snap, ss: Snap, cutoff_m: float, chunk: int = 256, progress=None) -> Coverage:
        """Walking distances within ``cutoff_m`` between snapped demand and sites, as a sparse Coverage."""
        n, n_d, n_s = self.n_nodes, len(ds.edge), len(ss.edge)
        L_s = self.edge_len_m[ss.edge]
        # virtual source node per site, linked to both ends of its edge (directed out of the site only,
        # so no path can pass through a site node)
        virt = n + np.arange(n_s)
        g = self.graph(
            np.concatenate([virt, virt]),
            np.concatenate([self.edge_u[ss.edge], self.edge_v[ss.edge]]),
            np.concatenate([ss.offset_m + ss.t * L_s, ss.offset_m + (1 - ss.t) * L_s]),
            n_extra=n_s,
        )
        # demand attached to both ends of its edge: node -> (demand, extra metres)
        L_d = self.edge_len_m[ds.edge]
        att_node = np.concatenate([self.edge_u[ds.edge], self.edge_v[ds.edge]])
        att_dem = np.concatenate([np.arange(n_d), np.arange(n_d)])
        att_extra = np.concatenate([ds.offset_m + ds.t * L_d, ds.offset_m + (1 - ds.t) * L_d])
        order = np.argsort(att_node, kind="stable")
        att_node, att_dem, att_extra = att_node[order], att_dem[order], att_extra[order]
        node_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(att_node, minlength=n), out=node_ptr[1:])
        out_d, out_s, out_w = [], [], []
        for start in range(0, n_s, chunk):
            idx = np.arange(start, min(n_s, start + chunk))
            D = csgraph.dijkstra(g, directed=True, indices=virt[idx], limit=cutoff_m)[:, :n]
            si, node = np.nonzero(np.isfinite(D))
            dist = D[si, node]
            cnt = node_ptr[node + 1] - node_ptr[node]
            rep = np.repeat(np.arange(si.size), cnt)
            pos = np.repeat(node_ptr[node], cnt) + (np.arange(rep.size) - np.repeat(np.cumsum(cnt) - cnt, cnt))
            total = dist[rep] + att_extra[pos]
            keep = total <= cutoff_m
            out_d.append(att_dem[pos][keep])
            out_s.append(idx[si[rep][keep]])
            out_w.append(total[keep])
            if progress is not None:
                progress(len(idx))
        # same edge: walk straight along it
        d_order = np.argsort(ds.edge, kind="stable")
        d_edges = ds.edge[d_order]
        lo = np.searchsorted(d_edges, ss.edge, side="left")
        hi = np.searchsorted(d_edges, ss.edge, side="right")
        cnt = hi - lo
        if cnt.sum():
            s_rep = np.repeat(np.arange(n_s), cnt)
            d_rep = d_order[np.repeat(lo, cnt) + (np.arange(s_rep.size) - np.repeat(np.cumsum(cnt) - cnt, cnt))]
            direct = ss.offset_m[s_rep] + np.abs(ss.t[s_rep] - ds.t[d_rep]) * L_s[s_rep] + ds.offset_m[d_rep]
            keep = direct <= cutoff_m
            out_d.append(d_rep[keep])
            out_s.append(s_rep[keep])
            out_w.append(direct[keep])
        if not out_d:
            return Coverage.from_pairs([], [], [], n_d, n_s)
        return Coverage.from_pairs(np.concatenate(out_d), np.concatenate(out_s), np.concatenate(out_w), n_d, n_s)
