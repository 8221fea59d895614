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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100_000, help="addresses of the synthetic city")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", default="0,1,2", help="0 = the partitions in this process, no Dask")
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("SHEQU_SHARED_DATA", "../shared/data")))
    ap.add_argument("--skip-partitions", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("bench-output/registry-dask.json"))
    opts = ap.parse_args()
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
