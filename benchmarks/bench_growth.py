"""The rest of issue 14's growth table: registry build, API p99, reverse p99, grids, tiles, coverage, DB size.

    .venv/bin/python benchmarks/bench_growth.py                                   # demo size + 10^5, seeds 1 2 3
    .venv/bin/python benchmarks/bench_growth.py --sizes 1000000 --seeds 1         # 10^6 (~15 min on 2 cores)
    .venv/bin/python benchmarks/bench_growth.py --sizes 100000 --seeds 1 --steps serve tiles --reuse

For each size × seed, a PostGIS cluster of its own (``SHEQU_PG_DIR=var/pg-growth-N-S``, a free port), built
and measured with the product's own commands, each in a fresh process (``python -m gis_api.cli``):

- ``setup``: ``shequ db start && shequ migrate && shequ demo load`` (the real roads, districts, buildings);
- ``synth``: ``shequ demo synth -n N --seed S`` — in a child process that times the registry build the synth
  runs, ``address_registry.build.plan_registry`` (the function ``shequ address build`` runs on the demo;
  ``shequ address build`` itself does not run on a synthetic city), and, from the grown city, writes the
  noisy query texts (``address_registry.noisy``, 2,000 seeded) the API clients send;
- ``grid``: ``shequ grid boundaries --extent buildings`` (the whole synthetic city; ``--grid-extent demo``: only
  inside the demo's Tilezen extract, the command's default) then ``shequ grid build --all`` (households from
  the synthetic and the demo buildings; the build's time to its first H3 line is the grids, the rest the H3
  layer it refreshes);
- ``serve``: ``shequ serve --workers W`` (the geocoder warmed in the background, ``SHEQU_WARM_GEOCODER=1``);
  time until a ``/geocode`` answers; then 8 client processes with keep-alive connections send the noisy
  queries to ``GET /geocode`` (p50 / p95 / p99 / max), then ``GET /reverse`` at seeded points (half in
  synthetic buildings, half 10–40 m off them); each then again from one client (500 requests: the service
  time without the queue 8 closed-loop clients build);
- ``tiles``: the same server, ``GET /tiles/basemap/{z}/{x}/{y}.mvt`` for every tile of z12–16 over the
  synthetic city's fixed frame (the bbox of the named roads it is grown from): one pass after the tile cache
  is cleared (cold), two more (warm), 8 keep-alive client threads (`bench_tiles.run_pass`);
- ``coverage``: ``shequ coverage --type 公交车站 --distance walk`` (wall time of the command: analysis, the
  saved result and its map, PDF, GeoPackage and CSVs); then, in a child process, `coverage_analysis` alone
  and the walking-distance computation inside it (`compute_coverage`);
- ``size``: ``pg_database_size``.

Each row records ``os.getloadavg()`` before each step. Rows go to bench-output/growth.json (merged by size and
seed with earlier runs) and a Markdown table (min / median / max over seeds) to stdout.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_geocode import _free_port, get_paths  # noqa: E402
from bench_load import serve, stop  # noqa: E402
from bench_tiles import clear_cache, run_pass  # noqa: E402

STEPS = ("setup", "synth", "grid", "serve", "tiles", "coverage", "size")
OUT = ROOT / "bench-output"
CLIENTS = 8


# -- the cluster of one size × seed, and the product's commands run in it -----------------------------------

def cluster_env(size: int, seed: int, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_URL_READ")}
    env.update(SHEQU_PG_DIR=str(ROOT / "var" / f"pg-growth-{size}-{seed}"), SHEQU_PG_PORT=str(port),
               PYTHONPATH=str(ROOT))
    return env


def shequ(env: dict[str, str], *args: str, timeout: float = 3600) -> tuple[float, str]:
    """(wall seconds, stdout) of ``python -m gis_api.cli ARGS`` in a fresh process; raises on failure."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gis_api.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"shequ {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return wall, proc.stdout


def db_url(env: dict[str, str]) -> str:
    return shequ(env, "db", "url")[1].strip().splitlines()[-1].removeprefix("url: ").strip()


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def step_setup(env: dict[str, str]) -> dict:
    out = {}
    for name, args in (("db_start_s", ("db", "start")), ("migrate_s", ("migrate",)), ("demo_load_s", ("demo", "load"))):
        out[name] = round(shequ(env, *args)[0], 2)
    return out


def synth_child(size: int, seed: int, queries: Path) -> dict:
    """In this process: `shequ demo synth -n size --seed seed` with `plan_registry` timed; the noisy queries
    of a seeded sample of the grown city written to ``queries``."""
    from address_registry import synth
    from address_registry.noisy import noisy_queries
    from gis_api.cli import app

    seen: dict[str, Any] = {"plan_registry_s": 0.0, "grow_s": 0.0, "tiles": []}
    plan, grow = synth.plan_registry, synth.grow_city
    levels = ("road", "house_number", "building", "unit", "floor", "room")

    def timed_plan(**kw):
        t0 = time.perf_counter()
        res = plan(**kw)
        seen["plan_registry_s"] += time.perf_counter() - t0  # summed over the tiles of a tiled city
        return res

    def kept_grow(*a, **kw):
        # a tiled city is grown, written and let go one tile at a time: keep only each tile's counts and a
        # seeded sample of its records (never the tile itself, which would hold every tile in memory)
        t0 = time.perf_counter()
        city = grow(*a, **kw)
        seen["grow_s"] += time.perf_counter() - t0
        active = [r for r in city.records if r.level in levels]
        rng = random.Random(seed * 1000 + len(seen["tiles"]))
        seen["tiles"].append({
            "addresses": len(city.records), "buildings": len(city.buildings), "households": city.households,
            "sample": rng.sample(active, min(1200, len(active))), "aliases": list(city.aliases),
            "roads": {r.components.get("road", "") for r in city.records if r.level == "road"}})
        return city

    synth.plan_registry, synth.grow_city = timed_plan, kept_grow  # type: ignore[assignment]
    t0 = time.perf_counter()
    app(["demo", "synth", "-n", str(size), "--seed", str(seed)], standalone_mode=False)
    wall = time.perf_counter() - t0
    tiles = seen["tiles"]
    rng = random.Random(seed)
    pooled = [r for t in tiles for r in t["sample"]]
    sample = rng.sample(pooled, min(1200, len(pooled)))
    roads = sorted(set().union(*(t["roads"] for t in tiles)))
    noisy = noisy_queries(sample, [a for t in tiles for a in t["aliases"]], seed=seed, road_names=roads)
    texts = [q for _, q, _ in noisy]
    rng.shuffle(texts)
    queries.write_text(json.dumps(texts[:2000], ensure_ascii=False))
    return {"addresses": sum(t["addresses"] for t in tiles), "buildings": sum(t["buildings"] for t in tiles),
            "households": sum(t["households"] for t in tiles), "tiles": len(tiles),
            "registry_build_s": round(seen["plan_registry_s"], 2), "grow_s": round(seen["grow_s"], 2),
            "synth_s": round(wall, 2), "write_s": round(wall - seen["grow_s"], 2), "queries": min(2000, len(texts))}


def step_synth(env: dict[str, str], size: int, seed: int) -> dict:
    queries = Path(env["SHEQU_PG_DIR"]).parent / f"growth-queries-{size}-{seed}.json"
    proc = subprocess.run([sys.executable, __file__, "--child-synth", str(size), str(seed), str(queries)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode:
        raise RuntimeError(f"synth child exited {proc.returncode}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def step_grid(env: dict[str, str], extent: str, workers: int = 1) -> dict:
    """`shequ grid boundaries`, then `shequ grid build --all` with its output read line by line: grids until
    the first H3 line, then the H3 layer."""
    b_s, b_out = shequ(env, "grid", "boundaries", "--extent", extent)
    m = re.search(r"townships: (\d+)\s+临时社区 communities: (\d+)", b_out)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gis_api.cli", "grid", "build", "--all",
                             *(["--workers", str(workers)] if workers > 1 else [])], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    grids_s = None
    total = ""
    for line in proc.stdout:
        if line.startswith("合计 total"):
            total = line.strip()
        if line.startswith("H3 ") and grids_s is None:
            grids_s = time.perf_counter() - t0
    rc = proc.wait()
    wall = time.perf_counter() - t0
    if rc:
        raise RuntimeError(f"shequ grid build --all exited {rc}")
    g = re.search(r"total: (\d+) 网格, (\d+) 在", total)
    return {"boundaries_s": round(b_s, 2), "townships": int(m.group(1)) if m else None,
            "communities": int(m.group(2)) if m else None, "grid_build_all_s": round(wall, 2),
            "grids_s": round(grids_s if grids_s is not None else wall, 2),
            "h3_s": round(wall - grids_s, 2) if grids_s is not None else 0.0,
            "grids": int(g.group(1)) if g else None, "grids_in_band": int(g.group(2)) if g else None,
            "grid_boundaries_plus_build_s": round(b_s + wall, 2)}


# -- the API under 8 clients ---------------------------------------------------------------------------------

def _pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def latency(port: int, paths: list[str], clients: int = CLIENTS) -> dict:
    """``paths`` split over ``clients`` client processes (not threads: a thread waiting for the GIL would add its
    wait to the latency), all at once; percentiles over every answer."""
    jobs = [(port, paths[k::clients], 60.0) for k in range(clients)]
    load = _load()
    t0 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        parts = pool.map(get_paths, jobs)
    wall = time.perf_counter() - t0
    lat = sorted(x for p, _ in parts for x in p)
    errors: Counter = Counter()
    for _, e in parts:
        errors.update(e)
    return {"requests": len(lat), "clients": clients, "errors": dict(errors), "per_s": round(len(lat) / wall, 1),
            "p50_ms": round(_pct(lat, 0.5), 2), "p95_ms": round(_pct(lat, 0.95), 2),
            "p99_ms": round(_pct(lat, 0.99), 2), "max_ms": round(lat[-1], 2), "load_before": load}


def reverse_points(url: str, seed: int, n: int = 2000) -> list[tuple[float, float]]:
    """Seeded points: half on synthetic buildings (a point on the surface), half 10–40 m off them."""
    import psycopg

    rng = random.Random(seed)
    with psycopg.connect(url) as c:
        c.execute("SELECT setseed(%s)", (1.0 / (seed + 1),))
        rows = c.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM building "
                         "WHERE id >= 1000000000 ORDER BY random() LIMIT %s) q", (n,)).fetchall()
    pts = []
    for i in range(n):
        x, y = rows[i % len(rows)]
        if i % 2:
            d, a = rng.uniform(10, 40), rng.uniform(0, 6.2832)
            x, y = x + d * math.cos(a) / 95_000, y + d * math.sin(a) / 111_000  # metres → degrees at 31° N
        pts.append((x, y))
    return pts


def road_frame(url: str) -> tuple[float, float, float, float]:
    """The bbox of the real named roads the synthetic city is grown from (not a tiled city's copies of them):
    one fixed tile set at every size."""
    import psycopg

    with psycopg.connect(url) as c:
        return tuple(c.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e "
                               "FROM road WHERE name IS NOT NULL AND NOT tags ? 'synthetic_tile') q").fetchone())


def tile_bytes(url: str) -> dict:
    """Mean and largest cached tile (bytes) after the passes: what a warm hit reads and sends."""
    import psycopg

    with psycopg.connect(url) as c:
        n, mean, top = c.execute("SELECT count(*), avg(length(data)), max(length(data)) FROM tile_cache").fetchone()
    return {"cached_tiles": n, "tile_bytes_mean": round(float(mean or 0)), "tile_bytes_max": top}


def wait_geocoder(port: int, query: str, budget_s: float = 900) -> float:
    """Seconds until a /geocode answers 200 (a geocode that arrives before the warm index waits for it)."""
    t0 = time.perf_counter()
    path = f"/geocode?{urlencode({'q': query, 'limit': 5})}"
    while time.perf_counter() - t0 < budget_s:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=budget_s)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return time.perf_counter() - t0
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"/geocode did not answer within {budget_s} s")


