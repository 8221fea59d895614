"""Geocoding benchmark: accuracy on noisy forms, in-process throughput, API latency.

    .venv/bin/python benchmarks/bench_geocode.py            # throw-away PostGIS with the demo loaded
    .venv/bin/python benchmarks/bench_geocode.py --accuracy-only   # only the leave-one-out / name figures
                                       # (prints the radius calibration of each fold: address_registry/accuracy.py)
    DATABASE_URL=postgresql+psycopg://… .venv/bin/python benchmarks/bench_geocode.py   # a scratch DB

Steps: build the registry from the real demo data; leave-one-out over the real (osm / import / manual)
house numbers — each held out of the in-memory index with what hangs below it (`Geocoder.held_out`, no
registry rebuild), its address geocoded (full text and road + number only), the distance to its own point
measured; the set is split by road (crc32 of the road code) into fold A, which the radius constants were
calibrated on, and fold B, reported as the held-out figure; then the named OSM POIs and buildings geocoded
by name (in-sample: those names are the registry's aliases). Then rewrite every active address in the five
documented noisy forms (address_registry/noisy.py) plus a random-typo stress form; top-1 accuracy per
form; geocodes/s in-process pinned to one core, side by side with a brute-force baseline
(rapidfuzz WRatio of the query against every formatted address); then GET /geocode latency through
uvicorn on 127.0.0.1 (free port) under 8 concurrent keep-alive clients, a bounded number of requests.
Results: bench-output/geocode.json and a Markdown table on stdout (pasted into docs/benchmarks.md).
"""

from __future__ import annotations

import http.client
import json
import math
import multiprocessing
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

API_CLIENTS = 8
API_REQUESTS = 4000
BASELINE_SAMPLE = 600
SEED = 7


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database():
    """(url, cleanup): DATABASE_URL, or a throw-away embedded cluster with the demo loaded."""
    from gis_api.db import get_engine
    from gis_api.demo import load_demo
    from gis_api.embedded_pg import EmbeddedPostgres
    from gis_api.migrate import upgrade

    shared = Path(os.environ.get("SHEQU_SHARED_DATA_DIR", ROOT.parent / "shared" / "data"))
    url = os.environ.get("DATABASE_URL")
    if url:
        upgrade(url)
        return url, lambda: None
    root = Path(tempfile.mkdtemp(prefix="shequ-bench-"))
    cluster = EmbeddedPostgres(root, _free_port(), fast=True)
    cluster.start()
    url = cluster.url()
    upgrade(url)
    load_demo(get_engine(url), shared)

    def cleanup():
        get_engine(url).dispose()
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)

    return url, cleanup


def accuracy(geocoder, queries):
    total, ok = Counter(), Counter()
    for form, q, code in queries:
        total[form] += 1
        res = geocoder.geocode(q, limit=1)
        if res and res[0]["address_code"] == code and res[0]["level"] != "house_number_interpolated":
            ok[form] += 1
    return {f: {"n": total[f], "top1": ok[f] / total[f]} for f in total}


# -- honest accuracy: leave-one-out over the real house numbers, and OSM names -----------------------

SURE_SCORE = 0.5  # answers below are candidates the geocoder itself doubts (unsure fuzzy, shared names)
HOUSE_LEVELS = {"house_number", "house_number_interpolated", "building", "unit", "floor", "room"}


def _metres(geocoder, lon1, lat1, lon2, lat2) -> float:
    x1, y1 = geocoder.projection.forward(lon1, lat1)
    x2, y2 = geocoder.projection.forward(lon2, lat2)
    return float(((x1 - x2) ** 2 + (y1 - y2) ** 2) ** 0.5)


def fold_of(code: str) -> str:
    """The half of the leave-one-out set an address belongs to, by crc32 of its code (A: the radius
    constants were calibrated on it; B: reported as the held-out figure)."""
    return "AB"[zlib.crc32(code.encode()) % 2]


def loo_cases(geocoder) -> list[dict]:
    """The real (osm / import / manual) house numbers with a point: the leave-one-out set."""
    out = []
    for code, rec in sorted(geocoder.by_code.items()):
        if rec.level != "house_number" or rec.source == "generated" or rec.lon is None:
            continue
        c = rec.components
        out.append({"code": code, "lon": rec.lon, "lat": rec.lat, "fold": fold_of(code),
                    "queries": {"full": rec.formatted, "street": c.get("road", "") + c.get("house_number", "")}})
    return out


