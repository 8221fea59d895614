"""Siting on a family of 10 instances (issue 18): the whole `shequ siting solve --json` process vs spopt + CBC.

The family: 5 seeds × {uniform, clustered} demand in a 5 km square, candidate sites uniform; demand
weights 1–10 for even seeds and 1–100 for odd ones (so both demand kinds meet both weight ranges).

* MCLP 10,000 demand × 2,000 sites, p = 40, r = 300 m, weighted;
* LSCP 2,000 demand × 500 sites, r = 600 m (demand no site reaches is dropped from both sides' input:
  spopt cannot solve with it, and the CLI refuses it).

Ours: the CSVs written once, then `python -m gis_api.cli siting solve --method exact --json` timed as a
subprocess — start-up, CSV reading, coverage and the exact solve all inside. The peer: pysal/spopt +
pulp's bundled CBC (`from_cost_matrix` over `scipy cdist`, as in bench_siting.py), run in a subprocess per
instance (``--peer-python`` can point at a separate venv holding spopt), timed in-process from coordinates
to the solution (its interpreter start-up and imports are recorded but not charged: the conservative side).

The peer takes minutes per instance, so its results are cached in ``bench-output/siting_family_peer.json``
(committed, with the command that made them). A run only computes the instances missing from the cache:
stop it at any time and run it again to go on.

    .venv/bin/python benchmarks/bench_siting_family.py [--peer-python var/peer-venv/bin/python]
        [--only mclp,lscp] [--seeds 0,1,2,3,4] [--no-peer] [--peer-time-limit 900]

Raw figures of our side: bench-output/siting_family.json; the table goes to docs/benchmarks.md, section
"Siting on an instance family (issue 18)".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output"
PEER_CACHE = OUT / "siting_family_peer.json"
WORK = ROOT / "var" / "siting_family"
SQUARE_M = 5000.0
BASE_SEED = 20261202
SPECS = {
    "mclp": {"n_demand": 10_000, "n_sites": 2_000, "p": 40, "radius": 300.0},
    "lscp": {"n_demand": 2_000, "n_sites": 500, "p": None, "radius": 600.0},
}
KINDS = ("uniform", "clustered")


def instance_name(model: str, seed: int, kind: str) -> str:
    return f"{model}-s{seed}-{kind}"


def make_instance(model: str, seed: int, kind: str):
    """Demand xy, site xy, demand weights of one family member (metres; deterministic in its arguments)."""
    spec = SPECS[model]
    rng = np.random.default_rng([BASE_SEED, seed, KINDS.index(kind), list(SPECS).index(model)])
    n_d, n_s = spec["n_demand"], spec["n_sites"]
    if kind == "uniform":
        d = rng.uniform(0, SQUARE_M, (n_d, 2))
    else:  # 25 neighbourhoods of uneven size, points normal around them (σ 250 m), kept in the square
        centres = rng.uniform(500, SQUARE_M - 500, (25, 2))
        share = rng.dirichlet(np.full(25, 2.0))
        which = rng.choice(25, n_d, p=share)
        d = np.clip(centres[which] + rng.normal(0, 250.0, (n_d, 2)), 0, SQUARE_M)
    s = rng.uniform(0, SQUARE_M, (n_s, 2))
    hi = 10 if seed % 2 == 0 else 100
    w = rng.integers(1, hi + 1, n_d).astype(float) if model == "mclp" else np.ones(n_d)
    if model == "lscp":  # demand no site reaches is left out of both sides' input
        from scipy.spatial import cKDTree

        near = cKDTree(s).query(d, k=1, distance_upper_bound=spec["radius"])[0]
        keep = np.isfinite(near)
        d, w = d[keep], w[keep]
    return d, s, w


def family(models, seeds, kinds=KINDS):
    for seed in seeds:
        for kind in kinds:
            for model in models:
                yield model, seed, kind


# ------------------------------------------------------------------------------------------------ peer


def peer_one(name: str, time_limit: float) -> dict:
    """spopt + CBC on one instance, timed from coordinates to the solution (run in its own process)."""
    import pulp
    from scipy.spatial.distance import cdist

    model_name, seed_s, kind = name.split("-")
    seed = int(seed_s[1:])
    spec = SPECS[model_name]
    d, s, w = make_instance(model_name, seed, kind)
    r = spec["radius"]
    t = time.perf_counter()
    cost = cdist(d, s)
    if model_name == "mclp":
        from spopt.locate import MCLP as SpoptMCLP

        model = SpoptMCLP.from_cost_matrix(cost, w, service_radius=r, p_facilities=spec["p"])
    else:
        from spopt.locate import LSCP as SpoptLSCP

        model = SpoptLSCP.from_cost_matrix(cost, service_radius=r)
    build_s = time.perf_counter() - t
    model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit))
    seconds = time.perf_counter() - t
    sites = [j for j, v in enumerate(model.fac_vars) if v.value() is not None and v.value() > 0.5]
    covered = (cost[:, sites] <= r).any(axis=1) if sites else np.zeros(len(d), dtype=bool)
    objective = float(w[covered].sum()) if model_name == "mclp" else float(len(sites))
    status = pulp.LpStatus[model.problem.status]
    sol_status = pulp.LpSolution.get(model.problem.sol_status, str(model.problem.sol_status))
    return {
        "seconds": seconds, "build_seconds": build_s, "objective": objective, "n_sites_open": len(sites),
        "status": status, "solution_status": sol_status, "time_limit_s": time_limit,
        "capped": seconds >= time_limit - 1.0 or sol_status != "Optimal Solution Found",
        "n_demand": int(len(d)),
    }


def _load_cache() -> dict:
    if PEER_CACHE.exists():
        return json.loads(PEER_CACHE.read_text())
    return {"about": "pysal/spopt + pulp's bundled CBC on the issue-18 siting family; one entry per instance",
            "command": "python benchmarks/bench_siting_family.py --peer-python var/peer-venv/bin/python",
            "instances": {}}


def run_peer(name: str, peer_python: str, time_limit: float) -> dict:
    t = time.perf_counter()
    p = subprocess.run([peer_python, str(Path(__file__).resolve()), "--peer-one", name,
                        "--peer-time-limit", str(time_limit)],
                       capture_output=True, text=True, cwd=ROOT, timeout=time_limit + 600)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"peer failed on {name}: {p.stderr[-2000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["process_seconds"] = wall
    ver = subprocess.run([peer_python, "-c", "import spopt, pulp; print(spopt.__version__, pulp.__version__)"],
                         capture_output=True, text=True).stdout.split()
    res["spopt"], res["pulp"] = (ver + ["?", "?"])[:2]
    res["load_before_after"] = None
    res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return res


# ------------------------------------------------------------------------------------------------ ours


def _write_csv(path: Path, xy: np.ndarray, w: np.ndarray | None) -> None:
    with path.open("w") as f:
        f.write("id,x,y" + (",weight" if w is not None else "") + "\n")
        for i, (x, y) in enumerate(xy):
            f.write(f"{i},{x:.3f},{y:.3f}" + (f",{int(w[i])}" if w is not None else "") + "\n")


def run_ours(model: str, seed: int, kind: str, python: str, time_limit: float = 600.0) -> dict:
    """The whole CLI process on the instance's CSVs (written once, outside the timing)."""
    name = instance_name(model, seed, kind)
    spec = SPECS[model]
    WORK.mkdir(parents=True, exist_ok=True)
    dpath, spath = WORK / f"{name}-demand.csv", WORK / f"{name}-sites.csv"
    d, s, w = make_instance(model, seed, kind)
    _write_csv(dpath, d, w if model == "mclp" else None)
    _write_csv(spath, s, None)
    cmd = [python, "-m", "gis_api.cli", "siting", "solve", "--model", model, "--demand", str(dpath),
           "--sites", str(spath), "--radius", str(spec["radius"]), "--method", "exact", "--time-limit", str(time_limit), "--json"]
    if spec["p"]:
        cmd += ["--p", str(spec["p"])]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=3600)
    wall = time.perf_counter() - t
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)  # the CLI's own CPU (load-proof)
    if p.returncode != 0:
        raise RuntimeError(f"ours failed on {name}: {p.stderr[-2000:]}")
    out = json.loads(p.stdout)
    return {"process_seconds": wall, "cpu_seconds": cpu, "solver_seconds": out["seconds"], "objective": out["objective"],
            "gap": out["gap"], "n_sites_open": len(out["sites"]), "n_demand": int(len(d))}


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def summarise(rows: list[dict]) -> str:
    lines = ["| instance | ours, whole CLI | spopt + CBC | ratio | objective (ours = peer) |",
             "|---|---:|---:|---:|---|"]
    for r in rows:
        pe = r.get("peer")
        if pe is None:
            lines.append(f"| {r['name']} | {r['ours']['process_seconds']:.2f} s | (not run) | – | "
                         f"{r['ours']['objective']} |")
            continue
        ratio = pe["seconds"] / r["ours"]["process_seconds"]
        same = "=" if abs(pe["objective"] - r["ours"]["objective"]) < 1e-6 else "≠"
        if r["ours"]["gap"]:
            same += f" (ours not proven: gap {r['ours']['gap']:.2%})"
        cap = " (capped)" if pe.get("capped") else ""
        lines.append(f"| {r['name']} | {r['ours']['process_seconds']:.2f} s | {pe['seconds']:.1f} s{cap} | "
                     f"{ratio:.1f}× | {r['ours']['objective']} {same} {pe['objective']} |")
    for model in SPECS:
        ratios = [r["peer"]["seconds"] / r["ours"]["process_seconds"] for r in rows
                  if r["model"] == model and r.get("peer")]
        if ratios:
            lines.append(f"\n{model.upper()}: {len(ratios)} instances with the peer; ratio min {min(ratios):.1f}× / "
                         f"median {float(np.median(ratios)):.1f}× / max {max(ratios):.1f}×")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="mclp,lscp")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--time-limit", type=float, default=600.0, help="ours: the CLI's --time-limit")
    ap.add_argument("--peer-python", default=sys.executable, help="an interpreter with spopt + pulp")
    ap.add_argument("--peer-time-limit", type=float, default=900.0)
    ap.add_argument("--no-peer", action="store_true", help="ours only; the peer from the cache where present")
    ap.add_argument("--peer-only", action="store_true", help="fill the peer cache only")
    ap.add_argument("--peer-one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.peer_one:
        print(json.dumps(peer_one(args.peer_one, args.peer_time_limit)))
        return
    models = [m.strip() for m in args.only.split(",") if m.strip()]
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    OUT.mkdir(exist_ok=True)
    cache = _load_cache()
    rows = []
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for model, seed, kind in family(models, seeds, kinds):
        name = instance_name(model, seed, kind)
        row: dict = {"name": name, "model": model, "seed": seed, "kind": kind}
        if not args.peer_only:
            load0 = _load()
            row["ours"] = run_ours(model, seed, kind, sys.executable, args.time_limit)
            row["ours"]["load_before"] = load0
            print(f"ours {name}: {row['ours']}", flush=True)
        if name not in cache["instances"] and not args.no_peer:
            load0 = _load()
            res = run_peer(name, args.peer_python, args.peer_time_limit)
            res["load_before_after"] = [load0, _load()]
            cache["instances"][name] = res
            PEER_CACHE.write_text(json.dumps(cache, indent=2) + "\n")  # after each one: resumable
            print(f"peer {name}: {res}", flush=True)
        row["peer"] = cache["instances"].get(name)
        rows.append(row)
    if args.peer_only:
        return
    out = {"machine": f"{platform.platform()}, {os.cpu_count()} cores", "python": platform.python_version(),
           "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "rows": rows}
    (OUT / "siting_family.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(summarise(rows))


if __name__ == "__main__":
    main()
