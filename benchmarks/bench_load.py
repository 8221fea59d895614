"""Load (issue 15): many keep-alive clients against the API served by `shequ serve --workers N`, auth on.

    .venv/bin/python benchmarks/bench_load.py                        # 200 clients for 120 s, then 60 clients
    .venv/bin/python benchmarks/bench_load.py --users 200 --seconds 120 --workers 2 --also 60 --seeds 1 2 3
    .venv/bin/python benchmarks/bench_load.py --also --planners 4   # 4 of the 200 run synchronous coverage
    DATABASE_URL=postgresql+psycopg://… .venv/bin/python benchmarks/bench_load.py   # a scratch DB

Set-up: a throw-away PostGIS with the demo loaded (`bench_geocode._database`), the address registry and
the grids of the community with the most addresses built, a grid manager account granted one of its grids
(bearer token) and an API key with the scopes geocode, features:read and tiles:read. The server is the
product's own command, `shequ serve --workers N`, on a free port of 127.0.0.1, its log kept.

The load: locust headless (`benchmarks/_load_locustfile.py`, FastHttpUser, keep-alive, no think time),
19 of 20 users another system with the API key (tiles 35 %, OGC features 15 %, geocode 20 %, reverse 15 %,
grid locate 15 %), 1 of 20 a grid manager (edit previews, drafts, grid-layer tiles, locate). An error is a
timeout (30 s), a reset or any transport failure, or a 5xx other than a 503 with ``Retry-After``; a 503 with
``Retry-After`` is "busy" (its share is reported; the client sleeps ``Retry-After`` as asked). While the
load runs, a probe asks ``/health`` once a second; when it stops, the seconds until ``/health`` and until a
grid locate answer 200 again. Then the server log is searched for tracebacks and pool timeouts.

Results: bench-output/load.json and a Markdown table on stdout (docs/benchmarks.md, docs/reliability.md).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_geocode import _database, _free_port  # noqa: E402

LOCUSTFILE = ROOT / "benchmarks" / "_load_locustfile.py"
GM_NAME, KEY_NAME, PLANNER_NAME = "load-grid-manager", "load-system", "load-planner"
KINDS = ("tile", "features", "geocode", "reverse", "locate", "edit preview", "edit draft")


# -- the plan: what the clients ask, and who they are -----------------------------------------------------

def _community(engine) -> tuple[str, str]:
    """The community with the most house-number addresses (its grids built if missing) and its first grid.
    Builds the provisional boundaries and the address registry when missing, as `make run` does."""
    from sqlalchemy import text

    from address_registry.service import build_registry
    from grid_builder.pipeline import BuildConfig
    from grid_builder.service import build_all, derive_boundaries

    def scalar(sql: str, **params: Any) -> Any:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    if not scalar("SELECT count(*) FROM admin_unit WHERE level = 'community' AND valid_to IS NULL"):
        derive_boundaries(engine)
    if not scalar("SELECT count(*) FROM standard_address WHERE level = 'house_number' AND valid_to IS NULL "
                  "AND community_code IS NOT NULL"):
        with engine.begin() as conn:
            build_registry(conn)
    comm = scalar("SELECT a.community_code FROM standard_address a JOIN admin_unit u ON u.code = a.community_code "
                  "AND u.valid_to IS NULL WHERE a.level = 'house_number' AND a.valid_to IS NULL "
                  "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
    if not scalar("SELECT count(*) FROM grid WHERE community_code = :c AND level = 'grid' AND valid_to IS NULL",
                  c=comm):
        build_all(engine, BuildConfig(), codes=[comm])
    grid = scalar("SELECT min(code) FROM grid WHERE community_code = :c AND level = 'grid' AND valid_to IS NULL",
                  c=comm)
    return comm, grid


def _edits(engine, community: str, grid: str, n: int = 6) -> list[list[dict]]:
    """Up to ``n`` valid one-vertex moves on a boundary of the grid manager's grid (each keeps every invariant)."""
    from grid_builder.edit.samples import movable_vertex
    from grid_builder.edit.service import load_layout

    with engine.connect() as conn:
        _info, layout, _v = load_layout(conn, community)
    out = []
    for skip in range(n):
        try:
            src, dst, _a, _b = movable_vertex(layout, must_touch=grid, skip=skip)
        except AssertionError:
            break
        out.append([{"op": "move_vertex", "from": src, "to": dst}])
    if not out:
        raise RuntimeError(f"no movable vertex on grid {grid}")
    return out