def _row(geocoder, res: list[dict], lon: float, lat: float) -> dict:
    if not res or res[0].get("lon") is None:
        return {"answered": False}
    top = res[0]
    return {"answered": True, "level": top["level"], "accuracy": top.get("accuracy"),
            "radius_m": top.get("radius_m"), "source": top.get("source"), "score": top.get("score"),
            "evidence_m": top.get("evidence_m"),
            "distance_m": _metres(geocoder, top["lon"], top["lat"], lon, lat)}


def leave_one_out(geocoder, cases: list[dict], form: str = "full") -> list[dict]:
    """Each case geocoded with its record (and what hangs below it) held out of the index."""
    rows = []
    for case in cases:
        with geocoder.held_out([case["code"]]):
            res = geocoder.geocode(case["queries"][form], limit=1)
        rows.append(_row(geocoder, res, case["lon"], case["lat"]) | {"fold": case["fold"], "code": case["code"],
                                                                        "query": case["queries"][form]})
    return rows


def name_cases(conn) -> list[dict]:
    """Named OSM POIs (of kinds people address) and named buildings: the name is the query, the POI's
    point or the footprint's centroid the truth."""
    from sqlalchemy import text

    from address_registry.build import NON_ADDRESS_POI_KINDS

    out = []
    for r in conn.execute(text("SELECT name, kind, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM poi WHERE name IS NOT NULL")):
        if r.kind not in NON_ADDRESS_POI_KINDS:
            out.append({"query": r.name, "lon": r.lon, "lat": r.lat, "kind": "poi"})
    for r in conn.execute(text("""SELECT name, ST_X(ST_Centroid(geom)) AS lon, ST_Y(ST_Centroid(geom)) AS lat
                                  FROM building WHERE name IS NOT NULL""")):
        out.append({"query": r.name, "lon": r.lon, "lat": r.lat, "kind": "building"})
    return out


def name_match(geocoder, cases: list[dict]) -> list[dict]:
    """Each OSM name geocoded as it is (the index holds these names as aliases: in-sample for the names)."""
    return [_row(geocoder, geocoder.geocode(c["query"], limit=1), c["lon"], c["lat"]) | {"query": c["query"]}
            for c in cases]


def summarize(rows: list[dict]) -> dict:
    """Within 50 / 100 m (of all queries), median / p90 (of answers), house-level answers > 300 m off,
    road-level answers, radius calibration and median house-level radius."""
    n = len(rows)
    answered = [r for r in rows if r["answered"]]
    d = sorted(r["distance_m"] for r in answered)
    house = [r for r in answered if r["level"] in HOUSE_LEVELS]
    with_radius = [r for r in answered if r.get("radius_m") is not None]
    house_radius = sorted(r["radius_m"] for r in house if r.get("radius_m") is not None)

    def q(xs, p):
        return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else None

    return {
        "n": n, "answered": len(answered),
        "within_50": sum(x <= 50 for x in d) / n if n else None,
        "within_100": sum(x <= 100 for x in d) / n if n else None,
        "median_m": statistics.median(d) if d else None, "p90_m": q(d, 0.9),
        "house_level": len(house), "house_over_300": sum(r["distance_m"] > 300 for r in house),
        "house_over_300_sure": sum(r["distance_m"] > 300 and (r.get("score") or 0) >= SURE_SCORE for r in house),
        "road_level": sum(r["level"] == "road" for r in answered),
        "calibration": (sum(r["distance_m"] <= r["radius_m"] for r in with_radius) / len(with_radius))
        if with_radius else None,
        "median_house_radius_m": statistics.median(house_radius) if house_radius else None,
        "levels": dict(Counter(r.get("accuracy") or r["level"] for r in answered)),
    }


def _fmt(v, pct=False):
    if v is None:
        return "—"
    return f"{v * 100:.1f} %" if pct else (f"{v:.0f}" if isinstance(v, float) else str(v))


def accuracy_table(parts: dict[str, dict]) -> str:
    """Markdown rows of `summarize` results."""
    lines = ["| set | n | answered | ≤ 50 m | ≤ 100 m | median m | p90 m | house-level > 300 m (score ≥ 0.5) | road-level | "
             "true point within radius | median house radius m |", "|---|" + "---:|" * 10]
    # house-level > 300 m: all top answers (of them, with score >= SURE_SCORE)
    for name, s in parts.items():
        lines.append(f"| {name} | {s['n']} | {s['answered']} | {_fmt(s['within_50'], True)} | "
                     f"{_fmt(s['within_100'], True)} | {_fmt(s['median_m'])} | {_fmt(s['p90_m'])} | "
                     f"{s['house_over_300']} ({s['house_over_300_sure']}) of {s['house_level']} | {s['road_level']} | "
                     f"{_fmt(s['calibration'], True)} | {_fmt(s['median_house_radius_m'])} |")
    return "\n".join(lines)