def step_serve(url: str, env: dict[str, str], size: int, seed: int, workers: int, steps: list[str], folder: Path,
               coverage_type: str) -> dict:
    out: dict[str, Any] = {}
    queries = json.loads((Path(env["SHEQU_PG_DIR"]).parent / f"growth-queries-{size}-{seed}.json").read_text())
    t0 = time.perf_counter()
    with served(url, env, workers, folder / f"server-{size}-{seed}.log") as (_proc, port):
        out["health_s"] = round(time.perf_counter() - t0, 2)
        out["geocoder_ready_s"] = round(wait_geocoder(port, queries[0]) + out["health_s"], 2)
        if "serve" in steps:
            geo = [f"/geocode?{urlencode({'q': q, 'limit': 5})}" for q in queries]
            latency(port, geo[:200])  # warm-up: each client's first connection, the parser's caches
            out["geocode"] = latency(port, geo)
            out["geocode_1client"] = latency(port, geo[:500], clients=1)  # service time without queueing
            rev = [f"/reverse?lon={x:.7f}&lat={y:.7f}" for x, y in reverse_points(url, seed)]
            latency(port, rev[:200])
            out["reverse"] = latency(port, rev)
            out["reverse_1client"] = latency(port, rev[:500], clients=1)
        if "tiles" in steps:
            from tiles.tms import tiles_for_bbox

            frame = road_frame(url)
            paths = [f"/tiles/basemap/{t.z}/{t.x}/{t.y}.mvt" for z in range(12, 17) for t in tiles_for_bbox(frame, z)]
            base = f"http://127.0.0.1:{port}"
            clear_cache(url)
            load = _load()
            cold = run_pass(base, paths, CLIENTS)
            warm = [run_pass(base, paths, CLIENTS) for _ in range(2)]
            lat = sorted(x for p in warm for x in p["lat"])
            out["tiles"] = {"tiles": len(paths), "frame": [round(v, 5) for v in frame], "load_before": load,
                            "cold_per_s": round(cold["n"] / cold["wall_s"], 1),
                            "cold_p99_ms": round(1000 * _pct(sorted(cold["lat"]), 0.99), 1),
                            "warm_per_s": round(sum(p["n"] for p in warm) / sum(p["wall_s"] for p in warm), 1),
                            "warm_p99_ms": round(1000 * _pct(lat, 0.99), 1), **tile_bytes(url)}
    return out