def prepare(url: str, folder: Path, seed: int = 15, weights: dict[str, int] | None = None) -> dict:
    """The plan the locust users read: credentials, paths and points from the real data; ``weights`` of the
    two kinds of user (default 19 systems to 1 grid manager)."""
    from sqlalchemy import text

    from gis_api.auth import roles as r
    from gis_api.auth import store, tokens
    from gis_api.db import get_engine
    from tiles.tms import tile_for_lonlat

    engine = get_engine(url)
    community, grid = _community(engine)
    edits = _edits(engine, community, grid)
    rng = random.Random(seed)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE name = ANY(:n)"), {"n": [GM_NAME, PLANNER_NAME]})
        conn.execute(text("DELETE FROM api_key WHERE name = :n"), {"n": KEY_NAME})
        user = store.create_user(conn, GM_NAME, r.GRID_MANAGER, "Shequ-Load-Pw-2026", "压测网格员")
        store.grant(conn, GM_NAME, "grid", grid)
        planner = store.create_user(conn, PLANNER_NAME, r.PLANNER, "Shequ-Load-Pw-2026", "压测规划人员")
        _, key = store.create_api_key(conn, KEY_NAME, ["geocode", "features:read", "tiles:read"], "bench",
                                      rate_per_min=10**7)
        queries = [q for (q,) in conn.execute(text(
            "SELECT full_text FROM standard_address WHERE level IN ('house_number', 'building') "
            "AND valid_to IS NULL ORDER BY code LIMIT 400"))]
        points = [(x, y) for x, y in conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM building ORDER BY id) b"))]
        inside = [(x, y) for x, y in conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(b.geom) p FROM building b JOIN admin_unit u "
            "ON u.code = :c AND u.valid_to IS NULL AND ST_Contains(u.geom, ST_PointOnSurface(b.geom)) "
            "ORDER BY b.id) q"), {"c": community})]
    token, _ = tokens.issue_access_token(f"user:{user['id']}", user["name"], r.GRID_MANAGER)
    planner_token, _ = tokens.issue_access_token(f"user:{planner['id']}", planner["name"], r.PLANNER)
    points = rng.sample(points, min(300, len(points)))
    tiles = sorted({f"/tiles/basemap/{t.z}/{t.x}/{t.y}.mvt" for t in
                    (tile_for_lonlat(x, y, z) for x, y in points for z in (14, 15, 16))})
    grid_tiles = sorted({f"/collections/grid/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}" for t in
                         (tile_for_lonlat(x, y, z) for x, y in inside for z in (15, 16, 17))})
    d = 0.003  # ~300 m boxes around real buildings
    features = [f"/collections/{c}/items?{urlencode({'bbox': f'{x - d:.5f},{y - d:.5f},{x + d:.5f},{y + d:.5f}', 'limit': 50})}"
                for c in ("building", "road", "poi") for x, y in points[:60]]
    plan = {"api_key": key, "grid_manager_token": token, "planner_token": planner_token, "community": community, "grid": grid, "edits": edits,
            "geocode": [f"/geocode?{urlencode({'q': q, 'limit': 5})}" for q in queries],
            "points": points, "community_points": inside, "tiles": tiles, "grid_tiles": grid_tiles,
            "features": features, "weights": weights or {"system": 19, "grid_manager": 1}, "network_timeout_s": 30.0,
            "think_s": [0.0, 0.0]}
    (folder / "plan.json").write_text(json.dumps(plan, ensure_ascii=False))
    return plan