def honest_accuracy(geocoder, names: list[dict]) -> dict:
    """Leave-one-out (fold B: held out from the radius calibration; fold A; both) and name-match
    summaries with the shipped radius model; then the folds swapped (radii calibrated here on fold B,
    fold A reported) as a second instance; the calibration each fold gives."""
    cases = loo_cases(geocoder)
    out: dict[str, Any] = {"rows": {}}
    parts = {}
    rows = leave_one_out(geocoder, cases)
    out["rows"]["full"] = rows
    parts["leave-one-out, fold B (held out)"] = summarize([r for r in rows if r["fold"] == "B"])
    parts["leave-one-out, fold A (calibration set)"] = summarize([r for r in rows if r["fold"] == "A"])
    parts["leave-one-out, all"] = summarize(rows)
    out["calibration"] = {f: calibrate([r for r in rows if r["fold"] == f]) for f in "AB"}
    shipped = geocoder.radius_model
    geocoder.radius_model = {**shipped, **out["calibration"]["B"]}
    try:
        swapped = leave_one_out(geocoder, [c for c in cases if c["fold"] == "A"])
    finally:
        geocoder.radius_model = shipped
    parts["leave-one-out, fold A, radii calibrated on fold B"] = summarize(swapped)
    rows = name_match(geocoder, names)
    out["rows"]["names"] = rows
    parts["OSM names (POIs + buildings)"] = summarize(rows)
    out["summary"] = parts
    return out


def reverse_eval(conn) -> dict:
    """Reverse geocoding at the OSM address points, the centroids of OSM-tagged buildings and the POIs
    inside those buildings (their road: the building's addr:street): share of
    answers naming the point's own road, footprint-first (address_registry.reverse) against the nearest
    address point alone (the former answer). In-sample: those points built the registry."""
    from sqlalchemy import text

    from address_registry import store
    from address_registry.build import clean_road_name
    from address_registry.reverse import reverse

    pts = [(r.lon, r.lat, clean_road_name(r.street)) for r in conn.execute(text("""
        SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat, addr_street AS street FROM demo_address_point
        WHERE kind = 'address' AND addr_street IS NOT NULL
        UNION ALL
        SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)), addr_street FROM building
        WHERE addr_street IS NOT NULL AND addr_housenumber IS NOT NULL
        UNION ALL
        SELECT ST_X(p.geom), ST_Y(p.geom), b.addr_street FROM poi p
        JOIN building b ON ST_Within(p.geom, b.geom)
        WHERE b.addr_street IS NOT NULL AND b.addr_housenumber IS NOT NULL"""))]
    new_ok = old_ok = footprint = 0
    for lon, lat, road in pts:
        new = reverse(conn, lon, lat, 1)
        old = store.nearest(conn, lon, lat, k=1)
        new_ok += bool(new) and new[0]["components"].get("road") == road
        old_ok += bool(old) and old[0][0].components.get("road") == road
        footprint += bool(new) and new[0]["match"] == "footprint"
    n = max(len(pts), 1)
    return {"points": len(pts), "own_road_footprint_first": new_ok / n, "own_road_nearest_only": old_ok / n,
            "answered_by_footprint": footprint / n}


CONFORMAL_SHAPE_M = 25.0


def calibrate(rows: list[dict], target: float = 0.9) -> dict[str, tuple[float, float]]:
    """Per estimate kind, (base, spread) of ``radius = base + spread * evidence`` by split-conformal
    calibration: scores ``distance / (25 m + evidence)``, q = their ceil((n + 1) * target)-th smallest
    (the finite-sample quantile that holds ``target`` of new answers of that kind in expectation),
    radius = q * (25 m + evidence)."""
    from address_registry.accuracy import MODEL

    out = {}
    for kind in ("interpolated", "extrapolated", "road_stretch"):
        scores = sorted(r["distance_m"] / (CONFORMAL_SHAPE_M + r["evidence_m"]) for r in rows
                        if r["answered"] and r.get("accuracy") == kind and r.get("evidence_m") is not None)
        n = len(scores)
        if n < 5:
            out[kind] = MODEL[kind]
            continue
        q = scores[min(n - 1, math.ceil((n + 1) * target) - 1)]
        out[kind] = (round(q * CONFORMAL_SHAPE_M, 1), round(q, 3))
    return out


