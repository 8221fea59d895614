"""Siting benchmarks, side by side with the peers in one run.

1. MCLP 10,000 demand × 2,000 sites, p = 40, r = 300 m and LSCP 2,000 × 500, r = 600 m: uniform points in
   a 5 km square (seed fixed, integer weights 1–10 for MCLP): ours (sparse coverage + HiGHS) vs
   pysal/spopt + CBC (pulp's bundled CBC), both timed from coordinates to the solution; objectives compared.
2. Walking distances on the demo road network (the Overpass extract, read straight from ../shared/data):
   ours (scipy csgraph multi-source Dijkstra with a cut-off) vs pandana (contraction hierarchies), same
   network, same sources, every node's distance to the sources within the cut-off; time incl. set-up.
3. Scale: MCLP 100,000 demand × 10,000 sites by the heuristic, with its gap to the Lagrangian (LP) bound.

    .venv/bin/python benchmarks/bench_siting.py [--only mclp,lscp,walk,scale] [--peer-time-limit 900]

Raw results: bench-output/siting.json; the figures go to docs/benchmarks.md, section "Siting (issue 6)".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED = 20260601
SQUARE_M = 5000.0


def instance(n_demand, n_sites, seed=SEED, square=SQUARE_M, weights=True):
    rng = np.random.default_rng(seed)
    d = rng.uniform(0, square, (n_demand, 2))
    s = rng.uniform(0, square, (n_sites, 2))
    w = rng.integers(1, 11, n_demand).astype(float) if weights else np.ones(n_demand)
    return d, s, w


def _spopt_status(problem):
    import pulp

    return pulp.LpStatus[problem.status], pulp.LpSolution.get(problem.sol_status, str(problem.sol_status))


def bench_mclp(time_limit):
    from scipy.spatial.distance import cdist

    from siting.coverage import line_coverage
    from siting.models import MCLP

    d, s, w = instance(10_000, 2_000)
    p, r = 40, 300.0
    t = time.perf_counter()
    cov = line_coverage(d, s, r)
    ours = MCLP(cov, p, weights=w).solve(method="exact", time_limit=time_limit)
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    heur = MCLP(line_coverage(d, s, r), p, weights=w).solve(method="heuristic", time_limit=30)
    heur_s = time.perf_counter() - t

    import pulp
    from spopt.locate import MCLP as SpoptMCLP

    t = time.perf_counter()
    cost = cdist(d, s)
    model = SpoptMCLP.from_cost_matrix(cost, w, service_radius=r, p_facilities=p)
    build_s = time.perf_counter() - t
    model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit))
    peer_s = time.perf_counter() - t
    status, sol_status = _spopt_status(model.problem)
    sites = [j for j, v in enumerate(model.fac_vars) if v.value() is not None and v.value() > 0.5]
    peer_obj = float(w[cov.cover_count(sites) > 0].sum())
    return {
        "instance": "MCLP 10,000 x 2,000, p=40, r=300 m, 5 km square, weights 1-10",
        "ours_seconds": ours_s, "ours_objective": ours.objective, "ours_gap": ours.gap, "ours_status": ours.status,
        "ours_heuristic_seconds": heur_s, "ours_heuristic_objective": heur.objective, "ours_heuristic_gap": heur.gap,
        "spopt_seconds": peer_s, "spopt_build_seconds": build_s, "spopt_objective": peer_obj,
        "spopt_status": status, "spopt_solution_status": sol_status, "spopt_time_limit_s": time_limit,
        "speedup": peer_s / ours_s, "pairs": cov.nnz,
    }


def bench_lscp(time_limit):
    from scipy.spatial.distance import cdist

    from siting.coverage import line_coverage
    from siting.models import LSCP

    d, s, _ = instance(2_000, 500, weights=False)
    r = 600.0
    t = time.perf_counter()
    cov = line_coverage(d, s, r)
    model_ours = LSCP(cov, skip_uncoverable=True)
    ours = model_ours.solve(method="exact", time_limit=time_limit)
    ours_s = time.perf_counter() - t
    uncoverable = int(model_ours.uncoverable.size)

    import pulp
    from spopt.locate import LSCP as SpoptLSCP

    keep = np.diff(cov.indptr) > 0  # spopt cannot solve with uncoverable demand: same points for both
    t = time.perf_counter()
    cost = cdist(d[keep], s)
    model = SpoptLSCP.from_cost_matrix(cost, service_radius=r)
    build_s = time.perf_counter() - t
    model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit))
    peer_s = time.perf_counter() - t
    status, sol_status = _spopt_status(model.problem)
    sites = [j for j, v in enumerate(model.fac_vars) if v.value() is not None and v.value() > 0.5]
    return {
        "instance": "LSCP 2,000 x 500, r=600 m, 5 km square",
        "uncoverable_demand": uncoverable,
        "ours_seconds": ours_s, "ours_objective": ours.objective, "ours_gap": ours.gap, "ours_status": ours.status,
        "spopt_seconds": peer_s, "spopt_build_seconds": build_s, "spopt_objective": float(len(sites)),
        "spopt_status": status, "spopt_solution_status": sol_status, "spopt_time_limit_s": time_limit,
        "speedup": peer_s / ours_s, "pairs": cov.nnz,
    }


def _demo_network_arrays():
    """Nodes (metres, EPSG:32651) and undirected edges of the walkable demo road network."""
    from pyproj import Transformer

    from geo.demo_files import read_roads
    from gis_api.settings import get_settings
    from siting.network import NOT_WALKABLE

    shared = Path(os.environ.get("SHEQU_SHARED_DATA_DIR", get_settings().shared_data_dir))
    tr = Transformer.from_crs(4326, 32651, always_xy=True)
    ways = []
    for road in read_roads(shared):
        if road["kind"] in NOT_WALKABLE:
            continue
        lon, lat = np.asarray(road["geom"].coords).T
        ways.append((road["node_ids"], np.column_stack(tr.transform(lon, lat))))
    return ways


def bench_walk(n_sources=300, cutoff_m=1500.0):
    import pandas as pd

    from siting.network import RoadNetwork

    ways = _demo_network_arrays()
    # the graph both tools get: our dedup'd undirected edges of the main component
    ref = RoadNetwork.from_ways(ways)
    comp = ref.component[ref.edge_u[ref.main_edges[0]]]
    main_nodes = np.flatnonzero(ref.component == comp)
    e = ref.main_edges
    rng = np.random.default_rng(SEED)
    sources = rng.choice(main_nodes, n_sources, replace=False)

    # ours: graph set-up + multi-source Dijkstra with cut-off, sparse node × source distances
    t = time.perf_counter()
    net = RoadNetwork.from_edges(ref.node_xy, ref.node_key, ref.edge_u[e], ref.edge_v[e], ref.edge_len_m[e])
    ours = net.node_distances(sources, cutoff_m, target_nodes=main_nodes)
    ours_s = time.perf_counter() - t
    per_node = np.diff(ours.indptr)
    k = int(per_node.max())

    import pandana

    t = time.perf_counter()
    nodes = pd.DataFrame({"x": ref.node_xy[main_nodes, 0], "y": ref.node_xy[main_nodes, 1]}, index=main_nodes)
    edges = pd.DataFrame({"from": ref.edge_u[e], "to": ref.edge_v[e], "length": ref.edge_len_m[e]})
    pnet = pandana.Network(nodes["x"], nodes["y"], edges["from"], edges["to"], edges[["length"]], twoway=True)
    pnet.precompute(cutoff_m)
    pnet.set_pois("src", cutoff_m, k, ref.node_xy[sources, 0], ref.node_xy[sources, 1])
    res = pnet.nearest_pois(cutoff_m, "src", num_pois=k, include_poi_ids=True)
    peer_s = time.perf_counter() - t

    # compare: for each node, the sorted distances to the sources within the cut-off
    dist_cols = list(range(1, k + 1))
    pd_d = res[dist_cols].to_numpy()
    pd_d = np.where(pd_d >= cutoff_m - 1e-9, np.inf, pd_d)  # pandana fills "none" with the cut-off
    row_of = {int(nid): i for i, nid in enumerate(main_nodes)}
    ours_sorted = np.full((len(main_nodes), k), np.inf)
    for i in range(len(main_nodes)):
        v = np.sort(ours.distance_m[ours.indptr[i] : ours.indptr[i + 1]])
        ours_sorted[i, : v.size] = v
    order = np.array([row_of[int(n)] for n in res.index])
    mine = ours_sorted[order]
    pd_rows = np.sort(pd_d, axis=1)
    both = np.isfinite(mine) & np.isfinite(pd_rows)
    only_one = np.isfinite(mine) ^ np.isfinite(pd_rows)
    # a source right at the cut-off can fall on either side by rounding: ignore those within 1 m of it
    near_cut = (np.minimum(np.where(np.isfinite(mine), mine, np.inf), np.where(np.isfinite(pd_rows), pd_rows, np.inf))
                > cutoff_m - 1.0)
    max_diff = float(np.abs(mine[both] - pd_rows[both]).max()) if both.any() else 0.0
    return {
        "network": f"demo roads (Overpass extract, walkable), main component: {len(main_nodes)} nodes, {len(e)} edges",
        "sources": n_sources, "cutoff_m": cutoff_m, "pairs": ours.nnz, "max_sources_per_node": k,
        "ours_seconds": ours_s, "pandana_seconds": peer_s, "time_ratio": ours_s / peer_s,
        "max_abs_diff_m": max_diff, "pairs_compared": int(both.sum()),
        "pairs_only_one_side": int((only_one & ~near_cut).sum()),
    }


def bench_scale(time_limit=40.0):
    from siting.coverage import line_coverage
    from siting.models import MCLP

    rng = np.random.default_rng(SEED)
    square, r, p = 15_000.0, 500.0, 200
    d = rng.uniform(0, square, (100_000, 2))
    s = rng.uniform(0, square, (10_000, 2))
    w = rng.integers(1, 11, 100_000).astype(float)
    t = time.perf_counter()
    cov = line_coverage(d, s, r)
    cov_s = time.perf_counter() - t
    res = MCLP(cov, p, weights=w).solve(method="heuristic", time_limit=time_limit)
    total = time.perf_counter() - t
    return {
        "instance": "MCLP 100,000 x 10,000, p=200, r=500 m, 15 km square, weights 1-10",
        "pairs": cov.nnz, "coverage_seconds": cov_s, "total_seconds": total, "objective": res.objective,
        "bound": res.bound, "gap": res.gap, "covered_share": res.covered_share,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="mclp,lscp,walk,scale")
    ap.add_argument("--peer-time-limit", type=float, default=900.0,
                    help="cap on spopt+CBC (and on ours), seconds; a capped run is reported as such")
    args = ap.parse_args(argv)
    todo = [x.strip() for x in args.only.split(",") if x.strip()]
    out = {"machine": f"{platform.platform()}, {os.cpu_count()} cores", "python": platform.python_version(),
           "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    runs = {"mclp": lambda: bench_mclp(args.peer_time_limit), "lscp": lambda: bench_lscp(args.peer_time_limit),
            "walk": bench_walk, "scale": bench_scale}
    for name in todo:
        print(f"== {name}", flush=True)
        out[name] = runs[name]()
        print(json.dumps(out[name], indent=2, default=str), flush=True)
    dest = ROOT / "bench-output" / "siting.json"
    dest.parent.mkdir(exist_ok=True)
    old = json.loads(dest.read_text()) if dest.exists() else {}
    old.update(out)
    dest.write_text(json.dumps(old, indent=2, default=str))
    print(f"saved {dest}")


if __name__ == "__main__":
    main()
