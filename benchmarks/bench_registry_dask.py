"""The registry plan of many districts on Dask (issue 14 §3): 1 → 2 worker speed-up, per-partition figures.

    nice .venv/bin/python benchmarks/bench_registry_dask.py -n 1000000 --seed 1 --repeats 3 \
        --out bench-output/registry-dask-1e6.json

In memory, no database: the synthetic city of ``-n`` addresses (`address_registry.synth.grow_city`, seed
``--seed``) is grown once and its plan inputs kept; then

1. **per partition** — each district's stage-3 partition (`build.emission_partitions`) computed alone in a
   fresh process (``spawn``): wall and CPU seconds (unpickling included), the pickled input's and answer's
   size, the process's peak RSS over its RSS before unpickling;
2. **whole plan** — ``--repeats`` runs of `build.plan_registry` (one process, the reference) and of
   `province.plan_registry_on_dask` in this process (``workers=0``) and on a LocalCluster of 1 and of 2
   worker processes (started outside the timing): wall seconds, CPU seconds of the driver and of the workers.
   The first Dask run's plan is checked equal to the reference (records, aliases, counts).

Every figure carries `os.getloadavg()` at its start (2 shared cores). JSON to ``--out``, a Markdown summary
on stdout (min / median / max over repeats).

With ``--db URL`` (a database holding a synthetic city: ``shequ demo synth -n N``) it measures instead the
whole build **with its writes**, on the registry of that database (issue 14 §3, who writes the records):

    export SHEQU_PG_DIR=var/pg-synth-100000 SHEQU_PG_PORT=54363; shequ db start && shequ migrate && \
        shequ demo load && shequ demo synth -n 100000 --seed 1
    nice .venv/bin/python benchmarks/bench_registry_dask.py --db "$(shequ db url)" --repeats 3 \
        --out bench-output/registry-write-1e5.json

3. **writes** — ``--repeats`` builds of each of: one process (`service.build_registry` with
   `plan_registry`: `shequ address build`), the driver writing (`build_registry` with
   `plan_registry_on_dask`: ``shequ province registry --writer driver``) and the workers writing
   (`service.build_registry_staged`: ``--writer worker``) on a LocalCluster of 1 and of 2 workers (started
   outside the timing). ``--mode scratch`` (default): each build runs in a transaction that first deletes the
   registry (outside the timing: ``TRUNCATE``), so every record is created, and is rolled back after (the commit itself is
   not timed); ``--mode rebuild``: over the registry as it is. Wall seconds, CPU seconds of the driver, of the
   workers and of PostgreSQL (all the cluster's server processes: the driver's INSERT … SELECT runs there) and
   the counts; the registry each build leaves (a digest of every current row, taken outside the timing) is
   checked equal to the one-process build's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pickle
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_dask import _cpu, _load, _mmm, _status_mb, _worker_cpu  # noqa: E402


def city_inputs(shared: Path, n: int, seed: int) -> dict[str, Any]:
    """The plan_registry arguments of the synthetic city of about ``n`` addresses (grown once)."""
    from address_registry import synth

    d = synth.inputs_from_files(shared)
    captured: dict[str, Any] = {}
    real = synth.plan_registry

    def keep(**kw: Any) -> Any:
        captured.update(kw)
        return real(**kw)

    synth.plan_registry = keep
    try:
        synth.grow_city(d["roads"], d["districts"], n, seed=seed, admin_names=d["admin_names"])
    finally:
        synth.plan_registry = real
    return captured


def _child(shared_blob: bytes, part_blob: bytes) -> dict[str, float]:
    from address_registry.build import emit_partition

    before = _status_mb("VmRSS")
    c0, t0 = _cpu(), time.perf_counter()
    shared, part = pickle.loads(shared_blob), pickle.loads(part_blob)
    res = emit_partition(shared, part)
    out_mb = len(pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL)) / 2**20
    return {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu() - c0, "peak_mb": _status_mb("VmHWM") - before,
            "records": sum(len(c[1]) for c in res.chunks), "output_mb": out_mb}


def per_partition(inputs: dict[str, Any]) -> list[dict]:
    from address_registry.build import emission_partitions, plan_houses

    hp = plan_houses(**{k: v for k, v in inputs.items() if k != "landuse"})
    parts = emission_partitions(hp)
    shared_blob = pickle.dumps(hp.shared, protocol=pickle.HIGHEST_PROTOCOL)
    out = []
    for part in parts:
        blob = pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)
        load = _load()
        with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as ex:
            m = ex.submit(_child, shared_blob, blob).result()
        row = {"partition": part.district, "houses": len(part.houses), "input_mb": round(len(blob) / 2**20, 2),
               "shared_mb": round(len(shared_blob) / 2**20, 2),
               **{k: round(v, 3) for k, v in m.items()}, "load": load}
        out.append(row)
        print(json.dumps(row), flush=True)
    return out


def whole(inputs: dict[str, Any], workers_list: list[int], repeats: int) -> list[dict]:
    from dask.distributed import Client, LocalCluster

    from address_registry.build import plan_registry
    from address_registry.province import plan_registry_on_dask

    out = []
    reference = None
    for label in ["one process", *workers_list]:
        cluster = client = None
        if label not in ("one process", 0):
            cluster = LocalCluster(n_workers=int(label), threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        try:
            for rep in range(repeats):
                load = _load()
                c0, w0, t0 = _cpu(), _worker_cpu(client), time.perf_counter()
                if label == "one process":
                    plan = plan_registry(**inputs)
                else:
                    plan = plan_registry_on_dask(workers=0, client=client, **inputs)
                wall = time.perf_counter() - t0
                row = {"run": label, "repeat": rep, "wall_s": round(wall, 3), "cpu_driver_s": round(_cpu() - c0, 3),
                       "cpu_workers_s": round(_worker_cpu(client) - w0, 3), "records": len(plan.records),
                       "load": load}
                if reference is None:
                    reference = (plan.records, plan.aliases, plan.stats)
                elif rep == 0:
                    row["equal_to_one_process"] = (plan.records, plan.aliases, plan.stats) == reference
                del plan
                out.append(row)
                print(json.dumps(row), flush=True)
        finally:
            if client is not None:
                client.close()
                cluster.close()
    return out


def _pg_cpu(conn) -> float:
    """CPU seconds of the PostgreSQL server (postmaster with its reaped children, plus its live children):
    the server must run on this machine."""
    from sqlalchemy import text

    data_dir = conn.execute(text("SHOW data_directory")).scalar_one()
    pid = int(Path(data_dir, "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")

    def times(p: int, with_children: bool) -> float:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        n = 4 if with_children else 2  # utime stime [cutime cstime]
        return sum(int(x) for x in fields[11:11 + n]) / tick

    total = times(pid, True)
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                total += times(int(d.name), False)
    return total


_DIGEST = """SELECT count(*), md5(string_agg(concat_ws('|', code, version, level, parent_code, district_code,
    township_code, community_code, components::text, normalized_text, ST_AsText(geom), building_id, source, status,
    changed_by, change_reason, compound_code, ST_AsText(area)), ',' ORDER BY code))
    FROM standard_address WHERE valid_to IS NULL"""
_ALIAS_DIGEST = """SELECT count(*), md5(string_agg(concat_ws('|', address_code, normalized_alias, kind, source), ','
    ORDER BY address_code, normalized_alias)) FROM address_alias WHERE valid_to IS NULL"""


def db_builds(url: str, workers_list: list[int], repeats: int, mode: str,
              runs: tuple[str, ...] = ("one", "driver", "worker"), reference_from: Any = None) -> list[dict]:
    """Phase 3: the build with its writes — one process, driver writes, workers write."""
    from functools import partial

    from dask.distributed import Client, LocalCluster
    from sqlalchemy import text

    from address_registry import store
    from address_registry.province import plan_registry_on_dask
    from address_registry.service import build_registry, build_registry_staged
    from gis_api.db import get_engine

    os.environ["DATABASE_URL"] = url  # the LocalCluster's workers inherit it (geo.cluster.worker_engine)
    engine = get_engine(url)
    out: list[dict] = []
    reference: dict[str, Any] = {}
    reference_digest = reference_from

    def one_run(label: str, rep: int, client: Any) -> None:
        with store.registry_staging(engine) as staging, engine.connect() as conn:
            trans = conn.begin()
            try:
                if mode == "scratch":
                    # an empty registry inside this transaction (TRUNCATE is transactional: rolled back after)
                    conn.execute(text("TRUNCATE address_alias, standard_address"))
                load = _load()
                c0, w0, p0, t0 = _cpu(), _worker_cpu(client), _pg_cpu(conn), time.perf_counter()
                if label == "one process":
                    stats = build_registry(conn)
                elif label.startswith("driver writes"):
                    stats = build_registry(conn, plan=partial(plan_registry_on_dask, workers=0, client=client))
                else:
                    stats = build_registry_staged(conn, staging, client=client)
                wall = time.perf_counter() - t0
                row = {"run": label, "repeat": rep, "wall_s": round(wall, 3), "cpu_driver_s": round(_cpu() - c0, 3),
                       "cpu_workers_s": round(_worker_cpu(client) - w0, 3),
                       "cpu_postgres_s": round(_pg_cpu(conn) - p0, 3), "load": load,
                       "counts": {k: stats.get(k, 0) for k in ("planned", "created", "updated", "unchanged",
                                                               "kept_manual_or_retired", "skipped_duplicate_text",
                                                               "aliases_created")}}
                digest = [tuple(conn.execute(text(_DIGEST)).one()), tuple(conn.execute(text(_ALIAS_DIGEST)).one())]
                if reference_digest is not None and not reference:
                    reference["digest"], reference["stats"] = reference_digest
                if not reference:
                    reference["digest"], reference["stats"] = digest, stats
                    row["digest"] = [list(d) for d in digest]
                    row["stats"] = stats
                else:
                    row["equal_to_one_process"] = digest == reference["digest"] and stats == reference["stats"]
            finally:
                trans.rollback()
        out.append(row)
        print(json.dumps(row), flush=True)

    if "one" in runs:
        for rep in range(repeats):
            one_run("one process", rep, None)
    for w in workers_list:
        if w == 0 or not {"driver", "worker"} & set(runs):
            continue
        cluster = LocalCluster(n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        try:
            for rep in range(repeats):  # interleaved: the two writers see the same load
                if "driver" in runs:
                    one_run(f"driver writes, {w} worker{'s' if w > 1 else ''}", rep, client)
                if "worker" in runs:
                    one_run(f"workers write, {w} worker{'s' if w > 1 else ''}", rep, client)
        finally:
            client.close()
            cluster.close()
    return out


def _reference(path: Path | None) -> Any:
    """(digest, stats) of the first build recorded in an earlier ``--db`` run's JSON (to check runs against a
    reference measured separately), or None."""
    if path is None:
        return None
    first = json.loads(path.read_text(encoding="utf-8"))["builds"][0]
    return [tuple(d) for d in first["digest"]], first["stats"]


def main_db(opts: argparse.Namespace) -> None:
    result: dict[str, Any] = {"db_mode": opts.mode, "cpus": os.cpu_count(), "uptime_start": os.getloadavg()}
    workers = [int(w) for w in opts.workers.split(",")]
    result["builds"] = db_builds(opts.db, workers, opts.repeats, opts.mode, tuple(opts.runs.split(",")),
                                 _reference(opts.reference))
    result["uptime_end"] = os.getloadavg()
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"\nmode {opts.mode}; load {result['uptime_start'][0]:.2f} → {result['uptime_end'][0]:.2f}\n")
    print("| build | wall s (min / median / max) | CPU s driver (median) | CPU s workers | CPU s PostgreSQL | "
          "equal |")
    print("|---|---:|---:|---:|---:|---|")
    labels = list(dict.fromkeys(r["run"] for r in result["builds"]))
    for label in labels:
        rows = [r for r in result["builds"] if r["run"] == label]
        med = {k: statistics.median(r[k] for r in rows) for k in ("cpu_driver_s", "cpu_workers_s", "cpu_postgres_s")}
        eq = [r.get("equal_to_one_process", "reference") for r in rows] if label != "one process" else "reference"
        print(f"| {label} | {_mmm([r['wall_s'] for r in rows])} | {med['cpu_driver_s']:.2f} | "
              f"{med['cpu_workers_s']:.2f} | {med['cpu_postgres_s']:.2f} | {eq} |")
    print("\ncounts: " + json.dumps(result["builds"][0]["counts"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100_000, help="addresses of the synthetic city")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", default="0,1,2", help="0 = the partitions in this process, no Dask")
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("SHEQU_SHARED_DATA", "../shared/data")))
    ap.add_argument("--skip-partitions", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("bench-output/registry-dask.json"))
    ap.add_argument("--db", help="measure the build with its writes on this database (phase 3) instead")
    ap.add_argument("--mode", choices=("scratch", "rebuild"), default="scratch")
    ap.add_argument("--runs", default="one,driver,worker", help="which builds: one, driver, worker")
    ap.add_argument("--reference", type=Path, help="an earlier --db JSON whose first build is the reference")
    opts = ap.parse_args()
    if opts.db:
        if opts.workers == "0,1,2":
            opts.workers = "1,2"
        main_db(opts)
        return
    t0 = time.perf_counter()
    inputs = city_inputs(opts.shared, opts.n, opts.seed)
    result: dict[str, Any] = {"n": opts.n, "seed": opts.seed, "buildings": len(inputs["buildings"]),
                              "grow_s": round(time.perf_counter() - t0, 1), "cpus": os.cpu_count(),
                              "uptime_start": os.getloadavg()}
    if not opts.skip_partitions:
        result["per_partition"] = per_partition(inputs)
    result["runs"] = whole(inputs, [int(w) for w in opts.workers.split(",")], opts.repeats)
    result["uptime_end"] = os.getloadavg()
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=1), encoding="utf-8")

    print(f"\nseed {opts.seed}, {result['buildings']:,} buildings; load {result['uptime_start'][0]:.2f} → "
          f"{result['uptime_end'][0]:.2f}\n")
    print("| run | wall s (min / median / max) | CPU s driver + workers (median) | records | equal |")
    print("|---|---:|---:|---:|---|")
    for label in ["one process", *[int(w) for w in opts.workers.split(",")]]:
        rows = [r for r in result["runs"] if r["run"] == label]
        cpu = statistics.median(r["cpu_driver_s"] + r["cpu_workers_s"] for r in rows)
        eq = rows[0].get("equal_to_one_process", "reference")
        print(f"| {label} | {_mmm([r['wall_s'] for r in rows])} | {cpu:.2f} | {rows[0]['records']:,} | {eq} |")
    if "per_partition" in result:
        print("\n| district | houses | records | wall s (CPU s) | input MB | answer MB | peak MB |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in result["per_partition"]:
            print(f"| {r['partition']} | {r['houses']:,} | {r['records']:,} | {r['wall_s']} ({r['cpu_s']}) | "
                  f"{r['input_mb']} | {r['output_mb']:.2f} | {r['peak_mb']:.0f} |")


if __name__ == "__main__":
    main()