@contextmanager
def served(url: str, env: dict[str, str], workers: int, log: Path) -> Iterator[tuple[Any, int]]:
    """`shequ serve` on the size's cluster (``env``'s SHEQU_PG_DIR / SHEQU_PG_PORT in this process's
    environment meanwhile): (process, port), stopped and the environment restored on leaving."""
    saved = {k: os.environ.get(k) for k in ("SHEQU_PG_DIR", "SHEQU_PG_PORT")}
    os.environ.update(SHEQU_PG_DIR=env["SHEQU_PG_DIR"], SHEQU_PG_PORT=env["SHEQU_PG_PORT"])
    proc, port = serve(url, workers, log)
    try:
        yield proc, port
    finally:
        stop(proc)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def step_coverage(env: dict[str, str], facility_type: str, folder: Path) -> dict:
    wall, stdout = shequ(env, "coverage", "--type", facility_type, "--distance", "walk", "-o",
                         str(folder / "coverage"))
    summary = json.loads(next(line for line in stdout.splitlines() if line.startswith("{")))
    proc = subprocess.run([sys.executable, __file__, "--child-coverage", facility_type], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=3600, check=True)
    inner = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"coverage_s": round(wall, 2), "coverage_analysis_s": inner["analysis_s"],
            "coverage_compute_s": inner.get("compute_s"), "coverage_type": facility_type, "facilities": summary["facilities"],
            "coverage_households": summary["households"], "covered_share": summary["covered_share"]}


