"""Grids: our household-balanced partitioner vs spopt.region on the same street blocks.

Run:  .venv/bin/python benchmarks/bench_grids.py [--band 300 500] [--json out.json]

No database: the demo files are read with the loader's own readers (grid_builder.demo_data), the
provisional communities are derived as `shequ grid boundaries` does, and each community's partition
units (street blocks; blocks above the band split along building groups) are computed once. Every
method then partitions exactly those units with exactly that adjacency (rook: shared edge ≥ 1 m):

- ours:   grid_builder.partition.partition_units (4 restarts, k±1 tried when grids miss the band);
- spopt MaxPHeuristic: floor = band minimum on households, attributes = unit centroid x/y;
- spopt AZP and Skater: n_clusters = the k our method chose, attributes = unit centroid x/y
  (compactness-seeking; they have no household constraint).
The adjacency is built once per community and handed to every method (libpysal W for spopt), not
timed; each spopt solve runs in a forked child and is
stopped after --timeout seconds (default 120): such a community counts as failed for that method and
adds the full timeout to its time (a lower bound of its real time). Measured per method, over all communities:
share of grids inside the band, max deviation from the band (households; and the max deviation a
partition could have avoided, i.e. not caused by one unit above the band), mean Polsby-Popper
compactness of the dissolved grids, share of contiguous grids, total runtime.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

warnings.filterwarnings("ignore")


def community_units(band):
    from grid_builder.blocks import building_anchor
    from grid_builder.build import BuildConfig
    from grid_builder.build import community_units as units_of
    from grid_builder.demo_data import DEMO_BBOX, load_demo
    from grid_builder.geom import to_metric
    from grid_builder.pipeline import BuildingRec, RoadIn, block_lines_metric, provisional_boundaries
    from grid_builder.records import BuildingIn

    demo = load_demo()
    roads = [RoadIn(r.kind, r.geom, r.name, r.tags) for r in demo.roads]
    recs = [BuildingRec(b.id, b.geom, int(b.households)) for b in demo.buildings]
    units, _ = provisional_boundaries({c: (demo.district_names[c], g) for c, g in demo.districts.items()},
                                      DEMO_BBOX, roads, [(None, r) for r in demo.rail], demo.water, recs)
    lines = [ln.geom for ln in block_lines_metric(roads, [(None, r) for r in demo.rail])]
    water = [to_metric(w) for w in demo.water]
    bm = [(b.id, to_metric(b.geom), b.households) for b in recs]
    cfg = BuildConfig(grid_min=band[0], grid_max=band[1])
    out = []
    for c in units:
        if c.level != "community":
            continue
        boundary = to_metric(c.geom)
        inside = [BuildingIn(i, g, h) for i, g, h in bm if boundary.contains(building_anchor(g))]
        _, us = units_of(boundary, lines, water, inside, cfg, [], [])
        geoms = [u[0] for u in us]
        hh = [float(sum(inside[i].households for i in u[1])) for u in us]
        out.append((c.code, geoms, hh))
    return out


def evaluate(geoms, hh, labels, band):
    from grid_builder.geom import n_parts, polsby_popper, safe_union

    groups: dict[int, list[int]] = {}
    for u, r in enumerate(labels):
        groups.setdefault(int(r), []).append(u)
    rows = []
    for us in groups.values():
        g = safe_union([geoms[u] for u in us])
        h = sum(hh[u] for u in us)
        dev = max(0.0, band[0] - h, h - band[1])
        # deviation a partition could have avoided: a single unit above the band cannot be split
        dev_avoidable = max(0.0, band[0] - h, h - max(band[1], max(hh[u] for u in us)))
        rows.append({"hh": h, "dev": dev, "dev_avoidable": dev_avoidable, "pp": polsby_popper(g),
                     "contig": n_parts(g) <= 1})
    return rows


def run_ours(geoms, hh, band, nb):
    from grid_builder.partition import partition_units

    t = time.perf_counter()
    res = partition_units(geoms, hh, band[0], band[1], nbrs=nb)
    return res.labels, time.perf_counter() - t, res.k


def spopt_inputs(geoms, hh, nb):
    import geopandas as gpd
    from libpysal.weights import W

    w = W({i: sorted(s) for i, s in enumerate(nb)}, silence_warnings=True)
    gdf = gpd.GeoDataFrame({"households": hh, "x": [g.centroid.x for g in geoms],
                            "y": [g.centroid.y for g in geoms]}, geometry=list(geoms))
    # standardised coordinates so x/y weigh alike
    for col in ("x", "y"):
        s = gdf[col].std() or 1.0
        gdf[col] = (gdf[col] - gdf[col].mean()) / s
    return gdf, w


def _solve_spopt(name, gdf, w, band, k, conn):
    import warnings as _w

    _w.filterwarnings("ignore")
    from spopt.region import AZP, MaxPHeuristic, Skater

    try:
        t = time.perf_counter()
        if name == "maxp":
            m = MaxPHeuristic(gdf, w, ["x", "y"], "households", band[0], top_n=2)
        elif name == "azp":
            m = AZP(gdf, w, ["x", "y"], n_clusters=k, random_state=0)
        else:
            m = Skater(gdf, w, ["x", "y"], n_clusters=k, islands="increase")
        m.solve()
        conn.send(("ok", np.asarray(m.labels_).tolist(), time.perf_counter() - t))
    except Exception as exc:  # reported back as a failure of the peer on this community
        conn.send(("error", repr(exc), 0.0))


def run_spopt(name, gdf, w, band, k, timeout_s):
    """Solve in a child process (fork) so that a run that does not finish can be stopped after
    ``timeout_s``; the time measured is the solve inside the child."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_solve_spopt, args=(name, gdf, w, band, k, child))
    proc.start()
    if parent.poll(timeout_s):
        status, payload, dt = parent.recv()
        proc.join()
        if status != "ok":
            raise RuntimeError(payload)
        return np.asarray(payload), dt
    proc.terminate()
    proc.join()
    raise TimeoutError(f"{name} did not finish in {timeout_s:g} s")


