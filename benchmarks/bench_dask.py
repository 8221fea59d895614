"""Province batch jobs on Dask (issue 14 §3): 1 → 2 worker speed-up, per-partition time and peak memory.

    export SHEQU_PG_DIR=var/pg-dask SHEQU_PG_PORT=54377       # a database of its own
    shequ db start && shequ migrate && shequ demo load && shequ demo synth -n 100000 --seed 1
    nice .venv/bin/python benchmarks/bench_dask.py --repeats 3 --out bench-output/dask-1e5.json

Jobs, on the synthetic city in DATABASE_URL / the embedded cluster, partitioned by district (the districts
holding buildings):

- ``h3``: `grid_builder.province.h3_province` (H3 res ``--res``, centre mode: households / buildings / POIs /
  addresses per cell);
- ``coverage``: `siting.province.coverage_province` (``--type``, by walking distance);
- ``geocode``: `address_registry.bulk.geocode_bulk` of ``--queries`` noisy and formatted address strings
  against the registry (the geocoder is loaded once, outside the timing; its scatter to the workers is timed).

Phases:
1. **per partition** — the driver reads every partition (read seconds per district); each partition is then
   computed alone in a fresh process (``spawn``): wall and CPU seconds, the pickled input's size, and the
   process's peak RSS (VmHWM) minus its RSS before the partition was unpickled = the partition's peak memory;
2. **whole job** — ``--repeats`` runs each in this process (``workers=0``, the single-process reference) and
   on a LocalCluster of 1 and of 2 worker processes (started once per size, outside the timing): wall seconds
   of the whole job (reads included) and of the compute alone (partitions read beforehand, then
   `run_partitions`), CPU seconds of the driver and of the workers (PostgreSQL's own CPU not counted); for
   h3 and coverage also the whole job with each worker reading its own partition (``reader="worker"``).

Every figure carries `os.getloadavg()` at its start (the machine is shared: 2 cores). JSON to ``--out`` and a
Markdown summary on stdout (min / median / max over repeats).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pickle
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _status_mb(key: str) -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _fn(job: str):
    if job == "h3":
        from grid_builder.province import h3_partition

        return h3_partition
    if job == "coverage":
        from siting.province import coverage_partition

        return coverage_partition
    from address_registry.bulk import geocode_partition

    return geocode_partition


def _child(job: str, blob: bytes, args: tuple) -> dict[str, float]:
    """One partition alone in a fresh process: wall and CPU (unpickling the input included, and given apart),
    peak RSS over the RSS before unpickling."""
    fn = _fn(job)
    import h3  # noqa: F401  (imports the job's dependencies before the baseline)
    import shapely  # noqa: F401

    before = _status_mb("VmRSS")
    c0, t0 = _cpu(), time.perf_counter()
    data = pickle.loads(blob)
    unpickle_s = time.perf_counter() - t0
    if job == "geocode":
        geocoder, rows = data
        fn(geocoder, rows, *args)
    else:
        fn(data, *args)
    return {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu() - c0, "unpickle_s": unpickle_s,
            "peak_mb": _status_mb("VmHWM") - before}


def read_parts(engine, job: str, opts, codes) -> tuple[list[Any], list[float]]:
    """The partitions of a job as the driver reads them, with the read seconds of each."""
    seconds, parts = [], []
    if job == "h3":
        from grid_builder.province import read_partitions

        it = read_partitions(engine, codes, opts.res)
    else:
        from siting.province import read_partitions as read_cov

        it = read_cov(engine, opts.type, opts.radius, "walk", codes)
    while True:
        t0 = time.perf_counter()
        try:
            p = next(it)
        except StopIteration:
            break
        seconds.append(time.perf_counter() - t0)
        parts.append(p)
    return parts, seconds


def job_args(job: str, opts) -> tuple:
    return {"h3": (opts.res, "center"), "coverage": (opts.radius, "walk"), "geocode": (1,)}[job]


def per_partition(engine, job: str, opts, codes, geocode_data=None) -> list[dict]:
    """Phase 1."""
    if job == "geocode":
        from address_registry.bulk import partitions

        geocoder, texts = geocode_data
        parts = [rows for _s, rows in partitions(texts, opts.partition_size)][:3]
        reads = [0.0] * len(parts)
        blobs = [pickle.dumps((geocoder, rows), protocol=pickle.HIGHEST_PROTOCOL) for rows in parts]
        names = [f"rows {i * opts.partition_size}+{len(rows)}" for i, rows in enumerate(parts)]
    else:
        parts, reads = read_parts(engine, job, opts, codes)
        blobs = [pickle.dumps(p, protocol=pickle.HIGHEST_PROTOCOL) for p in parts]
        names = [p.code for p in parts]
    out = []
    ctx = mp.get_context("spawn")
    for name, part, blob, read_s in zip(names, parts, blobs, reads, strict=True):
        load = _load()
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
            m = ex.submit(_child, job, blob, job_args(job, opts)).result()
        row = {"partition": name, "read_s": round(read_s, 3), "input_mb": round(len(blob) / 2**20, 2),
               **{k: round(v, 3) for k, v in m.items()}, "load": load}
        if job == "h3":
            row.update({k: len(v) for k, v in part.layers.items()})
        elif job == "coverage":
            row.update(buildings=len(part.building_id), sites=len(part.site_id), ways=len(part.ways or []))
        else:
            row.update(rows=len(part))
        out.append(row)
        print(json.dumps({job: row}, ensure_ascii=False), flush=True)
    return out


def run_job(engine, job: str, opts, codes, client, workers: int, geocode_data=None, reader: str = "driver") -> Any:
    if job == "h3":
        from grid_builder.province import h3_province

        return h3_province(engine, opts.res, "center", codes=codes, client=client, workers=workers, reader=reader)
    if job == "coverage":
        from siting.province import coverage_province

        return coverage_province(engine, opts.type, distance="walk", radius_m=opts.radius, codes=codes,
                                 client=client, workers=workers, reader=reader)
    from address_registry.bulk import geocode_bulk

    geocoder, texts = geocode_data
    if client is None:
        return geocoder.geocode_many(texts, 1)
    return geocode_bulk(geocoder, texts, partition_size=opts.partition_size, client=client)


def _worker_cpu(client) -> float:
    if client is None:
        return 0.0
    return sum(client.run(_cpu).values())


def whole_job(engine, job: str, opts, codes, geocode_data=None) -> list[dict]:
    """Phase 2."""
    from dask.distributed import Client, LocalCluster

    from grid_builder.province import run_partitions

    pre = None if job == "geocode" else read_parts(engine, job, opts, codes)[0]
    out = []
    for workers in opts.workers:
        cluster = client = None
        t0 = time.perf_counter()
        if workers:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
        start_s = time.perf_counter() - t0
        try:
            for rep in range(opts.repeats):
                load = _load()
                c0, w0, t0 = _cpu(), _worker_cpu(client), time.perf_counter()
                run_job(engine, job, opts, codes, client, workers, geocode_data)
                wall = time.perf_counter() - t0
                cpu_driver, cpu_workers = _cpu() - c0, _worker_cpu(client) - w0
                row = {"workers": workers, "repeat": rep, "wall_s": round(wall, 3),
                       "cpu_driver_s": round(cpu_driver, 3), "cpu_workers_s": round(cpu_workers, 3),
                       "cluster_start_s": round(start_s, 2), "load": load}
                if pre is not None:
                    load2 = _load()
                    t0 = time.perf_counter()
                    run_partitions(_fn(job), pre, *job_args(job, opts), client=client, workers=workers)
                    row.update(compute_wall_s=round(time.perf_counter() - t0, 3), compute_load=load2)
                out.append(row)
                print(json.dumps({job: row}), flush=True)
                if pre is not None and workers:  # each worker reading its own partition
                    load = _load()
                    c0, w0, t0 = _cpu(), _worker_cpu(client), time.perf_counter()
                    run_job(engine, job, opts, codes, client, workers, geocode_data, reader="worker")
                    row = {"workers": workers, "reader": "worker", "repeat": rep,
                           "wall_s": round(time.perf_counter() - t0, 3), "cpu_driver_s": round(_cpu() - c0, 3),
                           "cpu_workers_s": round(_worker_cpu(client) - w0, 3), "load": load}
                    out.append(row)
                    print(json.dumps({job: row}), flush=True)
        finally:
            if client is not None:
                client.close()
                cluster.close()
    return out


def geocode_inputs(engine, n: int):
    from address_registry import store
    from address_registry.geocoder import Geocoder
    from address_registry.noisy import noisy_queries

    with engine.connect() as conn:
        inputs = store.load_geocoder_inputs(conn)
    g = Geocoder(**inputs)
    active = [r for r in inputs["records"] if r.status == "active"]
    step = max(1, len(active) // n)
    texts = [r.formatted for r in active[::step * 2]]
    texts += [q for _f, q, _c in noisy_queries(active[1::step * 2], inputs["aliases"], seed=5)]
    return g, texts[:n], len(active)


def _mmm(values: list[float]) -> str:
    return " / ".join(f"{f(values):.2f}" for f in (min, statistics.median, max))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", default="h3,coverage,geocode")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", default="0,1,2", help="0 = in this process, no Dask")
    ap.add_argument("--res", type=int, default=9)
    ap.add_argument("--type", default="公交车站")
    ap.add_argument("--radius", type=float, default=500.0)
    ap.add_argument("--queries", type=int, default=20_000)
    ap.add_argument("--partition-size", type=int, default=2_500)
    ap.add_argument("--skip-partitions", action="store_true", help="skip phase 1")
    ap.add_argument("--out", type=Path, default=Path("bench-output/dask.json"))
    opts = ap.parse_args()
    opts.workers = [int(w) for w in opts.workers.split(",")]

    from sqlalchemy import text

    from gis_api.db import get_engine
    from grid_builder.province import partition_codes

    engine = get_engine()
    with engine.connect() as conn:
        codes = partition_codes(conn)
        n_addr = conn.execute(text("SELECT count(*) FROM standard_address WHERE valid_to IS NULL")).scalar_one()
        n_bld = conn.execute(text("SELECT count(*) FROM building")).scalar_one()
    result: dict[str, Any] = {"addresses": n_addr, "buildings": n_bld, "partitions": codes, "cpus": os.cpu_count(),
                              "uptime_start": os.getloadavg(), "jobs": {}}
    for job in opts.jobs.split(","):
        gd = None
        if job == "geocode":
            t0 = time.perf_counter()
            g, texts, n_active = geocode_inputs(engine, opts.queries)
            gd = (g, texts)
            result["geocode_inputs"] = {"queries": len(texts), "active_addresses": n_active,
                                        "geocoder_build_s": round(time.perf_counter() - t0, 2),
                                        "geocoder_pickle_mb": round(len(pickle.dumps(g)) / 2**20, 1)}
        entry: dict[str, Any] = {}
        if not opts.skip_partitions:
            entry["per_partition"] = per_partition(engine, job, opts, codes, gd)
        entry["runs"] = whole_job(engine, job, opts, codes, gd)
        result["jobs"][job] = entry
    result["uptime_end"] = os.getloadavg()
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")

    print(f"\n{n_addr:,} addresses, {n_bld:,} buildings, {len(codes)} partitions; load "
          f"{result['uptime_start'][0]:.2f} → {result['uptime_end'][0]:.2f}\n")
    print("| job | workers | wall s (min / median / max) | compute-only wall s | CPU s driver + workers (median) |")
    print("|---|---:|---:|---:|---:|")
    for job, entry in result["jobs"].items():
        for w in opts.workers:
            for reader in ("driver", "worker"):
                rows = [r for r in entry["runs"] if r["workers"] == w and r.get("reader", "driver") == reader]
                if not rows:
                    continue
                comp = _mmm([r["compute_wall_s"] for r in rows]) if "compute_wall_s" in rows[0] else "—"
                cpu = statistics.median(r["cpu_driver_s"] + r["cpu_workers_s"] for r in rows)
                print(f"| {job} | {w}{' (workers read)' if reader == 'worker' else ''} | "
                      f"{_mmm([r['wall_s'] for r in rows])} | {comp} | {cpu:.2f} |")
    print("\n| job | partition | inputs | read s | unpickle + compute s (CPU s) | of it unpickle s | input MB | peak MB |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for job, entry in result["jobs"].items():
        for r in entry.get("per_partition", []):
            what = ", ".join(f"{k} {r[k]:,}" for k in ("buildings", "addresses", "sites", "ways", "rows") if k in r)
            print(f"| {job} | {r['partition']} | {what} | {r['read_s']} | {r['wall_s']} ({r['cpu_s']}) | "
                  f"{r['unpickle_s']} | {r['input_mb']} | {r['peak_mb']} |")


if __name__ == "__main__":
    main()
