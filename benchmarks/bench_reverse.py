"""The reverse-geocoding slice of bench_growth.py (issue 14's "reverse p99 < 10 ms"), repeated: the answer from
the in-memory index (`address_registry/reverse_cache.py`) and from the SQL statement, back to back.

    .venv/bin/python benchmarks/bench_growth.py --sizes 8371 1000000 --seeds 1 --steps grid --keep   # the clusters
    .venv/bin/python benchmarks/bench_reverse.py --sizes 8371 1000000 --runs 3

Each mode (``--modes memory sql``: ``SHEQU_REVERSE_IN_MEMORY=1`` / ``0`` in the server's environment) gets its
own server and R runs, memory first; the server's resident memory (RSS / USS, ``/proc/<pid>/smaps_rollup``)
after its runs is recorded, and a child process measures what building the index adds to a process that
holds the geocoder (RSS before and after `ReverseCache.get`, freed pages returned to the OS first).

Against the kept cluster of each size (``var/pg-growth-N-1``, its synthetic city and grids built by
bench_growth.py), ``shequ serve --workers W`` of this checkout is started and waited for until its geocoder
answers (so the index build does not share the cores with the measurement); then, per run r = 1..R,
``GET /reverse`` at bench_growth's 2,000 seeded points of seed r (half on synthetic buildings, half 10–40 m
beside them) from 8 client processes (keep-alive, closed loop), then the first 500 of them from one client —
exactly bench_growth's measurement, with the load average before each. Rows go to
bench-output/reverse.json; the table gives min / median / max over the runs.

Run the same script from an export of an older commit (``git archive <commit> | tar -x -C /tmp/before``,
then ``--root-cluster`` pointing at this checkout's clusters) to measure the code before a change beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_growth import (  # noqa: E402
    _free_port,
    _load,
    cluster_env,
    db_url,
    latency,
    reverse_points,
    running_port,
    served,
    shequ,
    wait_geocoder,
)

OUT = ROOT / "bench-output"


def measure(size: int, seed: int, runs: int, workers: int, clusters: Path, label: str,
            modes: tuple[str, ...] = ("memory", "sql")) -> list[dict[str, Any]]:
    port = running_port_in(clusters, size, seed) or _free_port()
    env = cluster_env(size, seed, port)
    env["SHEQU_PG_DIR"] = str(clusters / f"pg-growth-{size}-{seed}")
    shequ(env, "db", "start")
    url = db_url(env)
    queries = json.loads((clusters / f"growth-queries-{size}-{seed}.json").read_text())
    folder = OUT / "reverse"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for mode in modes:
        os.environ["SHEQU_REVERSE_IN_MEMORY"] = "1" if mode == "memory" else "0"
        try:
            rows += _runs(url, env, workers, folder, queries, size, seed, runs, f"{label} ({mode})")
        finally:
            os.environ.pop("SHEQU_REVERSE_IN_MEMORY", None)
    if "memory" in modes:
        added = index_memory(url, env)
        print(json.dumps({"size": size, "index_memory": added}), file=sys.stderr, flush=True)
        for row in rows:
            row["index_memory"] = added
    return rows


def _runs(url: str, env: dict[str, str], workers: int, folder: Path, queries: list[str], size: int, seed: int,
          runs: int, label: str) -> list[dict[str, Any]]:
    from gis_api.serving import process_memory

    rows = []
    with served(url, env, workers, folder / f"server-{label}-{size}.log") as (proc, port):
        ready = wait_geocoder(port, queries[0])
        for run in range(1, runs + 1):
            rev = [f"/reverse?lon={x:.7f}&lat={y:.7f}" for x, y in reverse_points(url, run)]
            latency(port, rev[:200])  # warm-up: each client's first connection, the pool's prepared statements
            eight = latency(port, rev)
            cpu0 = _cpu_s(proc.pid), _cpu_s(_postmaster(env))
            one = latency(port, rev[:500], clients=1)
            cpu1 = _cpu_s(proc.pid), _cpu_s(_postmaster(env))
            # CPU per answer from one client (server process tree; the cluster's processes), in ms
            one["server_cpu_ms"] = round((cpu1[0] - cpu0[0]) / one["requests"] * 1000, 3)
            one["postgres_cpu_ms"] = round((cpu1[1] - cpu0[1]) / one["requests"] * 1000, 3)
            row = {"label": label, "size": size, "seed": seed, "points_seed": run, "workers": workers,
                   "geocoder_ready_s": round(ready, 2), "started": time.strftime("%H:%M:%S", time.gmtime()),
                   "reverse": eight, "reverse_1client": one}
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
        mem = process_memory(proc.pid)
        for row in rows:
            row["server_kb"] = {"rss": mem["rss"], "uss": mem["uss"]}
    return rows


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) of ``pid`` and its live child processes, from /proc."""
    from gis_api.serving import children_of

    if pid is None:
        return 0.0
    total = 0.0
    for p in [pid, *children_of(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _postmaster(env: dict[str, str]) -> int | None:
    try:
        return int((Path(env["SHEQU_PG_DIR"]) / "data" / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def index_memory(url: str, env: dict[str, str]) -> dict[str, Any]:
    """KB of resident memory the reverse index adds to a process holding the geocoder (a child process)."""
    proc = subprocess.run([sys.executable, __file__, "--child-memory", url], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=3600, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_memory(url: str) -> None:
    """Print the RSS (KB) of this process with the geocoder loaded, then with the reverse index beside it."""
    import ctypes
    import gc

    from address_registry.geocoder_cache import GeocoderCache
    from address_registry.reverse_cache import ReverseCache
    from gis_api.db import get_engine
    from gis_api.serving import process_memory

    def rss() -> int:
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        return process_memory(os.getpid())["rss"]

    geocoders = GeocoderCache(get_engine(url))
    geocoders.get()
    before = rss()
    t0 = time.perf_counter()
    cache = ReverseCache(geocoders)
    index = cache.get()
    build_s = time.perf_counter() - t0
    after = rss()
    assert index is not None
    print(json.dumps({"rss_with_geocoder_kb": before, "rss_with_index_kb": after, "added_kb": after - before,
                      "build_s": round(build_s, 2), "points": len(index.points), "buildings": len(index.buildings),
                      "grids": len(index.grids), "admin": len(index.admin), "loads": cache.last_load}, default=str))


def running_port_in(clusters: Path, size: int, seed: int) -> int | None:
    if clusters == ROOT / "var":
        return running_port(size, seed)
    try:
        return int((clusters / f"pg-growth-{size}-{seed}" / "data" / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return None


def _mmm(xs: list[float]) -> str:
    return f"{min(xs):,} / {statistics.median(xs):,} / {max(xs):,}"


def _cpu(rows: list[dict]) -> str:
    got = [(r["reverse_1client"]["server_cpu_ms"], r["reverse_1client"]["postgres_cpu_ms"]) for r in rows
           if "server_cpu_ms" in r["reverse_1client"]]
    if not got:
        return "—"
    return (f"{statistics.median(s for s, _ in got):.2f} + {statistics.median(p for _, p in got):.2f}")


def _rss(rows: list[dict]) -> str:
    kb = [r["server_kb"]["rss"] for r in rows if "server_kb" in r]
    return f"{max(kb) / 1024:,.0f}" if kb else "—"


def table(rows: list[dict]) -> str:
    keys = sorted({(r["label"], r["size"]) for r in rows}, key=lambda k: (k[1], k[0]))
    lines = ["| code | addresses | runs | p99 ms, 8 clients | p50 ms, 8 clients | answers/s, 8 clients | "
             "p99 ms, 1 client | p50 ms, 1 client | CPU ms / answer, server + PostgreSQL | load before (1-min) | "
             "server RSS MB |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, size in keys:
        rs = [r for r in rows if (r["label"], r["size"]) == (label, size)]
        lines.append(f"| {label} | {size:,} | {len(rs)} | {_mmm([r['reverse']['p99_ms'] for r in rs])} | "
                     f"{_mmm([r['reverse']['p50_ms'] for r in rs])} | {_mmm([r['reverse']['per_s'] for r in rs])} | "
                     f"{_mmm([r['reverse_1client']['p99_ms'] for r in rs])} | "
                     f"{_mmm([r['reverse_1client']['p50_ms'] for r in rs])} | "
                     f"{_cpu(rs)} | {_mmm([r['reverse']['load_before'][0] for r in rs])} | {_rss(rs)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8371, 1_000_000])
    ap.add_argument("--seed", type=int, default=1, help="the synthetic city's seed (its cluster)")
    ap.add_argument("--runs", type=int, default=3, help="runs, each with the points of seed 1..R")
    ap.add_argument("--workers", type=int, default=1, help="shequ serve --workers (default 1)")
    ap.add_argument("--label", default="this checkout", help="the name of the code measured, in the table")
    ap.add_argument("--clusters", type=Path, default=ROOT / "var", help="where the kept clusters are")
    ap.add_argument("--json", type=Path, default=OUT / "reverse.json")
    ap.add_argument("--report", action="store_true", help="only print the table of --json")
    ap.add_argument("--modes", nargs="+", choices=["memory", "sql"], default=["memory", "sql"],
                    help="the answer from the in-memory index and / or the SQL statement (default both)")
    ap.add_argument("--child-memory", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_memory:
        child_memory(args.child_memory)
        return
    old = json.loads(args.json.read_text())["rows"] if args.json.exists() else []
    if not args.report:
        print(f"load before: {_load()}", file=sys.stderr)
        for size in args.sizes:
            new = measure(size, args.seed, args.runs, args.workers, args.clusters.resolve(), args.label,
                          tuple(args.modes))
            labels = {r["label"] for r in new}
            old = [r for r in old if (r["label"], r["size"]) not in {(lb, size) for lb in labels}] + new
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"rows": old}, indent=1))
    print(table(old))


if __name__ == "__main__":
    main()
