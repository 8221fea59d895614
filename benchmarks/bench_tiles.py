"""Map layers and tiles: our tile / feature server vs tipg on the same PostGIS tables.

Run:  .venv/bin/python benchmarks/bench_tiles.py [--passes 3] [--clients 8] [--json bench-output/tiles.json]

Both servers run here, on loopback, one uvicorn process each, against the same database (DATABASE_URL,
or a throw-away embedded cluster with the demo loaded). The client is the same for both: 8 threads
with keep-alive connections pulling from one fixed list of requests; every pass is bounded (a fixed
number of requests) and the servers are stopped at the end.

Tiles: every WebMercatorQuad tile of z12–z16 over the demo area (data README bbox) for the layers
building, road and poi (same property columns requested from tipg; tipg's MVT buffer set to ours, 64).
Before timing, the feature keys of every tile are compared: tipg's features must equal ours minus the
features ours adds from the 64-unit buffer ring (we select rows meeting tile + buffer so symbols near a
tile edge are not cut; tipg selects rows meeting the tile itself).

Configurations of ours:
- same-content, no cache: product code with per-zoom thinning switched off, tile cache off: pure
  rendering, the same features as tipg (the fair like-for-like comparison);
- same-content, cold cache: cache cleared before each pass (each tile rendered and stored);
- same-content, warm cache: what a deployed server does for tiles already viewed;
- product (thinning on), warm cache.
tipg has no tile cache; it gets one warm-up pass (as do we) so PostgreSQL's buffers are warm.

Items: GeoJSON pages of 100 features (limit/offset) of the same layers; ids compared first.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEMO_BBOX = (121.48023615, 31.22643042, 121.52084656, 31.25095121)
ZOOMS = range(12, 17)
LAYERS = {  # our layer id -> (table, property columns asked of tipg, key of a feature)
    "building": ("building", ["osm_id", "name", "kind", "kind_detail", "height_m", "floors", "area_m2",
                              "households_est", "addr_street", "addr_housenumber"], ("osm_id",)),
    "road": ("road", ["osm_id", "name", "name_en", "kind", "oneway"], ("osm_id",)),
    "poi": ("poi", ["osm_id", "kind", "name"], ("osm_id", "kind")),
}
PAGE = 100


# ---------------------------------------------------------------- servers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_ours(port: int, thinning: bool, cache: bool, db_url: str) -> None:
    """Server process entry: our app (optionally without per-zoom thinning and zoom limits, or cache)."""
    import dataclasses

    import uvicorn

    from layers import registry
    from layers.registry import Thinning

    if not thinning:
        for layer_id, layer in list(registry._BY_ID.items()):
            registry._BY_ID[layer_id] = dataclasses.replace(layer, thinning=Thinning(full_zoom=0), min_zoom=0)
    from gis_api.app import create_app

    app = create_app(db_url=db_url)
    app.state.tile_cache = cache
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class Server:
    def __init__(self, name: str, cmd: list[str], env: dict, port: int, ready_path: str):
        self.name, self.port = name, port
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                status, _ = get(self.base + ready_path)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_ours(db_url: str, thinning: bool, cache: bool) -> Server:
    port = free_port()
    cmd = [sys.executable, __file__, "--serve-ours", str(port), "--db", db_url]
    if not thinning:
        cmd.append("--no-thinning")
    if not cache:
        cmd.append("--no-cache")
    return Server(f"ours(thinning={thinning},cache={cache})", cmd, {}, port, "/health")


def start_tipg(db_url: str) -> Server:
    port = free_port()
    env = {"DATABASE_URL": db_url, "TIPG_TILE_BUFFER": "64", "TIPG_DB_SCHEMAS": '["public"]'}
    cmd = [sys.executable, "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--no-access-log"]
    return Server("tipg", cmd, env, port, "/collections")


# ---------------------------------------------------------------- client

def get(url: str, conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    own = conn is None
    conn = conn or http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("GET", parts.path + ("?" + parts.query if parts.query else ""))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        if own:
            conn.close()


def run_pass(base: str, paths: list[str], clients: int) -> dict:
    """All paths once, by `clients` keep-alive threads; latency per request, wall time of the pass."""
    work: queue.Queue = queue.Queue()
    for p in paths:
        work.put(p)
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    host = urlsplit(base)

    def worker():
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        mine = []
        while True:
            try:
                p = work.get_nowait()
            except queue.Empty:
                break
            t0 = time.perf_counter()
            try:
                conn.request("GET", p)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException) as exc:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
                p = f"{p}: {exc}"
            mine.append(time.perf_counter() - t0)
            if not ok:
                with lock:
                    errors.append(p)
        conn.close()
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[:3]}")
    return {"n": len(paths), "wall_s": wall, "lat": lat}


def summarize(passes: list[dict], units_per_pass: int | None = None) -> dict:
    lat = sorted(x for p in passes for x in p["lat"])
    n = sum(p["n"] for p in passes)
    wall = sum(p["wall_s"] for p in passes)
    out = {"requests": n, "per_s": n / wall, "p50_ms": 1000 * lat[len(lat) // 2],
           "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], "mean_ms": 1000 * statistics.mean(lat)}
    if units_per_pass is not None:
        out["items_per_s"] = units_per_pass * len(passes) / wall
    return out


# ---------------------------------------------------------------- workload

def tile_list():
    from tiles.tms import tiles_for_bbox

    return [t for z in ZOOMS for t in tiles_for_bbox(DEMO_BBOX, z)]


def our_tile_path(layer: str, t) -> str:
    return f"/collections/{layer}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"


def tipg_tile_path(layer: str, t) -> str:
    table, props, _ = LAYERS[layer]
    return (f"/collections/public.{table}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
            f"?geom-column=geom&properties={','.join(props)}")


def _bbox(feature):
    xs, ys = [], []

    def walk(c):
        if c and isinstance(c[0], (int, float)):
            xs.append(c[0])
            ys.append(c[1])
        else:
            for x in c:
                walk(x)

    walk(feature["geometry"]["coordinates"])
    return (min(xs), min(ys), max(xs), max(ys)) if xs else None


def _sub_pixel(feature) -> bool:
    """Smaller than one screen pixel (16 MVT units of a 256-pixel tile) both ways: invisible."""
    b = _bbox(feature)
    return b is not None and feature["geometry"]["type"] != "Point" and b[2] - b[0] < 16 and b[3] - b[1] < 16


def _meets_tile(feature, strict: bool) -> bool:
    """Does the decoded (tile-unit) geometry's bbox meet the tile itself (0…4096), not only the buffer?
    Not strict: touching the edge counts (a row just outside snaps onto it, as one just inside may)."""
    from shapely.geometry import box, shape

    tile = box(0, 0, 4096, 4096)
    g = shape(feature["geometry"])
    if not g.is_valid:
        g = g.buffer(0) if g.geom_type.endswith("Polygon") else g
    if not g.intersects(tile):
        return False
    return not (strict and g.touches(tile))


def check_same_tiles(ours: Server, tipg: Server, tiles) -> dict:
    import mapbox_vector_tile

    report = {}
    for layer, (_table, _props, key) in LAYERS.items():
        n_ours = n_tipg = n_buffer = n_sub_pixel = 0
        for t in tiles:
            s1, a = get(ours.base + our_tile_path(layer, t))
            s2, b = get(tipg.base + tipg_tile_path(layer, t))
            assert s1 == 200 and s2 in (200, 204), (layer, t, s1, s2)
            fa = mapbox_vector_tile.decode(a).get(layer, {"features": []})["features"] if a else []
            db = mapbox_vector_tile.decode(b) if b else {}
            fb = next(iter(db.values()))["features"] if db else []
            ka = {tuple(f["properties"].get(k) for k in key) for f in fa if _meets_tile(f, strict=True)}
            ka_edge = {tuple(f["properties"].get(k) for k in key) for f in fa if _meets_tile(f, strict=False)}
            kb = {tuple(f["properties"].get(k) for k in key) for f in fb}
            # ours simplifies to the MVT grid first, so a footprint smaller than a pixel may collapse
            # and be dropped where tipg keeps a sub-pixel speck: allowed, counted, nothing else is
            specks = {tuple(f["properties"].get(k) for k in key) for f in fb if _sub_pixel(f)}
            n_sub_pixel += len((kb - ka_edge) & specks)
            kb -= (kb - ka_edge) & specks
            if not (ka <= kb <= ka_edge):
                raise AssertionError(f"{layer} {t}: features differ: only ours {sorted(ka - kb)[:5]}, "
                                     f"only tipg {sorted(kb - ka)[:5]}")
            n_ours += len(fa)
            n_tipg += len(fb)
            n_buffer += len(fa) - len(kb)
        report[layer] = {"tiles": len(tiles), "features_tipg": n_tipg, "features_ours": n_ours,
                         "ours_extra_from_buffer_ring": n_buffer, "tipg_sub_pixel_specks_ours_drops": n_sub_pixel}
    return report


def item_pages(db_url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    from gis_api.db import sqlalchemy_url

    eng = create_engine(sqlalchemy_url(db_url))
    with eng.connect() as conn:
        counts = {layer: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                  for layer, (table, _, _) in LAYERS.items()}
    eng.dispose()
    return counts


def our_items_paths(counts):
    return [f"/collections/{layer}/items?limit={PAGE}&offset={off}"
            for layer, n in counts.items() for off in range(0, n, PAGE)]


def tipg_items_paths(counts):
    return [f"/collections/public.{LAYERS[layer][0]}/items?limit={PAGE}&offset={off}"
            f"&properties={','.join(LAYERS[layer][1])}&sortby=id"
            for layer, n in counts.items() for off in range(0, n, PAGE)]


def check_same_items(ours: Server, tipg: Server, counts) -> None:
    for layer, n in counts.items():
        off = max(0, (n // 2) // PAGE * PAGE)
        _, a = get(f"{ours.base}/collections/{layer}/items?limit={PAGE}&offset={off}")
        _, b = get(f"{tipg.base}/collections/public.{LAYERS[layer][0]}/items?limit={PAGE}&offset={off}"
                   f"&properties={','.join(LAYERS[layer][1])}&sortby=id")
        ia = [f["id"] for f in json.loads(a)["features"]]
        ib = [int(f["id"]) for f in json.loads(b)["features"]]
        assert ia == ib, (layer, ia[:5], ib[:5])


def clear_cache(db_url: str) -> None:
    import psycopg

    with psycopg.connect(db_url) as c:
        c.execute("DELETE FROM tile_cache")


# ---------------------------------------------------------------- main

def prepare_db(args):
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"], None
    from gis_api.db import get_engine
    from gis_api.demo import load_demo
    from gis_api.embedded_pg import EmbeddedPostgres
    from gis_api.migrate import upgrade
    from gis_api.settings import get_settings

    root = Path(tempfile.mkdtemp(prefix="shequ-bench-pg-"))
    cluster = EmbeddedPostgres(root, free_port(), fast=True)
    cluster.start()
    url = cluster.url()
    upgrade(url)
    load_demo(get_engine(url), get_settings().shared_data_dir)
    get_engine(url).dispose()
    return url, (cluster, root)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--json", type=Path, default=ROOT / "bench-output" / "tiles.json")
    ap.add_argument("--serve-ours", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--no-thinning", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-cache", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_ours:
        serve_ours(args.serve_ours, not args.no_thinning, not args.no_cache, args.db)
        return

    db_url, owned = prepare_db(args)
    tiles = tile_list()
    results: dict = {"tiles_per_pass": len(tiles) * len(LAYERS), "zooms": list(ZOOMS), "clients": args.clients,
                     "passes": args.passes}
    servers: list[Server] = []
    try:
        counts = item_pages(db_url)
        results["item_counts"] = counts
        tile_paths_ours = [our_tile_path(layer, t) for t in tiles for layer in LAYERS]
        tile_paths_tipg = [tipg_tile_path(layer, t) for t in tiles for layer in LAYERS]
        item_units = sum(counts.values())

        tipg = start_tipg(db_url)
        servers.append(tipg)
        same = start_ours(db_url, thinning=False, cache=False)
        servers.append(same)
        print(f"checking features of {len(tiles)} tiles × {len(LAYERS)} layers …", flush=True)
        results["same_features"] = check_same_tiles(same, tipg, tiles)
        check_same_items(same, tipg, counts)

        def measure(server: Server, paths, cold_db: str | None = None, units=None):
            run_pass(server.base, paths, args.clients)  # warm-up (fills our cache when it is on)
            passes = []
            for _ in range(args.passes):
                if cold_db:
                    clear_cache(cold_db)
                passes.append(run_pass(server.base, paths, args.clients))
            return summarize(passes, units)

        print("tipg …", flush=True)
        results["tipg_tiles"] = measure(tipg, tile_paths_tipg)
        results["tipg_items"] = measure(tipg, tipg_items_paths(counts), units=item_units)
        tipg.stop()
        print("ours, same content, no cache …", flush=True)
        results["ours_same_nocache_tiles"] = measure(same, tile_paths_ours)
        results["ours_items"] = measure(same, our_items_paths(counts), units=item_units)
        same.stop()

        cached = start_ours(db_url, thinning=False, cache=True)
        servers.append(cached)
        print("ours, same content, cold / warm cache …", flush=True)
        results["ours_same_cold_tiles"] = measure(cached, tile_paths_ours, cold_db=db_url)
        clear_cache(db_url)
        results["ours_same_warm_tiles"] = measure(cached, tile_paths_ours)
        cached.stop()

        product = start_ours(db_url, thinning=True, cache=True)
        servers.append(product)
        print("ours, product (thinning), warm cache …", flush=True)
        clear_cache(db_url)
        results["ours_product_warm_tiles"] = measure(product, tile_paths_ours)
        product.stop()
    finally:
        for s in servers:
            s.stop()
        if owned:
            cluster, root = owned
            cluster.stop()
            shutil.rmtree(root, ignore_errors=True)

    t = results["tipg_tiles"]
    rows = [("tipg 1.6 (no cache)", t), ("ours, same features, no cache", results["ours_same_nocache_tiles"]),
            ("ours, same features, cold cache", results["ours_same_cold_tiles"]),
            ("ours, same features, warm cache", results["ours_same_warm_tiles"]),
            ("ours, product thinning, warm cache", results["ours_product_warm_tiles"])]
    print(f"\nTiles: {results['tiles_per_pass']} tiles per pass (z12–z16 × building, road, poi), "
          f"{args.clients} clients, {args.passes} passes")
    print("| server | tiles/s | × tipg | p50 ms | p99 ms |\n|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['per_s']:.0f} | {r['per_s'] / t['per_s']:.2f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")
    ti, oi = results["tipg_items"], results["ours_items"]
    print("\n| server | GeoJSON items/s | pages/s | × tipg | p50 ms | p99 ms |\n|---|---|---|---|---|---|")
    for name, r in (("tipg", ti), ("ours", oi)):
        print(f"| {name} | {r['items_per_s']:.0f} | {r['per_s']:.0f} | {r['items_per_s'] / ti['items_per_s']:.2f} | "
              f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")
    print("\nsame features:", json.dumps(results["same_features"], ensure_ascii=False))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(f"raw results: {args.json}")


if __name__ == "__main__":
    main()
