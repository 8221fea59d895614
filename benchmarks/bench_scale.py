"""Scale benchmark (issue 14): the in-memory geocoder as the registry grows, on synthetic cities.

    .venv/bin/python benchmarks/bench_scale.py                       # demo size (8,371), 10^5; seeds 1 2 3
    .venv/bin/python benchmarks/bench_scale.py --sizes 8371 100000 1000000 --seeds 1   # and 10^6

For each size and seed, three fresh processes (so that resident memory is the process's own):
1. `address_registry.synth.grow_city` grows the city (`shequ demo synth`, no database) and pickles its
   records, aliases and road lines — what an API process loads from the registry;
2. a process that loads that pickle (resident memory *before*), builds `Geocoder` (time, resident memory
   *after*; the difference is the index over the records), then geocodes the formatted text of a sample of
   addresses and their noisy forms (`address_registry.noisy`) for a few seconds on one core (geocodes/s),
   then applies single-address writes with `Geocoder.update` — a new house number on a road, the
   retirement of a house number with everything under it — and times each (the incremental path a
   registry write takes, `address_registry.geocoder_cache`), against the whole rebuild it replaces.
Figures: bench-output/scale.json and a Markdown table on stdout (docs/benchmarks.md, docs/scaling.md).

    DATABASE_URL=… .venv/bin/python benchmarks/bench_scale.py --database   # a database holding a synthetic city

`--database` measures the registry as an API process meets it (`shequ demo synth -n N` written first, into a
database of its own): the stamp query every cache check runs, the first (whole) load of the geocoder cache,
one address created through the registry service and seen by the cache as a delta (then retired), and the
database size.
The load of the machine (`os.getloadavg`) is printed with them.

    DATABASE_URL=… .venv/bin/python benchmarks/bench_scale.py --database --load whole lean snapshot workers2

`--load` measures how an API worker's geocoder becomes ready, each in a fresh process (time to ready,
resident memory after, peak): `whole` = the load before issue 14's change (whole rows through
`store.all_current`, then the build), `lean` = `GeocoderCache` with a snapshot folder and none in it yet (lean
streamed rows, build, index published, snapshot written by a forked child: `ready_s` stops at the publish;
`snapshot_write_s` is the child's time from fork to exit, `writer_private_mb` the most memory it held of
its own — pages copied on write — sampled every 0.2 s, `writer_rss_mb` its peak resident size), `snapshot` = the next worker (reads the snapshot, no build),
`workers2` = two workers starting at once with the snapshot present (each one's time and memory).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUERY_SECONDS = 4.0
UPDATES = 15


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _private_mb(pid: int) -> float:
    """The memory process ``pid`` holds of its own (Private_Clean + Private_Dirty), MB; 0 when it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0
    kb = sum(int(line.split()[1]) for line in text.splitlines() if line.startswith(("Private_Clean", "Private_Dirty")))
    return kb / 1024


