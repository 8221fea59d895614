"""Issue 14: how much of the geocoder index N API workers share — forked from one loaded parent (``shequ serve
--workers N``, gunicorn + uvicorn workers, gis_api/serving.py) against the spawned workers of before
(uvicorn's own supervisor: ``python -m uvicorn gis_api.app:create_app --factory --workers N``, each worker
loading its own index from the same snapshot).

    export SHEQU_PG_DIR=var/pg-synth-1000000 SHEQU_PG_PORT=54352
    shequ db start && shequ migrate && shequ demo load && shequ demo synth -n 1000000 --seed 1
    DATABASE_URL=$(shequ db url) .venv/bin/python benchmarks/bench_shared_index.py --workers 1 2 4 \\
        --modes fork spawn --geocodes 20000 --out bench-output/shared-index-1e6.json

For each mode × worker count, a server of its own on a free port (the same environment ``shequ serve`` sets:
the index warmed at start, from the signed snapshot in ``--data-dir``; a first run writes it). Memory of
every process of the server's tree from ``/proc/<pid>/smaps_rollup`` (`gis_api.serving.process_memory`):
RSS, PSS (each shared page divided among its sharers: the PSS of the tree sums to what it really holds) and
USS (pages of that process alone), at three moments:

1. ``start``: every worker has answered one geocode (so each has its index: a spawned worker loads its own);
2. ``traffic``: after ``--geocodes`` geocodes of varied addresses — the formatted text and the noisy forms
   (`address_registry.noisy`) of ``--sample`` addresses drawn at random from the registry — from 8 client
   threads, a new connection every 50 requests (the connections spread over the workers);
3. ``deltas``: after ``--roads`` new roads with 5 house numbers each are written to the registry (one
   transaction per road) and every worker geocodes the last one (each applied the delta to its own copy).

The roads written are named 共享索引基准路<run>-<i>; they are deleted at the end (``--keep-roads`` keeps them,
``--cleanup`` only deletes them; the next start then rebuilds the index, the row count having fallen). With
no ``DATABASE_URL`` the checkout's embedded cluster is used (``make bench``: the demo registry).
Rows go to ``--out`` (JSON); a Markdown table to stdout, with ``os.getloadavg()`` before each run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gis_api.serving import children_of, is_alive, process_memory  # noqa: E402

ROAD_PREFIX = "共享索引基准路"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree(pid: int) -> list[int]:
    """``pid`` and every live descendant."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if is_alive(p):
            out.append(p)
            todo.extend(children_of(p))
    return out


def _get(port: int, path: str, timeout: float = 300) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.getheader("x-shequ-worker") or "", resp.read()
    finally:
        conn.close()


def queries(url: str, sample: int, seed: int) -> list[str]:
    """The formatted text and the noisy forms of ``sample`` random current addresses (seeded)."""
    from sqlalchemy import text

    from address_registry.noisy import noisy_queries
    from address_registry.store.reading import current
    from gis_api.db import get_engine

    engine = get_engine(url)
    with engine.connect() as conn:
        conn.execute(text("SELECT setseed(:s)"), {"s": (seed % 1000) / 1000})
        codes = conn.execute(text("""SELECT code FROM standard_address TABLESAMPLE BERNOULLI (5)
            WHERE valid_to IS NULL AND status = 'active' AND level <> 'road' ORDER BY random() LIMIT :n"""),
            {"n": sample}).scalars().all()
        records = [r for r in (current(conn, c) for c in codes) if r is not None]
        roads = conn.execute(text("""SELECT DISTINCT components->>'road' FROM standard_address
            WHERE level = 'road' AND valid_to IS NULL""")).scalars().all()
    texts = [r.formatted for r in records]
    texts += [q for _, q, _ in noisy_queries(records, seed=seed, road_names=[r for r in roads if r])]
    random.Random(seed).shuffle(texts)
    return texts


