"""Planner workbench speed (targets: coverage of one facility type over the demo city by walking distance,
through the API, p95 < 2 s warm; walking isochrones of 50 facilities < 5 s).

A throw-away PostGIS with the demo loaded and the provisional community boundaries built (so coverage is
summarised per community and grid, as in the product), one uvicorn server on 127.0.0.1, a planner's
bearer token. Coverage: ``POST /analysis/coverage`` (walk, every building in the result GeoJSON) timed from
request to the parsed JSON, one cold request then ``--repeat`` warm ones per facility type. Isochrones:
``POST /analysis/isochrones`` for 5/10/15 minutes over random samples of exactly 50 bus stops (``--seeds``
samples, posted as a community-free type filter is not possible: the samples go through
``siting.isochrones`` on the city network, network build timed apart), and the API call for every bus stop.

    .venv/bin/python benchmarks/bench_workbench.py [--repeat 20] [--seeds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("SHEQU_SECRETS_DIR", tempfile.mkdtemp(prefix="shequ-bench-secrets-"))
from bench_geocode import _database, _free_port  # noqa: E402

TYPES = ("幼儿园", "小学", "菜市场", "社区卫生服务中心")


def _post(port: int, path: str, body: dict, headers: dict) -> tuple[float, int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        t = time.perf_counter()
        conn.request("POST", path, body=json.dumps(body), headers={**headers, "Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        out = json.loads(raw)
        return time.perf_counter() - t, len(raw), out if resp.status == 200 else {"error": resp.status, **out}
    finally:
        conn.close()


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def _setup(url: str) -> dict:
    from sqlalchemy import text

    from gis_api.auth import roles as r
    from gis_api.auth import store, tokens
    from gis_api.db import get_engine

    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    for step in (["grid", "boundaries"], ["grid", "build", "--all"]):
        subprocess.run([sys.executable, "-m", "gis_api.cli", *step], cwd=ROOT, env=env, check=True,
                       capture_output=True)
    with get_engine(url).begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE name = 'bench-planner'"))
        user = store.create_user(conn, "bench-planner", r.PLANNER, "Wb-Bench-Pw-2026-x", "基准 规划")
    token, _ = tokens.issue_access_token(f"user:{user['id']}", user["name"], r.PLANNER)
    return {"Authorization": f"Bearer {token}"}


def _serve(url: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "gis_api.app:create_app", "--factory", "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            c.getresponse().read()
            return proc, port
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not start")


def coverage(port: int, headers: dict, repeat: int) -> list[dict]:
    rows = []
    for t in TYPES:
        body = {"facility_type": t, "distance": "walk"}
        cold, size, res = _post(port, "/analysis/coverage", body, headers)
        if "error" in res:
            rows.append({"type": t, "error": res})
            continue
        warm = [_post(port, "/analysis/coverage", body, headers)[0] for _ in range(repeat)]
        s = res["summary"]
        rows.append({"type": t, "facilities": s["facilities"], "buildings": s["buildings"],
                     "households": s["households"], "covered_share": s["covered_share"], "mb": size / 1e6,
                     "cold_s": cold, "p50_s": _pct(warm, 0.5), "p95_s": _pct(warm, 0.95), "max_s": max(warm),
                     "server_s": s["seconds"]})
    return rows


def isochrones(url: str, port: int, headers: dict, seeds: int) -> dict:
    import numpy as np

    from gis_api.db import get_engine
    from siting import service, store
    from siting.isochrones import isochrones as iso
    from siting.standards import facility_type

    ft = facility_type("公交车站")
    with get_engine(url).connect() as conn:
        stops = store.existing_facilities(conn, ft.code, ft.poi_kinds, ft.name_patterns, ft.name_required)
        t = time.perf_counter()
        net = service.road_network(conn)
        net_s = time.perf_counter() - t
    samples = []
    for seed in range(seeds):
        pick = np.random.default_rng(seed).choice(len(stops), size=min(50, len(stops)), replace=False)
        t = time.perf_counter()
        polys = iso(net, stops.xy[pick])
        samples.append({"seed": seed, "facilities": len(pick), "polygons": len(polys), "s": time.perf_counter() - t})
    api_s, size, res = _post(port, "/analysis/isochrones", {"facility_type": "公交车站"}, headers)
    return {"network_nodes": net.n_nodes, "network_s": net_s, "samples": samples, "api_facilities":
            res.get("summary", {}).get("facilities"), "api_s": api_s, "api_mb": size / 1e6, "api": res.get("error")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    url, cleanup = _database()
    proc = None
    try:
        headers = _setup(url)
        proc, port = _serve(url)
        cov = coverage(port, headers, args.repeat)
        print("coverage (walk, whole demo city, through the API; seconds)")
        print("| type | facilities | buildings | households | covered | result MB | cold | p50 warm | p95 warm | max |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in cov:
            if "error" in r:
                print(f"| {r['type']} | error {r['error']} |")
                continue
            print(f"| {r['type']} | {r['facilities']} | {r['buildings']} | {r['households']} | {r['covered_share']:.1%} "
                  f"| {r['mb']:.2f} | {r['cold_s']:.2f} | {r['p50_s']:.2f} | {r['p95_s']:.2f} | {r['max_s']:.2f} |")
        iso = isochrones(url, port, headers, args.seeds)
        print(f"\nisochrones 5/10/15 min: city network {iso['network_nodes']} nodes built in {iso['network_s']:.2f} s")
        for s in iso["samples"]:
            print(f"  seed {s['seed']}: {s['facilities']} bus stops → {s['polygons']} polygons in {s['s']:.2f} s")
        print(f"  API, every bus stop ({iso['api_facilities']}): {iso['api_s']:.2f} s, {iso['api_mb']:.2f} MB"
              + (f" error {iso['api']}" if iso["api"] else ""))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        cleanup()


if __name__ == "__main__":
    main()