def _peak_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def grow(size: int, seed: int, out: Path) -> dict:
    """Step 1: the synthetic city, pickled."""
    from address_registry import synth

    shared = Path(os.environ.get("SHEQU_SHARED_DATA_DIR", ROOT.parent / "shared" / "data"))
    t0 = time.perf_counter()
    inputs = synth.inputs_from_files(shared)
    city = synth.grow_city(inputs["roads"], inputs["districts"], size, seed=seed, admin_names=inputs["admin_names"])
    seconds = time.perf_counter() - t0
    with open(out, "wb") as fh:
        pickle.dump({"records": city.records, "aliases": city.aliases,
                     "road_lines": synth.road_lines(inputs["roads"])}, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return {"addresses": len(city.records), "buildings": len(city.buildings), "households": city.households,
            "grow_s": round(seconds, 2), "grow_peak_mb": round(_peak_mb(), 1)}


def measure(path: Path, seed: int) -> dict:
    """Step 2: geocoder build, memory, throughput and single-address updates."""
    from address_registry.geocoder import Geocoder
    from address_registry.noisy import noisy_queries

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    with open(path, "rb") as fh:
        data = pickle.load(fh)
    rss_records = _rss_mb()
    t0 = time.perf_counter()
    g = Geocoder(data["records"], data["aliases"], road_lines=data["road_lines"])
    build_s = time.perf_counter() - t0
    rss_index = _rss_mb()
    rng = random.Random(seed)
    records = data["records"]
    sample = rng.sample(records, min(3000, len(records)))
    queries = [r.formatted for r in sample[:1500]]
    queries += [q for _f, q, _c in noisy_queries(sample[1500:], data["aliases"], seed=seed)]
    rng.shuffle(queries)
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < QUERY_SECONDS:
        g.geocode(queries[done % len(queries)], 5)
        done += 1
    per_s = done / (time.perf_counter() - t0)
    create_s, retire_s = _updates(g, records, rng)
    return {
        "build_s": round(build_s, 3),
        "rss_records_mb": round(rss_records, 1),
        "rss_with_index_mb": round(rss_index, 1),
        "index_mb": round(rss_index - rss_records, 1),
        "geocodes_per_s": round(per_s),
        "update_create_ms": [round(1000 * x, 2) for x in create_s],
        "update_retire_ms": [round(1000 * x, 2) for x in retire_s],
    }


def _updates(g, records, rng) -> tuple[list[float], list[float]]:
    """Time single-address writes applied with `Geocoder.update`: a new house number, a retired house with
    its subtree (each undone after, so every write starts from the same registry)."""
    by_parent: dict[str, list] = {}
    for r in records:
        if r.parent_code:
            by_parent.setdefault(r.parent_code, []).append(r)
    houses = [r for r in records if r.level == "house_number" and r.lon is not None]
    create, retire = [], []
    for k, house in enumerate(rng.sample(houses, min(UPDATES, len(houses)))):
        new = dataclasses.replace(copy.deepcopy(house), code=house.code[:-6] + f"9{k:04d}0",
                                  components={**house.components, "house_number": f"{9001 + 2 * k}号"},
                                  lon=house.lon + 0.0002, building_id=None)
        t0 = time.perf_counter()
        g.update([new])
        create.append(time.perf_counter() - t0)
        g.update([], removed=[new.code])
        subtree, stack = [house], [house.code]
        while stack:
            for child in by_parent.get(stack.pop(), ()):
                subtree.append(child)
                stack.append(child.code)
        t0 = time.perf_counter()
        g.update([dataclasses.replace(r, status="retired") for r in subtree])
        retire.append(time.perf_counter() - t0)
        g.update(subtree)
    return create, retire


def database() -> dict:
    """The registry in PostGIS: stamp query, whole load, one write applied as a delta, database size."""
    from sqlalchemy import text

    from address_registry import geocoder_cache, service, store
    from gis_api.db import get_engine

    engine = get_engine()
    who = ("bench_scale", "基准测试 benchmark write")
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM standard_address WHERE valid_to IS NULL")).scalar_one()
        stamps, counted = [], []
        for _ in range(20):
            t0 = time.perf_counter()
            store.stamp(conn)
            stamps.append(time.perf_counter() - t0)
            # what the row count part of the stamp cost before the trigger-kept counter (0017_scale_row_counter)
            t0 = time.perf_counter()
            conn.execute(text("SELECT count(*) FROM standard_address")).scalar_one()
            counted.append(time.perf_counter() - t0)
        size_mb = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one() / 2**20
        house = conn.execute(text("""SELECT parent_code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM standard_address
            WHERE valid_to IS NULL AND level = 'house_number' AND geom IS NOT NULL ORDER BY code OFFSET 500 LIMIT 1""")).one()
    cache = geocoder_cache.open_cache(engine, ttl_s=0.0)
    rss0 = _rss_mb()
    cache.get()
    full = dict(cache.last_load)
    rss1 = _rss_mb()
    try:
        t0 = time.perf_counter()
        with engine.begin() as conn:
            made = service.create_address(conn, {"level": "house_number", "parent_code": house.parent_code,
                                                 "components": {"house_number": "9999号"},
                                                 "lon": house.lon, "lat": house.lat}, *who)
        written = time.perf_counter() - t0
        g = cache.get()
        delta = dict(cache.last_load)
        found = g.geocode(made.formatted, 1)[0]["address_code"] == made.code
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM standard_address WHERE changed_by = :w"), {"w": who[0]})
    return {"addresses": n, "stamp_ms_median": round(1000 * statistics.median(stamps), 1),
            "stamp_ms_min_max": [round(1000 * min(stamps), 1), round(1000 * max(stamps), 1)],
            "count_star_ms_min_median_max": [round(1000 * f(counted), 1) for f in (min, statistics.median, max)],
            "full_load_s": round(full["seconds"], 2), "full_load_rss_mb": round(rss1 - rss0, 1),
            "write_ms": round(1000 * written, 1), "delta_ms": round(1000 * delta["seconds"], 1),
            "delta_kind": delta["kind"], "found_after_delta": found, "database_mb": round(size_mb, 1)}


def load_step(mode: str, snapshot_dir: str) -> dict:
    """One worker's first geocoder load in this fresh process: time to ready, resident and peak memory."""
    import resource

    from address_registry import geocoder_cache, store
    from address_registry.geocoder import Geocoder
    from gis_api.db import get_engine

    engine = get_engine()
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    extra: dict = {}
    if mode == "whole":  # the load before the lean records (issue 14): whole rows, then the build
        from address_registry.store import inputs as inputs_mod

        inputs_mod.lean_records = lambda conn: (r for r in store.all_current(conn) if r.status == "active")
        with engine.connect() as conn:
            g = Geocoder(**store.load_geocoder_inputs(conn), parser=geocoder_cache.free_text_parser())
        kind = "whole"
    else:
        cache = geocoder_cache.GeocoderCache(engine, snapshot_dir=snapshot_dir)
        g = cache.get()
        kind = cache.last_load["kind"]
        extra = {k: round(v, 2) for k, v in cache.last_load.items() if k.endswith("_s")}
    ready = time.perf_counter() - t0
    if mode != "whole" and cache.snapshot_writer is not None:  # ready already: now the background write
        writer, private = cache.snapshot_writer, 0.0
        while not writer.wait(0.2):
            private = max(private, _private_mb(writer.pid))
        extra.update(snapshot_write_s=round(writer.seconds or 0, 2), writer_ok=writer.ok,
                     writer_private_mb=round(private), writer_rss_mb=round(writer.max_rss_mb or 0))
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {"mode": mode, "kind": kind, "addresses": len(g), "ready_s": round(ready, 2), "cpu_s": round(cpu, 2),
            **extra,
            "rss_mb": round(_rss_mb()), "rss_added_mb": round(_rss_mb() - rss0), "peak_mb": round(_peak_mb()),
            "geocodes": len(g.geocode_many(["南京东路1号"]))}


def load_modes(modes: list[str]) -> list[dict]:
    """The `--load` modes in order, each in fresh processes, with one snapshot folder for the run."""
    out = []
    with tempfile.TemporaryDirectory(prefix="shequ-geosnap-") as tmp:
        folder = str(Path(tmp) / "geocoder")
        for mode in modes:
            load = os.getloadavg()
            if mode == "workers2":
                procs = [subprocess.Popen([sys.executable, __file__, "--step", "load", "--mode", "snapshot",
                                           "--path", folder], stdout=subprocess.PIPE, text=True) for _ in range(2)]
                rows = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
                for i, row in enumerate(rows):
                    row.update(mode=f"workers2/{i + 1}", load=[round(x, 1) for x in load])
                    out.append(row)
                    print(json.dumps(row), file=sys.stderr)
                continue
            row = _child(["--step", "load", "--mode", mode, "--path", folder])
            row["load"] = [round(x, 1) for x in load]
            out.append(row)
            print(json.dumps(row), file=sys.stderr)
    return out


def _child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[8371, 100_000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--database", action="store_true", help="measure the registry in DATABASE_URL (a synthetic city)")
    ap.add_argument("--load", nargs="+", choices=["whole", "lean", "snapshot", "workers2"],
                    help="with --database: how a worker's geocoder becomes ready (fresh processes)")
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--step", choices=["grow", "measure", "load"], help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step == "load":
        print(json.dumps(load_step(args.mode, args.path)))
        return
    if args.database and args.load:
        results = load_modes(args.load)
        out = ROOT / "bench-output"
        out.mkdir(exist_ok=True)
        (out / "scale-load.json").write_text(json.dumps(results, indent=1))
        print(json.dumps(results, ensure_ascii=False))
        return
    if args.database:
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(json.dumps(database(), ensure_ascii=False))
        return
    if args.step == "grow":
        print(json.dumps(grow(args.size, args.seed, Path(args.path))))
        return
    if args.step == "measure":
        print(json.dumps(measure(Path(args.path), args.seed)))
        return
    load = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="shequ-scale-") as tmp:
        for size in args.sizes:
            for seed in args.seeds:
                path = str(Path(tmp) / f"city-{size}-{seed}.pickle")
                row = {"size": size, "seed": seed}
                row.update(_child(["--step", "grow", "--size", str(size), "--seed", str(seed), "--path", path]))
                row.update(_child(["--step", "measure", "--seed", str(seed), "--path", path]))
                os.unlink(path)
                results.append(row)
                print(json.dumps(row, ensure_ascii=False), file=sys.stderr)
    out = ROOT / "bench-output"
    out.mkdir(exist_ok=True)
    (out / "scale.json").write_text(json.dumps({"load": load, "results": results}, indent=1))
    _table(results, load)


def _mmm(values) -> str:
    values = list(values)
    if len(values) == 1:
        return f"{values[0]:,}"
    return f"{min(values):,} / {statistics.median(values):,} / {max(values):,}"


def _table(results: list[dict], load) -> None:
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores)")
    print("| addresses (target) | seeds | addresses | grow s | geocoder build s | RSS records MB | RSS + index MB "
          "| index MB | geocodes/s (1 core) | update: create ms (median) | update: retire house ms (median) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in sorted({r["size"] for r in results}):
        rows = [r for r in results if r["size"] == size]
        print(
            f"| {size:,} | {len(rows)} | {_mmm(r['addresses'] for r in rows)} | {_mmm(r['grow_s'] for r in rows)} "
            f"| {_mmm(r['build_s'] for r in rows)} | {_mmm(r['rss_records_mb'] for r in rows)} "
            f"| {_mmm(r['rss_with_index_mb'] for r in rows)} | {_mmm(r['index_mb'] for r in rows)} "
            f"| {_mmm(r['geocodes_per_s'] for r in rows)} "
            f"| {_mmm(round(statistics.median(r['update_create_ms']), 2) for r in rows)} "
            f"| {_mmm(round(statistics.median(r['update_retire_ms']), 2) for r in rows)} |"
        )


if __name__ == "__main__":
    main()