def throughput(fn, texts, min_seconds=3.0):
    n, t0 = 0, time.perf_counter()
    while True:
        for q in texts:
            fn(q)
        n += len(texts)
        dt = time.perf_counter() - t0
        if dt >= min_seconds:
            return n / dt


def _client(job) -> tuple[list[float], dict]:
    """One client process: keep-alive http.client GETs of ``/geocode``; latencies in ms."""
    port, queries = job
    return get_paths((port, [f"/geocode?{urlencode({'q': q, 'limit': 5})}" for q in queries], 10))


def get_paths(job: tuple[int, list[str], float]) -> tuple[list[float], dict]:
    """One client process: keep-alive http.client GETs of ``paths`` in order (port, paths, timeout s);
    latencies in ms, and the count of each non-200 status."""
    port, paths, timeout = job
    out, errors = [], Counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        for path in paths:
            t = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            out.append((time.perf_counter() - t) * 1000)
            if resp.status != 200:
                errors[resp.status] += 1
    finally:
        conn.close()
    return out, dict(errors)


def api_latency(url: str, queries: list[str]) -> dict:
    import httpx

    load_before = os.getloadavg()
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "gis_api.app:create_app", "--factory",
                               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                              cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("uvicorn did not start")
        with httpx.Client(base_url=base, timeout=120) as c:  # warm-up: loads the geocoder (and parser model)
            for q in queries[:50]:
                c.get("/geocode", params={"q": q, "limit": 5}).raise_for_status()
        per_client = API_REQUESTS // API_CLIENTS
        # 8 client processes (not threads: a thread waiting for the GIL would add its wait to the latency)
        jobs = [(port, [rng_q for rng_q in random.Random(k).choices(queries, k=per_client)]) for k in range(API_CLIENTS)]
        t0 = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(API_CLIENTS) as pool:
            parts = pool.map(_client, jobs)
        wall = time.perf_counter() - t0
        latencies = [x for lat, _ in parts for x in lat]
        errors = Counter()
        for _, errs in parts:
            errors.update(errs)
        wall = max(wall, 1e-9)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))]

    return {"clients": API_CLIENTS, "requests": len(latencies), "errors": dict(errors),
            "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "max_ms": latencies[-1],
            "mean_ms": statistics.fmean(latencies), "requests_per_s": len(latencies) / wall,
            "load_average_before": load_before, "load_average_after": os.getloadavg()}