def summarise(rows, seconds, failures, timeouts=0):
    n = len(rows)
    return {
        "grids": n,
        "in_band_share": round(sum(r["dev"] == 0 for r in rows) / n, 3) if n else 0.0,
        "max_deviation_hh": round(max((r["dev"] for r in rows), default=0.0), 1),
        "max_avoidable_deviation_hh": round(max((r["dev_avoidable"] for r in rows), default=0.0), 1),
        "mean_compactness": round(float(np.mean([r["pp"] for r in rows])), 3) if n else 0.0,
        "contiguous_share": round(sum(r["contig"] for r in rows) / n, 3) if n else 0.0,
        "seconds": round(seconds, 3),
        "failed_communities": failures,
        "timeouts": timeouts,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--band", nargs=2, type=float, default=[300, 500])
    ap.add_argument("--json", type=Path, default=Path("bench-output/grids.json"))
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per spopt solve before it is stopped")
    args = ap.parse_args()
    band = tuple(args.band)
    comms = community_units(band)
    results = {m: {"rows": [], "t": 0.0, "fail": 0, "timeouts": 0} for m in ("ours", "maxp", "azp", "skater")}
    n_units = 0
    for code, geoms, hh in comms:
        n_units += len(geoms)
        from grid_builder.partition import adjacency

        nb = adjacency(geoms)  # the same rook adjacency for every method, built once, not timed
        labels, dt, k = run_ours(geoms, hh, band, nb)
        results["ours"]["rows"] += evaluate(geoms, hh, labels, band)
        results["ours"]["t"] += dt
        line = f"  {code}: {len(geoms)} units, ours {dt:.3f}s"
        gdf, w = spopt_inputs(geoms, hh, nb)
        for m in ("maxp", "azp", "skater"):
            try:
                if m != "maxp" and k < 2:
                    labels, dt = np.zeros(len(geoms), dtype=int), 0.0  # one region: nothing to solve
                else:
                    labels, dt = run_spopt(m, gdf, w, band, k, args.timeout)
                if len(labels) != len(geoms) or (np.asarray(labels) < 0).any():
                    raise ValueError("unassigned units")
            except TimeoutError:
                # counted at the cap: its time is at least that, its grids are missing
                results[m]["fail"] += 1
                results[m]["timeouts"] += 1
                results[m]["t"] += args.timeout
                line += f", {m} >{args.timeout:g}s"
                continue
            except Exception as exc:  # a peer that cannot solve this community counts as failed there
                results[m]["fail"] += 1
                line += f", {m} failed ({type(exc).__name__})"
                continue
            results[m]["rows"] += evaluate(geoms, hh, labels, band)
            results[m]["t"] += dt
            line += f", {m} {dt:.3f}s"
        print(line, file=sys.stderr, flush=True)
    summary = {m: summarise(v["rows"], v["t"], v["fail"], v["timeouts"]) for m, v in results.items()}
    print(f"communities: {len(comms)}, partition units: {n_units}, band {band[0]:g}–{band[1]:g} households")
    head = (f"{'method':<8} {'grids':>5} {'in band':>8} {'max dev':>8} {'avoid.':>7} {'mean PP':>8} {'contig':>7} "
            f"{'time s':>8}")
    print(head)
    for m, s in summary.items():
        print(f"{m:<8} {s['grids']:>5} {s['in_band_share']:>8.3f} {s['max_deviation_hh']:>8.1f} "
              f"{s['max_avoidable_deviation_hh']:>7.1f} "
              f"{s['mean_compactness']:>8.3f} {s['contiguous_share']:>7.3f} {s['seconds']:>8.3f}"
              + (f"  ({s['failed_communities']} failed)" if s["failed_communities"] else ""))
    ours = summary["ours"]
    for m in ("maxp", "azp", "skater"):
        s = summary[m]
        if s["seconds"] > 0:
            print(f"ours vs {m}: speed ×{s['seconds'] / max(ours['seconds'], 1e-9):.1f}, in-band "
                  f"{ours['in_band_share']:.3f} vs {s['in_band_share']:.3f}, compactness "
                  f"{ours['mean_compactness']:.3f} vs {s['mean_compactness']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"band": band, "communities": len(comms), "units": n_units,
                                         "methods": summary}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
