"""Grid editing: validate + apply one edit on a community of 20+ grids (target p95 < 200 ms).

Run:  .venv/bin/python benchmarks/bench_grid_edit.py [--edits 40] [--json bench-output/grid_edit.json]

Database: DATABASE_URL, or a throw-away embedded cluster with the demo loaded. The demo's communities
have 2–10 grids at the default band (300–500 households), so the benchmark builds the two communities with
the most buildings at a band of about total/40 … total/22 households per grid, narrowed until it gives 20+
grids each (the
grids are real: streets blocks of the real road network, real footprints). Then, per community, for
``--edits`` random movable shared vertices (seeded; three seeds) and a set of building moves and splits:

- validate = parse, load the community's current grids and buildings, apply the operation, check every
  invariant on the whole community (what ``POST /grid-edits/preview`` and a draft save do);
- save draft = validate + the base versions + the draft row;
- validate + apply = the approval of that draft (what the issue's target is about): lock, base check,
  re-load and re-apply, every invariant, micro-grids of the written grids fitted (or rebuilt) and checked,
  rows closed and new versions written, building assignments and the code map updated. The transaction
  is then rolled back so every edit starts from the same grids.

Each timing is one edit, wall clock, in this process (no HTTP). Percentiles over all edits of a kind.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_geocode import _database  # noqa: E402


def _communities(engine, n: int = 2) -> list[tuple[str, int]]:
    from sqlalchemy import text

    from grid_builder.build import BuildConfig
    from grid_builder.service import build_community, derive_boundaries

    with engine.connect() as conn:
        has = conn.execute(text("SELECT count(*) FROM admin_unit WHERE level = 'community' AND valid_to IS NULL")
                           ).scalar()
    if not has:
        derive_boundaries(engine)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT a.code, sum(b.households_est) FROM admin_unit a JOIN building b ON ST_Contains(a.geom, "
            "ST_PointOnSurface(b.geom)) WHERE a.level = 'community' AND a.valid_to IS NULL GROUP BY a.code "
            "ORDER BY count(*) DESC LIMIT :n"), {"n": n}).all()
    out = []
    for code, hh in rows:
        k = 30.0
        while True:  # a band narrow enough for 20+ grids
            rep = build_community(engine, code, BuildConfig(grid_min=max(20, hh / (k * 1.25)),
                                                            grid_max=max(40, hh / (k * 0.75))))
            if rep.grids >= 20 or k > 60:
                break
            k += 6
        out.append((code, rep.grids))
    return out


def _edits(layout, seed: int, n: int) -> list[tuple[str, list]]:
    from shapely.geometry import LineString, Point

    from grid_builder.edit.samples import lonlat, shared_vertices, try_apply
    from grid_builder.geom import to_wgs84

    rng = np.random.default_rng(seed)
    sv = shared_vertices(layout)
    out: list[tuple[str, list]] = []
    for i in rng.permutation(len(sv)):
        a, b, p = sv[int(i)]
        ang = rng.uniform(0, 2 * np.pi)
        raw = [{"op": "move_vertex", "from": lonlat(p), "to": lonlat(Point(p.x + 2 * np.cos(ang),
                                                                           p.y + 2 * np.sin(ang)))}]
        if try_apply(layout, raw) is not None:
            out.append(("move_vertex", raw))
        if len(out) >= n:
            break
    for i in rng.permutation(len(sv))[: 4 * n]:
        a, b, _p = sv[int(i)]
        mine = sorted((x for x in layout.buildings if layout.grids[a].contains(x.anchor)),
                      key=lambda x: layout.grids[b].distance(x.footprint))
        raw = [{"op": "move_buildings", "buildings": [mine[0].id], "to": b}] if mine else []
        if raw and try_apply(layout, raw) is not None:
            out.append(("move_buildings", raw))
        if sum(1 for k, _ in out if k == "move_buildings") >= n // 2:
            break
    for code in sorted(layout.grids):
        g = layout.grids[code]
        c, r = g.representative_point(), 2 * max(g.bounds[2] - g.bounds[0], g.bounds[3] - g.bounds[1])
        t = rng.uniform(0, np.pi)
        line = LineString([(c.x - r * np.cos(t), c.y - r * np.sin(t)), (c.x + r * np.cos(t), c.y + r * np.sin(t))])
        raw = [{"op": "split", "grid": code, "line": [list(x) for x in to_wgs84(line).coords]}]
        if try_apply(layout, raw) is not None:
            out.append(("split", raw))
        if sum(1 for k, _ in out if k == "split") >= n // 4:
            break
    return out


def _time(engine, community: str, raw: list) -> tuple[float, float, float]:
    from grid_builder.edit import service
    from grid_builder.edit.invariants import refuse_if_broken

    with engine.connect() as conn:
        t0 = time.perf_counter()
        p = service.plan(conn, community, raw)
        refuse_if_broken(service._issues(p))
        t1 = time.perf_counter()
    with engine.connect() as conn:
        tx = conn.begin()
        t2 = time.perf_counter()
        d = service.save_draft(conn, community, raw, "bench", "bench")
        t3 = time.perf_counter()
        try:
            service.approve(conn, d["id"], "bench", "bench", direct=True)
        except Exception as exc:
            print("approval refused:", raw, getattr(exc, "detail", None), file=sys.stderr)
            raise
        t4 = time.perf_counter()
        tx.rollback()
    return (t1 - t0) * 1000, (t3 - t2) * 1000, (t4 - t3) * 1000


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--edits", type=int, default=40, help="vertex moves per community and seed")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--json", default=str(ROOT / "bench-output" / "grid_edit.json"))
    ap.add_argument("--profile", default="", help="write cProfile stats of the timed edits to this file")
    args = ap.parse_args()
    prof = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
    from gis_api.db import get_engine
    from grid_builder.edit.service import load_layout

    url, cleanup = _database()
    try:
        engine = get_engine(url)
        results: list[dict[str, Any]] = []
        for community, n_grids in _communities(engine):
            with engine.connect() as conn:
                _info, layout, _v = load_layout(conn, community)
            for seed in range(args.seeds):
                for kind, raw in _edits(layout, seed, args.edits):
                    if prof is not None:
                        prof.enable()
                    v, sv, a = _time(engine, community, raw)
                    if prof is not None:
                        prof.disable()
                    results.append({"community": community, "grids": n_grids, "seed": seed, "kind": kind,
                                    "validate_ms": v, "save_draft_ms": sv, "validate_apply_ms": a})
        rows = []
        for key in sorted({(r["community"], r["grids"], r["kind"]) for r in results}):
            sel = [r for r in results if (r["community"], r["grids"], r["kind"]) == key]
            va = [r["validate_apply_ms"] for r in sel]
            vv = [r["validate_ms"] for r in sel]
            sd = [r["save_draft_ms"] for r in sel]
            rows.append({"community": key[0], "grids": key[1], "kind": key[2], "n": len(sel),
                         "validate_p50": _pct(vv, 50), "validate_p95": _pct(vv, 95), "save_p95": _pct(sd, 95),
                         "apply_p50": _pct(va, 50), "apply_p95": _pct(va, 95), "apply_max": max(va)})
        allv = [r["validate_apply_ms"] for r in results]
        print(f"{'community':<14}{'grids':>6} {'edit':<16}{'n':>4} {'validate p50/p95':>18} {'save p95':>9} "
              f"{'validate+apply p50/p95/max':>28}")
        for r in rows:
            print(f"{r['community']:<14}{r['grids']:>6} {r['kind']:<16}{r['n']:>4} "
                  f"{r['validate_p50']:>8.0f} /{r['validate_p95']:>6.0f} ms {r['save_p95']:>6.0f} ms "
                  f"{r['apply_p50']:>9.0f} /{r['apply_p95']:>6.0f} /{r['apply_max']:>6.0f} ms")
        print(f"all {len(allv)} edits: validate+apply p50 {_pct(allv, 50):.0f} ms, p95 {_pct(allv, 95):.0f} ms "
              f"(target p95 < 200 ms); median per edit {statistics.median(allv):.0f} ms")
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"rows": rows, "edits": results}, indent=1))
        if prof is not None:
            prof.dump_stats(args.profile)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