def main() -> None:
    from rapidfuzz import fuzz, process

    from address_registry import store
    from address_registry.geocoder import Geocoder
    from address_registry.noisy import FORMS, noisy_queries
    from address_registry.service import build_registry
    from address_registry.textnorm import normalize_text
    from gis_api.db import get_engine

    url, cleanup = _database()
    try:
        engine = get_engine(url)
        t0 = time.perf_counter()
        with engine.begin() as conn:
            stats = build_registry(conn)
        build_s = time.perf_counter() - t0
        with engine.connect() as conn:
            inputs = store.load_geocoder_inputs(conn)
        t0 = time.perf_counter()
        geocoder = Geocoder(**inputs)
        index_s = time.perf_counter() - t0
        records = list(geocoder.by_code.values())
        with engine.connect() as conn:
            names = name_cases(conn)
        honest = honest_accuracy(geocoder, names)
        print(accuracy_table(honest["summary"]), flush=True)
        print(f"radius calibration (base, spread) per fold: {honest['calibration']}", flush=True)
        (ROOT / "bench-output").mkdir(exist_ok=True)
        (ROOT / "bench-output" / "geocode-accuracy.json").write_text(
            json.dumps(honest, ensure_ascii=False, indent=1, default=str))
        with engine.connect() as conn:
            honest["reverse"] = rev = reverse_eval(conn)
        print(f"reverse at {rev['points']} OSM address points / tagged buildings / POIs in them: own road named "
              f"{rev['own_road_footprint_first'] * 100:.1f} % footprint-first, "
              f"{rev['own_road_nearest_only'] * 100:.1f} % nearest point only; "
              f"{rev['answered_by_footprint'] * 100:.1f} % answered by a footprint", flush=True)
        if "--accuracy-only" in sys.argv:
            return
        queries = noisy_queries(records, inputs["aliases"], seed=SEED, random_typos=True)
        acc = accuracy(geocoder, queries)
        five = [q for q in queries if q[0] in FORMS]
        overall = sum(1 for f, q, c in five if (lambda r: r and r[0]["address_code"] == c and
                                                 r[0]["level"] != "house_number_interpolated")(
            geocoder.geocode(q, 1))) / len(five)

        try:
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        except (AttributeError, OSError):
            pass
        texts = [q for _, q, _ in five]
        random.Random(SEED).shuffle(texts)
        qps_mix = throughput(lambda q: geocoder.geocode(q, 5), texts)
        exact_texts = [r.formatted for r in records]
        qps_exact = throughput(lambda q: geocoder.geocode(q, 5), exact_texts)

        # baseline: brute-force fuzzy match of the whole query against every formatted address
        choices = [normalize_text(r.formatted) for r in records]
        codes = [r.code for r in records]
        sample = random.Random(SEED).sample(five, min(BASELINE_SAMPLE, len(five)))
        t0 = time.perf_counter()
        base_ok = Counter()
        base_n = Counter()
        for form, q, code in sample:
            best = process.extractOne(normalize_text(q), choices, scorer=fuzz.WRatio)
            base_n[form] += 1
            base_ok[form] += bool(best and codes[best[2]] == code)
        base_qps = len(sample) / (time.perf_counter() - t0)
        base_acc = sum(base_ok.values()) / len(sample)
        ours_on_sample = sum(1 for f, q, c in sample if (lambda r: r and r[0]["address_code"] == c)(
            geocoder.geocode(q, 1))) / len(sample)
        try:
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        except (AttributeError, OSError):
            pass

        api = api_latency(url, texts)
    finally:
        cleanup()

    out = {"registry": {"addresses": len(records), "build_s": build_s, "index_s": index_s, "build_stats": stats},
           "honest_accuracy": honest["summary"], "reverse": honest["reverse"],
           "radius_calibration": honest["calibration"],
           "accuracy": acc, "accuracy_five_forms": overall, "queries_five_forms": len(five),
           "throughput": {"noisy_mix_per_s": qps_mix, "exact_per_s": qps_exact, "baseline_per_s": base_qps,
                          "ratio_vs_baseline": qps_mix / base_qps},
           "baseline": {"sample": len(sample), "top1": base_acc, "ours_top1_same_sample": ours_on_sample},
           "api": api}
    (ROOT / "bench-output").mkdir(exist_ok=True)
    (ROOT / "bench-output" / "geocode.json").write_text(json.dumps(out, ensure_ascii=False, indent=2, default=str))

    print("\n" + accuracy_table(honest["summary"]))
    print(f"registry: {len(records)} active addresses, built in {build_s:.1f}s, indexed in {index_s * 1000:.0f} ms")
    print("\n| form | queries | top-1 |\n|---|---:|---:|")
    for form in (*FORMS, "typo_random"):
        if form in acc:
            print(f"| {form} | {acc[form]['n']} | {acc[form]['top1'] * 100:.2f} % |")
    print(f"| **five forms together** | {len(five)} | **{overall * 100:.2f} %** |")
    print("\n| in-process, one core | geocodes/s |\n|---|---:|")
    print(f"| noisy mix (five forms), limit 5 | {qps_mix:,.0f} |")
    print(f"| exact formatted text, limit 5 | {qps_exact:,.0f} |")
    print(f"| baseline: rapidfuzz WRatio vs every address | {base_qps:,.0f} (top-1 {base_acc * 100:.1f} % on "
          f"{len(sample)} sampled queries; ours {ours_on_sample * 100:.1f} %) |")
    print(f"| ratio ours / baseline | {qps_mix / base_qps:,.0f}× |")
    print(f"\nAPI GET /geocode, {api['clients']} concurrent clients, {api['requests']} requests: "
          f"p50 {api['p50_ms']:.2f} ms, p95 {api['p95_ms']:.2f} ms, p99 {api['p99_ms']:.2f} ms, "
          f"max {api['max_ms']:.1f} ms, {api['requests_per_s']:.0f} req/s, errors {api['errors']}; "
          f"machine load average {api['load_average_before'][0]:.1f} before, {api['load_average_after'][0]:.1f} after "
          f"({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