def start(mode: str, workers: int, port: int, url: str, data_dir: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "SHEQU_DATA_DIR": str(data_dir), "SHEQU_PORT": str(port),
           # what `shequ serve` sets: each process warms its index at start, from the snapshot when valid
           "SHEQU_WARM_GEOCODER": "1", "SHEQU_GEOCODER_SNAPSHOTS": "1"}
    if mode == "fork":
        cmd = [sys.executable, "-m", "gis_api.cli", "serve", "--workers", str(workers)]
    else:  # before: uvicorn's supervisor spawns N fresh interpreters, each makes the app and loads its index
        cmd = [sys.executable, "-m", "uvicorn", "gis_api.app:create_app", "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def worker_pids(server: subprocess.Popen, mode: str, workers: int) -> list[int]:
    """The serving processes: the server itself for one worker in fork mode (`shequ serve --workers 1` is
    one uvicorn process), else its children (gunicorn's arbiter / uvicorn's supervisor → workers). The
    snapshot writer (a short-lived child of whoever built) and spawn's resource tracker are left out."""
    if mode == "fork" and workers == 1:
        return [server.pid]
    kids = []
    for p in children_of(server.pid):
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"resource_tracker" in cmd:
            continue
        kids.append(p)
    return kids


def snapshot(server: subprocess.Popen, workers: list[int]) -> dict[str, Any]:
    """Memory (MB) of every process of the server's tree, the workers' and the tree's totals."""
    procs = {}
    for pid in _tree(server.pid):
        try:
            mem = process_memory(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        procs[pid] = {k: round(v / 1024, 1) for k, v in mem.items()}
    ws = [procs[p] for p in workers if p in procs]
    return {
        "processes": {str(k): v for k, v in procs.items()},
        "workers_rss": [w["rss"] for w in ws], "workers_pss": [w["pss"] for w in ws],
        "workers_uss": [w["uss"] for w in ws],
        "total_pss": round(sum(v["pss"] for v in procs.values()), 1),
        "total_uss": round(sum(v["uss"] for v in procs.values()), 1),
        "total_rss": round(sum(v["rss"] for v in procs.values()), 1),
    }


def until_every_worker(port: int, text: str, workers: set[str], timeout: float, check=None) -> dict[str, float]:
    """Geocode ``text`` on new connections until every worker answered (and ``check(body)`` holds):
    {worker pid: seconds}."""
    t0, seen = time.monotonic(), {}
    while set(seen) != workers:
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"not every worker answered {text!r} in {timeout} s: {seen} of {workers}")
        status, pid, body = _get(port, "/geocode?" + urlencode({"q": text, "limit": 1}))
        if status == 200 and (check is None or check(body)):
            seen.setdefault(pid, round(time.monotonic() - t0, 2))
    return seen


def traffic(port: int, texts: list[str], n: int, clients: int = 8, per_connection: int = 50) -> dict[str, Any]:
    """``n`` geocodes of ``texts`` (cycled) from ``clients`` threads; answers per worker, errors, seconds."""
    paths = ["/geocode?" + urlencode({"q": texts[i % len(texts)], "limit": 3}) for i in range(n)]
    by_worker: Counter[str] = Counter()
    errors: Counter[Any] = Counter()
    lock = threading.Lock()

    def client(part: list[str]) -> None:
        local, bad = Counter(), Counter()
        for i in range(0, len(part), per_connection):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            try:
                for path in part[i:i + per_connection]:
                    for attempt in range(3):
                        try:
                            conn.request("GET", path)
                            resp = conn.getresponse()
                            resp.read()
                            break
                        except (ConnectionError, http.client.RemoteDisconnected):
                            # a keep-alive connection closed by a worker that is being replaced
                            # (SHEQU_WORKER_MAX_REQUESTS): a GET is retried on a new one, as HTTP clients do
                            bad["reconnects"] += 1
                            conn.close()
                            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                            if attempt == 2:
                                raise
                    local[resp.getheader("x-shequ-worker") or "?"] += 1
                    if resp.status != 200:
                        bad[resp.status] += 1
            finally:
                conn.close()
        with lock:
            by_worker.update(local)
            errors.update(bad)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(paths[k::clients],)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"geocodes": n, "seconds": round(time.perf_counter() - t0, 1), "by_worker": dict(by_worker),
            "errors": dict(errors)}


