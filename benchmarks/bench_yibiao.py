"""一标三实 costs on the demo (issue 12): plate PDF rendering, bulk import of people, police–grid reconciliation.

A throw-away PostGIS with the demo loaded (or DATABASE_URL), provisional boundaries, the address registry and
the synthetic residents of the community with most house numbers. Each figure is repeated (``--seeds``) and
reported as median and min–max; every write runs in a transaction that is rolled back.

- plates: `plates_pdf` for the community's house numbers, medium size (render only): plates per second and
  bytes per plate;
- import: a people CSV of ``--rows`` valid synthetic rows at room addresses (plus 5 % bad rows: wrong check
  character, unknown address, duplicates), mode ``valid``: rows per second and the rows rejected (which must
  equal the bad rows planted);
- reconcile: a police area drawn over the community, an extract made from the grid's own people with planted
  differences (5 % left out → grid_only, 2 % renamed → field_conflict, 3 % extra → police_only): run time and
  whether each planted difference is found (planted counts = found counts: the comparison is exact, so this
  measures the pipeline, not a tuned detector).

    .venv/bin/python benchmarks/bench_yibiao.py [--seeds 3] [--rows 2000]
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from bench_geocode import _database  # noqa: E402


def _prepare(url: str) -> str:
    from sqlalchemy import text

    from address_registry.service import build_registry
    from gis_api.db import get_engine
    from grid_builder.service import derive_boundaries
    from residents.service import load_synthetic

    engine = get_engine(url)
    with engine.connect() as conn:
        has = conn.execute(text("SELECT count(*) FROM admin_unit WHERE level = 'community'")).scalar()
    if not has:
        derive_boundaries(engine)
    with engine.begin() as conn:
        if not conn.execute(text("SELECT count(*) FROM standard_address WHERE community_code IS NOT NULL")).scalar():
            build_registry(conn)
        comm = conn.execute(text(
            "SELECT community_code FROM standard_address WHERE level = 'house_number' AND valid_to IS NULL "
            "AND community_code IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")).scalar()
        load_synthetic(conn, 20240612, comm)
    return comm


def _ids(rng: random.Random, n: int) -> list[str]:
    from residents.validate import id_check_char

    out = set()
    while len(out) < n:
        body = f"3101041{rng.randint(950, 999)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
        body = body[:17]
        out.add(body + id_check_char(body))
    return sorted(out)


def bench_plates(engine, comm: str) -> dict:
    from address_registry.plate_pdf import plates_pdf
    from address_registry.store import search

    with engine.connect() as conn:
        _, recs = search(conn, community_code=comm, level="house_number", limit=2000)
    t0 = time.perf_counter()
    pdf = plates_pdf(recs, "https://gis.example.gov.cn", b"k" * 32, "medium")
    dt = time.perf_counter() - t0
    return {"plates": len(recs), "per_s": len(recs) / dt, "bytes_per_plate": len(pdf) / len(recs)}


def bench_import(engine, comm: str, rows: int, seed: int) -> dict:
    from sqlalchemy import text

    from residents.importer import import_rows, read_rows

    rng = random.Random(seed)
    with engine.connect() as conn:
        rooms = conn.execute(text("SELECT code FROM standard_address WHERE level = 'room' AND valid_to IS NULL "
                                  "AND status = 'active' ORDER BY code LIMIT 5000")).scalars().all()
    ids = _ids(rng, rows)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["address_code", "name", "id_number", "registration"])
    bad = 0
    last_ok = None  # a duplicate repeats the document of an earlier row that is itself valid
    for i, number in enumerate(ids):
        code = rng.choice(rooms)
        if rng.random() < 0.05:
            bad += 1
            kind = rng.randrange(3)
            if kind == 1:
                code = "31010199999999999"
            elif kind == 2 and last_ok is not None:
                number = last_ok
            else:
                number = number[:-1] + ("0" if number[-1] != "0" else "1")
        else:
            last_ok = number
        w.writerow([code, f"导入{i}", number, rng.choice(["常住", "流动", "户籍"])])
    data = buf.getvalue().encode()
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            t0 = time.perf_counter()
            report = import_rows(conn, "people", read_rows(data, "people", "p.csv"), "bench")
            dt = time.perf_counter() - t0
        finally:
            trans.rollback()
    return {"rows": rows, "per_s": rows / dt, "rejected": len(report["rejected_rows"]), "planted_bad": bad}


def bench_reconcile(engine, comm: str, seed: int) -> dict:
    from sqlalchemy import text

    from residents import reconcile_store as rs
    from residents.importer import read_rows

    rng = random.Random(seed)
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            conn.execute(text(
                "INSERT INTO police_area (code, name, source, properties, geom) SELECT 'BENCH-PA', '基准派出所', "
                "'bench', '{}'::jsonb, ST_Multi(geom) FROM admin_unit WHERE code = :c AND valid_to IS NULL"),
                {"c": comm})
            inside = rs.area_addresses(conn, "BENCH-PA")
            people = conn.execute(text(
                "SELECT p.id_type, p.id_number, p.name, r.address_code FROM residence r JOIN person p ON p.id = r.person_id "
                "AND p.valid_to IS NULL WHERE r.to_date IS NULL AND p.id_number IS NOT NULL "
                "AND r.address_code = ANY(:c)"), {"c": sorted(inside)}).all()
            no_doc = conn.execute(text(
                "SELECT count(*) FROM residence r JOIN person p ON p.id = r.person_id AND p.valid_to IS NULL "
                "WHERE r.to_date IS NULL AND p.id_number IS NULL AND r.address_code = ANY(:c)"),
                {"c": sorted(inside)}).scalar()
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(["record_type", "address_code", "id_type", "id_number", "name"])
            planted = {"grid_only": 0, "field_conflict": 0, "police_only": 0}
            for id_type, number, name, code in people:
                x = rng.random()
                if x < 0.05:
                    planted["grid_only"] += 1
                    continue
                if x < 0.07:
                    planted["field_conflict"] += 1
                    name = name + "甲"
                w.writerow(["person", code, id_type, number, name])
            codes = sorted(inside)
            for number in _ids(rng, int(0.03 * len(people)) + 1):
                planted["police_only"] += 1
                w.writerow(["person", rng.choice(codes), "citizen_id", number, "公安登记"])
            rows = read_rows(buf.getvalue().encode(), "police", "extract.csv")
            t0 = time.perf_counter()
            imp = rs.import_police(conn, "BENCH-PA", rows, "bench")
            if imp["errors"]:
                raise SystemExit(f"police extract refused: {imp['errors'][:5]}")
            t1 = time.perf_counter()
            out = rs.run(conn, "BENCH-PA", "bench")
            t2 = time.perf_counter()
        finally:
            trans.rollback()
    c = out["counts"]
    grid_only_people = c.get("grid_only", 0)
    return {"people": len(people), "addresses": len(inside), "no_doc": no_doc, "import_s": t1 - t0, "run_s": t2 - t1,
            "import_errors": len(imp["errors"]), "planted": planted,
            "found": {"grid_only": grid_only_people, "field_conflict": c.get("field_conflict", 0),
                      "police_only": c.get("police_only", 0)}}


def _fmt(values: list[float], unit: str = "") -> str:
    return f"{statistics.median(values):.1f}{unit} ({min(values):.1f}–{max(values):.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rows", type=int, default=2000)
    args = ap.parse_args()
    from gis_api.db import get_engine

    url, cleanup = _database()
    try:
        comm = _prepare(url)
        engine = get_engine(url)
        plates = [bench_plates(engine, comm) for _ in range(args.seeds)]
        imports = [bench_import(engine, comm, args.rows, s) for s in range(args.seeds)]
        recs = [bench_reconcile(engine, comm, s) for s in range(args.seeds)]
        print(f"community {comm}")
        print(f"plates (medium PDF, {plates[0]['plates']} plates): {_fmt([p['per_s'] for p in plates], '/s')}, "
              f"{plates[0]['bytes_per_plate'] / 1024:.1f} KiB per plate")
        print(f"import ({args.rows} people rows, mode valid): {_fmt([i['per_s'] for i in imports], ' rows/s')}; "
              "rejected/planted " + ", ".join(f"{i['rejected']}/{i['planted_bad']}" for i in imports))
        print(f"reconcile ({recs[0]['people']} people, {recs[0]['addresses']} addresses): import "
              f"{_fmt([r['import_s'] for r in recs], ' s')}, run {_fmt([r['run_s'] for r in recs], ' s')}")
        for r in recs:
            print(f"  planted {r['planted']} found {r['found']} (grid_only includes {r['no_doc']} people "
                  f"without a document) import errors {r['import_errors']}")
    finally:
        cleanup()


if __name__ == "__main__":
    main()