def coverage_child(facility_type: str) -> dict:
    """In this process: `siting.service.coverage_analysis` alone (read-only, rolled back), and the walking-
    distance computation inside it (`compute_coverage`), timed."""
    from gis_api.db import get_engine
    from siting import service

    seen: dict[str, float] = {}
    compute = service.compute_coverage

    def timed(*a, **kw):
        t0 = time.perf_counter()
        try:
            return compute(*a, **kw)
        finally:
            seen["compute_s"] = time.perf_counter() - t0

    service.compute_coverage = timed  # type: ignore[assignment]
    with get_engine().connect() as conn:
        t0 = time.perf_counter()
        service.coverage_analysis(conn, facility_type, distance="walk")
        seen["analysis_s"] = time.perf_counter() - t0
        conn.rollback()
    return {k: round(v, 2) for k, v in seen.items()}


def step_size(url: str) -> dict:
    import psycopg

    with psycopg.connect(url) as c:
        size = c.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        n = c.execute("SELECT count(*) FROM standard_address WHERE valid_to IS NULL").fetchone()[0]
    return {"database_mb": round(size / 2**20, 1), "addresses_in_db": n}


# -- one row, the whole run -----------------------------------------------------------------------------------

def has_city(env: dict[str, str], size: int) -> bool:
    """A kept cluster of this size × seed holding its synthetic city (``--reuse``)."""
    if not Path(env["SHEQU_PG_DIR"]).exists():
        return False
    import psycopg

    shequ(env, "db", "start")
    with psycopg.connect(db_url(env)) as c:
        n = c.execute("SELECT count(*) FROM standard_address WHERE source = 'synthetic'").fetchone()[0]
    return abs(n - size) <= max(200, size // 100)


def running_port(size: int, seed: int) -> int | None:
    """The port a kept cluster of this size × seed is running on (its postmaster.pid), if it runs."""
    pid = ROOT / "var" / f"pg-growth-{size}-{seed}" / "data" / "postmaster.pid"
    try:
        return int(pid.read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return None


def run_row(size: int, seed: int, port: int, steps: list[str], args: argparse.Namespace) -> dict:
    env = cluster_env(size, seed, running_port(size, seed) or port)
    folder = OUT / "growth" / f"{size}-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    row: dict[str, Any] = {"size": size, "seed": seed, "workers": args.workers, "cpus": os.cpu_count(),
                           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load": {}}
    reuse = args.reuse and has_city(env, size)
    if not reuse:
        if Path(env["SHEQU_PG_DIR"]).exists():
            subprocess.run([sys.executable, "-m", "gis_api.cli", "db", "stop"], cwd=ROOT, env=env, capture_output=True)
            shutil.rmtree(env["SHEQU_PG_DIR"])
        steps = list(dict.fromkeys(["setup", "synth", *steps]))
    row["reused_cluster"] = reuse

    def note(step: str) -> None:
        row["load"][step] = _load()
        print(f"[{time.strftime('%H:%M:%S')}] {size:,} seed {seed}: {step} (load {row['load'][step]})", file=sys.stderr,
              flush=True)

    try:
        if "setup" in steps:
            note("setup")
            row.update(step_setup(env))
        url = db_url(env)
        if "synth" in steps:
            note("synth")
            row.update(step_synth(env, size, seed))
        if "grid" in steps:
            note("grid")
            row.update(step_grid(env, args.grid_extent, args.grid_workers), grid_extent=args.grid_extent,
                       grid_workers=args.grid_workers)
        if "serve" in steps or "tiles" in steps:
            note("serve")
            row.update(step_serve(url, env, size, seed, args.workers, steps, folder, args.coverage_type))
        if "coverage" in steps:
            note("coverage")
            row.update(step_coverage(env, args.coverage_type, folder))
        if "size" in steps:
            note("size")
            row.update(step_size(url))
    finally:
        if not args.keep:
            subprocess.run([sys.executable, "-m", "gis_api.cli", "db", "stop"], cwd=ROOT, env=env, capture_output=True)
    return row


def merge(rows: list[dict], path: Path) -> list[dict]:
    """Earlier rows of other sizes / seeds kept; a row of the same size and seed updated by the new one."""
    old = json.loads(path.read_text())["rows"] if path.exists() else []
    by = {(r["size"], r["seed"]): r for r in old}
    for r in rows:
        key = (r["size"], r["seed"])
        by[key] = {**by.get(key, {}), **r, "load": {**by.get(key, {}).get("load", {}), **r["load"]}}
    return [by[k] for k in sorted(by)]


def _mmm(values: list[float]) -> str:
    vs = [v for v in values if v is not None]
    if not vs:
        return "—"
    if len(vs) == 1:
        return f"{vs[0]:,}"
    return f"{min(vs):,} / {statistics.median(vs):,} / {max(vs):,}"


COLUMNS = [("addresses", lambda r: r.get("addresses")),
           ("households (buildings: synthetic + demo)", lambda r: r.get("coverage_households")),
           ("communities", lambda r: r.get("communities")),
           ("grids", lambda r: r.get("grids")),
           ("registry build s (plan_registry)", lambda r: r.get("registry_build_s")),
           ("geocoder ready s", lambda r: r.get("geocoder_ready_s")),
           ("/geocode p99 ms", lambda r: r.get("geocode", {}).get("p99_ms")),
           ("/geocode p50 ms", lambda r: r.get("geocode", {}).get("p50_ms")),
           ("/reverse p99 ms", lambda r: r.get("reverse", {}).get("p99_ms")),
           ("/reverse p50 ms", lambda r: r.get("reverse", {}).get("p50_ms")),
           ("/geocode p99 ms, 1 client", lambda r: r.get("geocode_1client", {}).get("p99_ms")),
           ("/reverse p99 ms, 1 client", lambda r: r.get("reverse_1client", {}).get("p99_ms")),
           ("/reverse answers/s, 8 clients", lambda r: r.get("reverse", {}).get("per_s")),
           ("grid boundaries + build --all s", lambda r: r.get("grid_boundaries_plus_build_s")),
           ("of which grids s", lambda r: r.get("grids_s")),
           ("tiles cold /s", lambda r: r.get("tiles", {}).get("cold_per_s")),
           ("tiles warm /s", lambda r: r.get("tiles", {}).get("warm_per_s")),
           ("tile bytes, mean", lambda r: r.get("tiles", {}).get("tile_bytes_mean")),
           ("coverage walk s (command)", lambda r: r.get("coverage_s")),
           ("of which the analysis s", lambda r: r.get("coverage_analysis_s")),
           ("of which walking distances s", lambda r: r.get("coverage_compute_s")),
           ("database MB", lambda r: r.get("database_mb"))]


def _k(xs: list[float], ys: list[float]) -> str:
    """Slope of log(value) on log(addresses): value ∝ N^k."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if y and y > 0]
    if len(pts) < 2:
        return "—"
    mx, my = statistics.fmean(p[0] for p in pts), statistics.fmean(p[1] for p in pts)
    return f"{sum((a - mx) * (b - my) for a, b in pts) / sum((a - mx) ** 2 for a, _ in pts):.2f}"


def table(rows: list[dict]) -> str:
    """min / median / max per size of each measure (seeds), and the exponent k of value ∝ N^k on the medians
    (addresses as synthesised), overall and for the last step."""
    sizes = sorted({r["size"] for r in rows})
    lines = ["| measure | " + " | ".join(f"{s:,} ({len([r for r in rows if r['size'] == s])} seeds)" for s in sizes)
             + " | k | k last step |", "|---|" + "---:|" * (len(sizes) + 2)]
    n = [statistics.median(r.get("addresses") or r["size"] for r in rows if r["size"] == s) for s in sizes]
    for name, get in COLUMNS:
        med = [statistics.median(v) if (v := [x for r in rows if r["size"] == s if (x := get(r)) is not None])
               else None for s in sizes]
        ks = _k(n, med) if None not in med else "—"
        last = _k(n[-2:], med[-2:]) if len(sizes) > 2 and None not in med[-2:] else "—"
        lines.append(f"| {name} | " + " | ".join(_mmm([get(r) for r in rows if r["size"] == s]) for s in sizes)
                     + f" | {ks} | {last} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8371, 100_000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    ap.add_argument("--workers", type=int, default=1, help="shequ serve --workers (default 1)")
    ap.add_argument("--coverage-type", default="公交车站")
    ap.add_argument("--grid-extent", choices=["buildings", "demo"], default="buildings",
                    help="shequ grid boundaries --extent (default: the whole synthetic city)")
    ap.add_argument("--grid-workers", type=int, default=1,
                    help="shequ grid build --all --workers (default 1: one process; 2 for 10^7)")
    ap.add_argument("--keep", action="store_true", help="leave each cluster running (var/pg-growth-N-S)")
    ap.add_argument("--reuse", action="store_true", help="use a kept cluster that holds the city (skips setup, synth)")
    ap.add_argument("--port", type=int, help="the clusters' port (default: a free one per row)")
    ap.add_argument("--json", type=Path, default=OUT / "growth.json")
    ap.add_argument("--report", type=Path, nargs="+", help="only print the table of these JSON files' rows")
    ap.add_argument("--child-synth", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--child-coverage", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.report:
        print(table([r for path in args.report for r in json.loads(path.read_text())["rows"]]))
        return
    if args.child_coverage:
        print(json.dumps(coverage_child(args.child_coverage)))
        return
    if args.child_synth:
        size, seed, path = args.child_synth
        print(json.dumps(synth_child(int(size), int(seed), Path(path))))
        return
    rows = []
    for size in args.sizes:
        for seed in args.seeds:
            row = run_row(size, seed, args.port or _free_port(), list(args.steps), args)
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            merged = merge(rows, args.json)
            args.json.write_text(json.dumps({"rows": merged}, indent=1, ensure_ascii=False))
    print(table(merge([], args.json)))


if __name__ == "__main__":
    main()