def write_roads(url: str, run: str, roads: int) -> str:
    """``roads`` new roads in 黄浦区, 5 house numbers each, one transaction per road; the last road's name."""
    from address_registry.lifecycle import create_address
    from gis_api.db import get_engine

    engine = get_engine(url)
    name = ""
    for i in range(roads):
        name = f"{ROAD_PREFIX}{run}-{i}"
        lon, lat = 121.47 + 0.0004 * i, 31.225
        with engine.begin() as conn:
            road = create_address(conn, {"level": "road", "parent_code": "310101", "components": {"road": name},
                                         "lon": lon, "lat": lat}, "bench_shared_index", "共享索引基准 benchmark")
            for h in range(1, 6):
                create_address(conn, {"level": "house_number", "parent_code": road.code,
                                      "components": {"house_number": f"{2 * h - 1}号"},
                                      "lon": lon + 0.00005 * h, "lat": lat}, "bench_shared_index",
                               "共享索引基准 benchmark")
    return name


def cleanup(url: str) -> int:
    from sqlalchemy import text

    from gis_api.db import get_engine

    with get_engine(url).begin() as conn:
        return conn.execute(text("""DELETE FROM standard_address WHERE changed_by = 'bench_shared_index'""")).rowcount


def run_one(args, mode: str, workers: int, texts: list[str], run: str) -> dict[str, Any]:
    port = _free_port()
    load = os.getloadavg()
    t0 = time.monotonic()
    server = start(mode, workers, port, args.url, args.data_dir, args.log)
    try:
        up = False
        while not up:
            if server.poll() is not None:
                raise RuntimeError(f"server exited {server.returncode}: see {args.log}")
            if time.monotonic() - t0 > args.timeout:
                raise RuntimeError("server not up")
            try:
                up = _get(port, "/health", timeout=5)[0] == 200
            except OSError:
                time.sleep(0.3)
        pids = worker_pids(server, mode, workers)
        # exactly the workers: a first build's snapshot writer (a forked child of the arbiter) gone
        while len(pids) != workers:
            if time.monotonic() - t0 > args.timeout:
                raise RuntimeError(f"workers {pids}, expected {workers}")
            time.sleep(0.2)
            pids = worker_pids(server, mode, workers)
        # every worker answers a geocode (a spawned worker waits for its own index; a forked one has it)
        ready = until_every_worker(port, texts[0], {str(p) for p in pids}, args.timeout)
        ready_s = round(time.monotonic() - t0, 1)
        time.sleep(1)
        row: dict[str, Any] = {"mode": mode, "workers": workers, "label": args.label,
                               "max_requests": os.environ.get("SHEQU_WORKER_MAX_REQUESTS", "0"),
                               "load_before": [round(x, 2) for x in load],
                               "ready_s": ready_s, "first_answers": ready, "server_pid": server.pid,
                               "worker_pids": pids}
        row["start"] = snapshot(server, pids)
        row["traffic_run"] = traffic(port, texts, args.geocodes)
        time.sleep(1)
        # the same workers, unless SHEQU_WORKER_MAX_REQUESTS replaced some by new forks meanwhile
        pids = worker_pids(server, mode, workers)
        row["traffic"] = snapshot(server, pids)
        row["worker_pids_after_traffic"] = pids
        t1 = time.monotonic()
        last = write_roads(args.url, run, args.roads)
        row["roads_written_s"] = round(time.monotonic() - t1, 1)
        row["deltas_seen_by"] = until_every_worker(
            port, f"上海市黄浦区{last}9号", {str(p) for p in pids}, 120,
            check=lambda body: last in body.decode())
        time.sleep(1)
        row["deltas"] = snapshot(server, pids)
        row["load_after"] = [round(x, 2) for x in os.getloadavg()]
        return row
    finally:
        stop(server)


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| mode | workers | moment | RSS per worker MB | PSS per worker MB | USS per worker MB | total PSS MB "
            "| total USS MB | load |\n|---|---:|---|---:|---:|---:|---:|---:|---|")
    out = [head]
    for r in rows:
        for moment in ("start", "traffic", "deltas"):
            m = r[moment]

            def span(xs: list[float]) -> str:
                return f"{min(xs):,.0f}" if min(xs) == max(xs) else f"{min(xs):,.0f}–{max(xs):,.0f}"
            out.append(f"| {r['mode']}{' ' + r['label'] if r.get('label') else ''} | {r['workers']} | {moment} | {span(m['workers_rss'])} | "
                       f"{span(m['workers_pss'])} | {span(m['workers_uss'])} | {m['total_pss']:,.0f} | "
                       f"{m['total_uss']:,.0f} | {r['load_before'][0]} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get("DATABASE_URL"),
                    help="the database (default DATABASE_URL, else the checkout's embedded cluster: `make bench`)")
    ap.add_argument("--modes", nargs="+", default=["fork", "spawn"], choices=["fork", "spawn"])
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2, 4])
    ap.add_argument("--geocodes", type=int, default=20000)
    ap.add_argument("--sample", type=int, default=3000)
    ap.add_argument("--roads", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench-shared-index")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-output" / "shared-index.json")
    ap.add_argument("--label", default="", help="a name for these rows (e.g. the SHEQU_WORKER_MAX_REQUESTS set)")
    ap.add_argument("--cleanup", action="store_true", help="delete the roads this benchmark wrote, then exit")
    ap.add_argument("--keep-roads", action="store_true", help="leave the roads written (default: deleted at the end)")
    args = ap.parse_args()
    if not args.url:
        from gis_api.db import database_url

        args.url = database_url()
    if args.cleanup:
        print(f"deleted {cleanup(args.url)} rows")
        return
    args.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.log = args.out.with_suffix(".log")
    texts = queries(args.url, args.sample, args.seed)
    print(f"{len(texts)} query texts", file=sys.stderr)
    if not texts:
        print("no addresses in this database's registry (`shequ demo all`, or `shequ demo synth`): nothing to measure")
        return
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    stamp = time.strftime("%H%M%S")
    for mode in args.modes:
        for n in args.workers:
            if mode == "spawn" and n == 1:
                continue  # one process either way: `shequ serve --workers 1` (fork mode's row)
            print(f"== {mode} × {n} (load {os.getloadavg()[0]:.2f})", file=sys.stderr)
            row = run_one(args, mode, n, texts, f"{stamp}{mode[0]}{n}")
            rows = [r for r in rows if (r["mode"], r["workers"], r.get("label", "")) != (mode, n, args.label)] + [row]
            args.out.write_text(json.dumps(rows, ensure_ascii=False, indent=1))
            print(table([row]), file=sys.stderr)
    if not args.keep_roads:
        print(f"deleted the {cleanup(args.url)} address rows written", file=sys.stderr)
    print(table(sorted(rows, key=lambda r: (r["mode"], r.get("label", ""), r["workers"]))))
    print("load averages:", {f"{r['mode']}{r.get('label', '')}×{r['workers']}": (r["load_before"], r["load_after"])
                            for r in rows})
    print("median worker PSS after traffic:",
          {f"{r['mode']}{r.get('label', '')}×{r['workers']}": statistics.median(r["traffic"]["workers_pss"])
           for r in rows})


if __name__ == "__main__":
    main()
