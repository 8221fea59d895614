"""Cost of the access layer: geocoding and vector-tile throughput and latency with accounts and
policies on versus off, in one run (targets: overhead ≤ 5 % on throughput, ≤ 2 ms on p99).

Two uvicorn servers on 127.0.0.1 over the same throw-away PostGIS (demo loaded, registry built, basemap
tiles cached): the product as shipped ("on") and the same app with every policy dependency replaced by
a no-op ("off", `benchmarks/_auth_off_app.py`). Against "on" three kinds of caller: anonymous, an API key
(system, scopes geocode + tiles:read) and a bearer token (a grid manager). Each measurement: 8 client
processes, keep-alive, a bounded number of requests; the modes are interleaved and repeated (rounds) so
that load drift hits them alike; the table gives the median over rounds and the min / max.

    .venv/bin/python benchmarks/bench_auth.py [--rounds 3] [--requests 3000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_geocode import _database, _free_port  # noqa: E402

CLIENTS = 8


def _client(job) -> tuple[list[float], int]:
    port, paths, headers = job
    out, errors = [], 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        for path in paths:
            t = time.perf_counter()
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            out.append((time.perf_counter() - t) * 1000)
            errors += resp.status not in (200, 304)
    finally:
        conn.close()
    return out, errors


def _serve(url: str, factory: str, app_dir: Path | None = None) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    args = [sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning"]
    if app_dir:
        args += ["--app-dir", str(app_dir)]
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args, cwd=ROOT, env=env)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("uvicorn did not start")


def _measure(port: int, paths: list[str], headers: dict, n: int) -> dict:
    per = n // CLIENTS
    jobs = [(port, random.Random(k).choices(paths, k=per), headers) for k in range(CLIENTS)]
    _client((port, paths[:40], headers))  # warm-up
    t0 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(CLIENTS) as pool:
        parts = pool.map(_client, jobs)
    wall = time.perf_counter() - t0
    lat = sorted(x for p, _ in parts for x in p)
    return {"rps": len(lat) / wall, "p50_ms": lat[len(lat) // 2], "p99_ms": lat[int(0.99 * (len(lat) - 1))],
            "errors": sum(e for _, e in parts)}


def policy_cost_us(n: int = 20000) -> dict[str, float]:
    """In-process cost of the access layer per request (µs): who is asking + the policy check, for an
    anonymous caller and for a key / token verified a moment ago (the principal cache), on one core."""
    import asyncio
    from types import SimpleNamespace

    from starlette.requests import Request

    from gis_api.auth import deps, principal_cache
    from gis_api.auth import roles as r
    from gis_api.auth.settings import AuthSettings

    app = SimpleNamespace(state=SimpleNamespace(auth_settings=AuthSettings(), rate_limiter=None))
    check = deps.requires("geocode")

    def request(headers: dict[str, str]) -> Request:
        return Request({"type": "http", "method": "GET", "path": "/geocode", "query_string": b"", "app": app,
                        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]})

    callers = {
        "anonymous": ({}, None),
        "API key": ({"X-API-Key": "sk_0123456789ab_" + "x" * 43},
                    r.Principal(role=r.SYSTEM, key_id="0123456789ab", scopes=frozenset({"geocode"}),
                                method="api_key")),
        "bearer token": ({"Authorization": "Bearer " + "t" * 200},
                         r.Principal(role=r.GRID_MANAGER, name="bench", user_id=1, method="token")),
    }
    out = {}
    for name, (headers, principal) in callers.items():
        if principal is not None:
            digest = deps._credentials(request(headers), app.state.auth_settings)
            principal_cache.CACHE.put(digest, (principal, 10**9 if principal.key_id else None, None))

        async def run(headers=headers) -> float:
            baseline = time.perf_counter()
            for _ in range(n):
                request(headers)
            base = time.perf_counter() - baseline
            t0 = time.perf_counter()
            for _ in range(n):
                await check(await deps.current_principal(request(headers)))
            return (time.perf_counter() - t0 - base) / n * 1e6

        out[name] = min(asyncio.run(run()) for _ in range(3))
    principal_cache.clear()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=3000)
    args = ap.parse_args()

    from sqlalchemy import text

    from address_registry.service import build_registry
    from gis_api.auth import roles as r
    from gis_api.auth import store, tokens
    from gis_api.db import get_engine
    from tiles.tms import tile_for_lonlat

    url, cleanup = _database()
    # the token's signing secret: one temp folder shared by this process and both servers
    os.environ.setdefault("SHEQU_SECRETS_DIR", tempfile.mkdtemp(prefix="shequ-bench-secrets-"))
    servers = []
    try:
        engine = get_engine(url)
        with engine.begin() as conn:
            build_registry(conn)
            conn.execute(text("DELETE FROM app_user WHERE name = 'bench-grid'"))
            conn.execute(text("DELETE FROM api_key WHERE name = 'bench-key'"))
            user = store.create_user(conn, "bench-grid", r.GRID_MANAGER, "Shequ-Bench-Pw-2026")
            _, key = store.create_api_key(conn, "bench-key", ["geocode", "tiles:read"], "bench", rate_per_min=10**7)
            queries = [q for (q,) in conn.execute(text(
                "SELECT full_text FROM standard_address WHERE level IN ('house_number', 'building') "
                "AND valid_to IS NULL ORDER BY code LIMIT 400"))]
            points = conn.execute(text("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                                       "FROM building ORDER BY id LIMIT 200")).all()
        token, _ = tokens.issue_access_token(f"user:{user['id']}", user["name"], r.GRID_MANAGER)
        from urllib.parse import urlencode

        geocode_paths = [f"/geocode?{urlencode({'q': q, 'limit': 5})}" for q in queries]
        tile_paths = sorted({f"/tiles/basemap/{t.z}/{t.x}/{t.y}.mvt" for t in
                             (tile_for_lonlat(x, y, z) for x, y in points for z in (15, 16))})
        on, on_port = _serve(url, "gis_api.app:create_app")
        off, off_port = _serve(url, "_auth_off_app:create", ROOT / "benchmarks")
        servers = [on, off]
        callers = {"off": (off_port, {}), "on, anonymous": (on_port, {}),
                   "on, API key": (on_port, {"X-API-Key": key}),
                   "on, bearer token": (on_port, {"Authorization": f"Bearer {token}"})}
        results: dict[str, dict[str, list[dict]]] = {}
        for endpoint, paths in (("geocode", geocode_paths), ("tiles", tile_paths)):
            for port, headers in callers.values():  # fill the tile cache / geocoder everywhere first
                _client((port, paths, headers))
            for rnd in range(args.rounds):
                order = list(callers.items())
                random.Random(rnd).shuffle(order)
                for name, (port, headers) in order:
                    m = _measure(port, paths, headers, args.requests)
                    results.setdefault(endpoint, {}).setdefault(name, []).append(m)
                    print(f"{endpoint:8} round {rnd + 1} {name:18} {m['rps']:8.0f} req/s  p50 {m['p50_ms']:6.2f} ms"
                          f"  p99 {m['p99_ms']:6.2f} ms  errors {m['errors']}", flush=True)
        summary = {}
        for endpoint, by_mode in results.items():
            base_rps = statistics.median(m["rps"] for m in by_mode["off"])
            base_p99 = statistics.median(m["p99_ms"] for m in by_mode["off"])
            for name, runs in by_mode.items():
                rps = [m["rps"] for m in runs]
                p99 = [m["p99_ms"] for m in runs]
                summary[f"{endpoint} / {name}"] = {
                    "rps_median": statistics.median(rps), "rps_min": min(rps), "rps_max": max(rps),
                    "p99_median_ms": statistics.median(p99), "p99_min_ms": min(p99), "p99_max_ms": max(p99),
                    "throughput_vs_off": statistics.median(rps) / base_rps,
                    "p99_minus_off_ms": statistics.median(p99) - base_p99,
                    "errors": sum(m["errors"] for m in runs)}
        print()
        print(f"{'endpoint / caller':34} {'req/s (min–max)':>24} {'vs off':>8} {'p99 ms':>8} {'Δp99 ms':>8}")
        for k, v in summary.items():
            print(f"{k:34} {v['rps_median']:8.0f} ({v['rps_min']:.0f}–{v['rps_max']:.0f})"
                  f" {v['throughput_vs_off']:8.3f} {v['p99_median_ms']:8.2f} {v['p99_minus_off_ms']:8.2f}")
        cost = policy_cost_us()
        print("\nin-process cost of the policy layer per request (µs, min of 3):",
              ", ".join(f"{k} {v:.1f}" for k, v in cost.items()))
        out = ROOT / "bench-output"
        out.mkdir(exist_ok=True)
        (out / "auth.json").write_text(json.dumps({"rounds": args.rounds, "requests": args.requests,
                                                   "clients": CLIENTS, "summary": summary, "policy_cost_us": cost,
                                                   "load_average": os.getloadavg()}, indent=2))
    finally:
        for s in servers:
            s.terminate()
            try:
                s.wait(10)
            except subprocess.TimeoutExpired:
                s.kill()
        cleanup()


if __name__ == "__main__":
    main()