# -- the server -----------------------------------------------------------------------------------------

def serve(url: str, workers: int, log: Path) -> tuple[subprocess.Popen, int]:
    """`shequ serve --workers N` on a free port, its output in ``log``; waits for /health."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    out = log.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "gis_api.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"shequ serve exited with {proc.returncode}; see {log}")
        if _status(port, "/health", timeout=2)[0] == 200:
            return proc, port
        time.sleep(0.3)
    stop(proc)
    raise RuntimeError(f"shequ serve did not answer /health within 180 s; see {log}")


def stop(proc: subprocess.Popen) -> None:
    """Stop the server (SIGTERM to its process group: uvicorn's supervisor and its workers)."""
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(10)


def _status(port: int, path: str, headers: dict | None = None, timeout: float = 5.0) -> tuple[int, float]:
    """(status, seconds) of one GET on a fresh connection; status 0 when no answer came."""
    t0 = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status, time.perf_counter() - t0
    except OSError:
        return 0, time.perf_counter() - t0


def warm(port: int, plan: dict, rounds: int = 4) -> None:
    """Fill the tile cache and let each worker load its geocoder (fresh connections spread over the
    workers), as a server that has been running a while is: the load then measures serving, not start-up."""
    key = {"X-API-Key": plan["api_key"]}
    for path in plan["tiles"]:
        _status(port, path, key, timeout=60)
    q = plan["geocode"][0]
    threads = [threading.Thread(target=_status, args=(port, q, key, 120)) for _ in range(rounds * 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class HealthProbe(threading.Thread):
    """``/health`` once a second while the load runs: (status, seconds) of each."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.answers, self.done = port, [], threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.answers.append(_status(self.port, "/health", timeout=10))
            self.done.wait(1.0)


def recovery(port: int, plan: dict, budget_s: float = 120.0) -> dict:
    """Seconds from the end of the load until /health, and then a grid locate (a pooled connection), answer
    200; then 20 locates in a row, their statuses."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"health_s": None, "locate_s": None}
    while time.perf_counter() - t0 < budget_s and out["health_s"] is None:
        if _status(port, "/health", timeout=5)[0] == 200:
            out["health_s"] = time.perf_counter() - t0
        else:
            time.sleep(0.1)
    lon, lat = plan["points"][0]
    locate = f"/grids/locate?lon={lon:.6f}&lat={lat:.6f}"
    key = {"X-API-Key": plan["api_key"]}
    while time.perf_counter() - t0 < budget_s and out["locate_s"] is None:
        if _status(port, locate, key, timeout=5)[0] == 200:
            out["locate_s"] = time.perf_counter() - t0
        else:
            time.sleep(0.1)
    after = [_status(port, locate, key, timeout=5) for _ in range(20)]
    out["after"] = {"statuses": sorted({s for s, _ in after}), "median_ms": statistics.median(t for _, t in after) * 1000}
    return out


# -- the load ---------------------------------------------------------------------------------------------

def run_locust(port: int, folder: Path, users: int, seconds: int, tag: str, seed: int, planners: int = 0) -> dict:
    """Locust headless in a process of its own, each user's random stream seeded by (seed, user number);
    its tally (`_load_locustfile.py`)."""
    out = folder / f"locust-{tag}.json"
    plan = folder / f"plan-{tag}.json"
    plan.write_text(json.dumps({**json.loads((folder / "plan.json").read_text()), "seed": seed, "planners": planners},
                               ensure_ascii=False))
    env = {**os.environ, "SHEQU_LOAD_PLAN": str(plan), "SHEQU_LOAD_OUT": str(out)}
    spawn_rate = max(1, min(users, 50))
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
           "-u", str(users), "-r", str(spawn_rate), "-t", f"{seconds}s", "--stop-timeout", "35",
           "--host", f"http://127.0.0.1:{port}", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
    with (folder / f"locust-{tag}.log").open("wb") as log:
        subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=seconds + 180,
                       check=True)
    return json.loads(out.read_text())


def _pct(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(q * (len(sorted_ms) - 1) + 0.5))] if sorted_ms else float("nan")


def summarise(raw: dict) -> dict:
    """Per kind and overall: answers, ok, busy (503 + Retry-After), errors (by what), refused (other 4xx, by
    status), p50 / p95 / p99 (ms, over every answer of the kind); the throughput over the run's window."""
    kinds, every = {}, []
    totals = {"answers": 0, "ok": 0, "busy": 0, "errors": 0, "refused": 0}
    errors: dict[str, int] = {}
    refused: dict[str, int] = {}
    for kind, k in raw["kinds"].items():
        times = sorted(k["times_ms"])
        every += times
        o = k["outcomes"]
        err = {w.split(":", 1)[1]: n for w, n in o.items() if w.startswith("error:")}
        ref = {w.split(":", 1)[1]: n for w, n in o.items() if w.startswith("refused:")}
        row = {"answers": len(times), "ok": o.get("ok", 0), "busy": o.get("busy", 0), "errors": sum(err.values()),
               "refused": sum(ref.values()), "error_kinds": err, "refused_statuses": ref,
               "p50_ms": _pct(times, 0.50), "p95_ms": _pct(times, 0.95), "p99_ms": _pct(times, 0.99)}
        kinds[kind] = row
        for f in totals:
            totals[f] += row[f]
        for w, n in err.items():
            errors[w] = errors.get(w, 0) + n
        for w, n in ref.items():
            refused[w] = refused.get(w, 0) + n
    every.sort()
    window = raw.get("window_s") or float("nan")
    return {"kinds": kinds, **totals, "error_kinds": errors, "refused_statuses": refused,
            "busy_share": totals["busy"] / totals["answers"] if totals["answers"] else float("nan"),
            "p50_ms": _pct(every, 0.5), "p95_ms": _pct(every, 0.95), "p99_ms": _pct(every, 0.99),
            "window_s": window, "rps": totals["answers"] / window, "ok_rps": totals["ok"] / window}


def _log_findings(log: Path) -> dict:
    text = log.read_text(errors="replace")
    return {"tracebacks": text.count("Traceback (most recent call last)"),
            "pool_timeouts": text.count("QueuePool limit"), "http_500_lines": text.count('" 500')}


def load_run(url: str, folder: Path, users: int, seconds: int, workers: int, tag: str, warm_up: bool = True,
             seed: int = 1, planners: int = 0) -> dict:
    """One run: the server started, warmed (unless not ``warm_up``), loaded, its recovery timed, stopped;
    the figures."""
    plan = json.loads((folder / "plan.json").read_text())
    log = folder / f"server-{tag}.log"
    proc, port = serve(url, workers, log)
    try:
        if warm_up:
            warm(port, plan, rounds=workers)
        probe = HealthProbe(port)
        load0 = os.getloadavg()
        probe.start()
        raw = run_locust(port, folder, users, seconds, tag, seed, planners)
        probe.done.set()
        rec = recovery(port, plan)
        load1 = os.getloadavg()
        probe.join(15)
    finally:
        stop(proc)
    health = probe.answers
    summary = summarise(raw)
    summary.update({
        "users": users, "seconds": seconds, "workers": workers, "seed": seed, "planners": planners, "recovery": rec,
        "health_during": {"n": len(health), "ok": sum(s == 200 for s, _ in health),
                          "max_s": max((t for _, t in health), default=float("nan")),
                          "median_s": statistics.median(t for _, t in health) if health else float("nan")},
        "server_log": _log_findings(log), "load_average_before": load0, "load_average_after": load1})
    return summary


# -- report -----------------------------------------------------------------------------------------------

def table(s: dict) -> str:
    lines = [f"{s['users']} clients ({s.get('planners', 0)} planners), {s['seconds']} s, "
             f"`shequ serve --workers {s['workers']}`: "
             f"**{s['answers']:,} answers, {s['rps']:.0f} req/s** ({s['ok_rps']:.0f} ok/s), "
             f"**errors {s['errors']}** {s['error_kinds'] or ''}, busy (503 + Retry-After) "
             f"{s['busy_share']:.1%}, other 4xx {s['refused']} {s['refused_statuses'] or ''}; "
             f"p50 / p95 / p99 {s['p50_ms']:.0f} / {s['p95_ms']:.0f} / {s['p99_ms']:.0f} ms; "
             f"/health during the load {s['health_during']['ok']}/{s['health_during']['n']} ok, slowest "
             f"{s['health_during']['max_s']:.2f} s; after it: /health in {s['recovery']['health_s']:.2f} s, a grid "
             f"locate in {s['recovery']['locate_s']:.2f} s; server log: {s['server_log']}; load average "
             f"{s['load_average_before'][0]:.1f} → {s['load_average_after'][0]:.1f}",
             "",
             "| kind | answers | ok | busy 503 | errors | other 4xx | p50 ms | p95 ms | p99 ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for kind in [k for k in KINDS if k in s["kinds"]] + [k for k in s["kinds"] if k not in KINDS]:
        k = s["kinds"][kind]
        lines.append(f"| {kind} | {k['answers']:,} | {k['ok']:,} | {k['busy']:,} ({k['busy'] / max(1, k['answers']):.0%})"
                     f" | {k['errors']} | {k['refused']} | {k['p50_ms']:.0f} | {k['p95_ms']:.0f} | {k['p99_ms']:.0f} |")
    return "\n".join(lines)


def spread(runs: list[dict]) -> str:
    """min / median / max over the seeds of one client count: a Markdown row."""
    def mmm(f: Any, fmt: str) -> str:
        v = [f(r) for r in runs]
        return " / ".join(format(x, fmt) for x in (min(v), statistics.median(v), max(v)))

    r0 = runs[0]
    return (f"| {r0['users']} | {r0['workers']} | {len(runs)} | {mmm(lambda r: r['answers'], ',')} | "
            f"{mmm(lambda r: r['rps'], '.0f')} | {sum(r['errors'] for r in runs)} | "
            f"{mmm(lambda r: 100 * r['busy_share'], '.1f')} | {mmm(lambda r: r['p50_ms'], '.0f')} | "
            f"{mmm(lambda r: r['p95_ms'], '.0f')} | {mmm(lambda r: r['p99_ms'], '.0f')} | "
            f"{mmm(lambda r: r['health_during']['max_s'], '.2f')} | {mmm(lambda r: r['recovery']['health_s'], '.2f')} |")


SPREAD_HEAD = ("| clients | workers | seeds | answers | req/s | errors | busy 503 % | p50 ms | p95 ms | p99 ms | "
               "slowest /health during, s | /health after, s |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--also", type=int, nargs="*", default=[60], help="further runs with these client counts")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1], help="one run per seed and client count")
    ap.add_argument("--planners", type=int, default=0,
                    help="of the clients, this many planners running the synchronous walking coverage")
    args = ap.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="shequ-load-"))
    os.environ.setdefault("SHEQU_SECRETS_DIR", str(folder / "secrets"))  # the token's key, shared with the server
    url, cleanup = _database()
    results: list[dict] = []
    try:
        prepare(url, folder)
        for users in [args.users, *args.also]:
            for seed in args.seeds:
                s = load_run(url, folder, users, args.seconds, args.workers, f"u{users}-s{seed}", seed=seed,
                             planners=args.planners)
                results.append(s)
                print(f"seed {seed}:", table(s), "\n", flush=True)
    finally:
        cleanup()
    print(SPREAD_HEAD)
    for users in [args.users, *args.also]:
        print(spread([r for r in results if r["users"] == users]))
    out = ROOT / "bench-output"
    out.mkdir(exist_ok=True)
    for r in results:  # the raw times stay in the log folder
        r.pop("raw", None)
    (out / "load.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"figures: {out / 'load.json'}; logs: {folder}")
    if any(s["errors"] for s in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
