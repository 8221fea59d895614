"""Partitioning benchmark (issue 14, section 4): the address and houses tables plain vs partitioned by district.

    export SHEQU_PG_DIR=var/pg-synth SHEQU_PG_PORT=54330      # a database of its own holding a synthetic city
    shequ demo synth -n 1000000 --seed 1
    nice .venv/bin/python benchmarks/bench_partition.py --rounds 3

In a schema of its own (`bench_part`, dropped at the end unless `--keep`) the script builds four tables from
the synthetic city in the database:

- `addr_plain`: a copy of `standard_address` with its own indexes and constraints (`LIKE … INCLUDING ALL`);
- `addr_part`: the same rows in a table partitioned by district — `PARTITION BY RANGE (code)`, one partition
  per district `[DDDDDD, DDDDDD+1)` (a code's first six digits are its district, docs/address-code.md) and a
  DEFAULT partition — with the same indexes (the primary key becomes `(id, code)`; the unique index on the
  active normalised text cannot be global and is an ordinary index there);
- `house_plain` / `house_part`: the 一标三实 houses table (`house_info`, migration 0011_residents), one current
  record for every dwelling of the synthetic city (rooms, and house numbers / buildings without children) and
  a closed earlier version for one in ten, plain and partitioned the way migration 0018 partitions it.

Then, for ``--rounds`` rounds, the queries the product runs on these tables, each timed on both: one district's
current rows (by `district_code` as the registry has it, and by the code range that prunes), a code lookup
(median of 300 random codes), a page of map features in a 600 m box (`layers/sql.py`'s query, median of 20
boxes), a re-import of the largest district (its rows deleted and inserted again in one transaction; the
partitioned table also by TRUNCATE of its partition), VACUUM ANALYZE after it (the whole table vs the one
partition), retiring a district (DELETE vs DROP of the detached partition; the rows are put back untimed),
the row-counter stamp's `max(id)` and a full `count(*)`. Figures: min / median / max over rounds, in ms, with
`os.getloadavg()`; JSON in bench-output/partition.json and a Markdown table on stdout. Autovacuum is off on
the bench's tables (else a timed VACUUM may find its work done already); `--reuse --ops vacuum` re-runs only
the re-import and the VACUUM after it on the tables a `--keep` run left (bench-output/partition-vacuum.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import Connection  # noqa: E402

S = "bench_part"


def _upper(district: str) -> str:
    """The exclusive upper bound of a district's code range ('310101' → '310102')."""
    return str(int(district) + 1).zfill(6)


def _columns(conn: Connection, table: str) -> str:
    rows = conn.execute(text("""SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'
        AND table_name = :t AND is_generated = 'NEVER' ORDER BY ordinal_position"""), {"t": table})
    return ", ".join(r[0] for r in rows)


def _partitions(conn: Connection, parent: str, key: str, districts: list[str]) -> None:
    for d in districts:
        conn.execute(text(f"CREATE TABLE {S}.{parent}_{d} PARTITION OF {S}.{parent} "
                          f"FOR VALUES FROM ('{d}') TO ('{_upper(d)}')"))
    conn.execute(text(f"CREATE TABLE {S}.{parent}_default PARTITION OF {S}.{parent} DEFAULT"))


def setup(conn: Connection) -> dict:
    """The four tables, filled and analysed."""
    conn.execute(text(f"DROP SCHEMA IF EXISTS {S} CASCADE"))
    conn.execute(text(f"CREATE SCHEMA {S}"))
    districts = [r[0] for r in conn.execute(text(
        "SELECT DISTINCT left(code, 6) FROM standard_address ORDER BY 1"))]
    cols = _columns(conn, "standard_address")
    t0 = time.perf_counter()
    conn.execute(text(f"CREATE TABLE {S}.addr_plain (LIKE public.standard_address INCLUDING ALL)"))
    conn.execute(text(f"INSERT INTO {S}.addr_plain ({cols}) OVERRIDING SYSTEM VALUE "
                      f"SELECT {cols} FROM public.standard_address"))
    plain_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    conn.execute(text(f"""CREATE TABLE {S}.addr_part (LIKE public.standard_address INCLUDING DEFAULTS
        INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING IDENTITY) PARTITION BY RANGE (code)"""))
    _partitions(conn, "addr_part", "code", districts)
    for ddl in (
        "ALTER TABLE {t} ADD PRIMARY KEY (id, code)",
        "ALTER TABLE {t} ADD UNIQUE (code, version)",
        "CREATE UNIQUE INDEX ON {t} (code) WHERE valid_to IS NULL",
        "CREATE INDEX ON {t} (normalized_text) WHERE valid_to IS NULL AND status = 'active'",
        "CREATE INDEX ON {t} (parent_code) WHERE valid_to IS NULL",
        "CREATE INDEX ON {t} (building_id)",
        "CREATE INDEX ON {t} USING gist (geom) WHERE valid_to IS NULL AND status = 'active'",
        "CREATE INDEX ON {t} (compound_code) WHERE valid_to IS NULL",
    ):
        conn.execute(text(ddl.format(t=f"{S}.addr_part")))
    conn.execute(text(f"INSERT INTO {S}.addr_part ({cols}) OVERRIDING SYSTEM VALUE "
                      f"SELECT {cols} FROM public.standard_address"))
    part_s = time.perf_counter() - t0
    # the houses: one current record per dwelling, a closed earlier version for one in ten
    conn.execute(text("""CREATE TEMP TABLE dwelling AS SELECT a.code FROM public.standard_address a
        WHERE a.valid_to IS NULL AND a.status = 'active' AND a.level IN ('house_number', 'building', 'room')
          AND NOT EXISTS (SELECT 1 FROM public.standard_address c WHERE c.parent_code = a.code
                          AND c.valid_to IS NULL AND c.status = 'active')"""))
    houses = """SELECT code, (ARRAY['自住','出租','空置','商用','其他'])[1 + abs(hashtext(code)) % 5], 60 + abs(hashtext(code)) % 90,
        v, 'synthetic', now() - interval '400 days' + v * interval '100 days',
        CASE WHEN v = 1 AND abs(hashtext(code)) % 10 = 0 THEN now() - interval '300 days' END,
        'bench_partition', '' FROM dwelling, generate_series(1, 2) v
        WHERE v = 1 OR abs(hashtext(code)) % 10 = 0"""
    hcols = "address_code, use, floor_area, version, source, valid_from, valid_to, changed_by, change_reason"
    conn.execute(text(f"CREATE TABLE {S}.house_plain (LIKE public.house_info INCLUDING ALL)"))
    conn.execute(text(f"INSERT INTO {S}.house_plain ({hcols}) {houses}"))
    conn.execute(text(f"""CREATE TABLE {S}.house_part (LIKE public.house_info INCLUDING DEFAULTS
        INCLUDING CONSTRAINTS INCLUDING IDENTITY) PARTITION BY RANGE (address_code)"""))
    _partitions(conn, "house_part", "address_code", districts)
    for ddl in ("ALTER TABLE {t} ADD PRIMARY KEY (row_id, address_code)",
                "ALTER TABLE {t} ADD UNIQUE (address_code, version)",
                "CREATE UNIQUE INDEX ON {t} (address_code) WHERE valid_to IS NULL"):
        conn.execute(text(ddl.format(t=f"{S}.house_part")))
    conn.execute(text(f"INSERT INTO {S}.house_part ({hcols}) SELECT {hcols} FROM {S}.house_plain"))
    for t in ("addr_plain", "addr_part", "house_plain", "house_part"):
        conn.execute(text(f"ANALYZE {S}.{t}"))
    _autovacuum_off(conn)
    return {"copy_plain_s": round(plain_s, 1), "copy_partitioned_s": round(part_s, 1)} | sizes_of(conn)


def _autovacuum_off(conn: Connection) -> None:
    """No autovacuum on the bench's tables: a VACUUM timed on one must not find the work done already."""
    for (name,) in conn.execute(text("SELECT relname FROM pg_class WHERE relnamespace = CAST(:s AS regnamespace) "
                                     "AND relkind = 'r'"), {"s": S}).all():
        conn.execute(text(f"ALTER TABLE {S}.{name} SET (autovacuum_enabled = false)"))


def sizes_of(conn: Connection) -> dict:
    """Rows per district and houses in the bench's tables."""
    sizes = {r[0]: int(r[1]) for r in conn.execute(text(
        "SELECT left(code, 6), count(*) FROM public.standard_address GROUP BY 1 ORDER BY 2 DESC"))}
    n_house = conn.execute(text(f"SELECT count(*) FROM {S}.house_plain")).scalar_one()
    return {"districts": sizes, "houses": n_house}


def _ms(conn: Connection, *steps: tuple[str, dict] | str, fetch: bool = False) -> float:
    """Run the statements in order (``(sql, params)`` or ``sql``); the time they took together, ms."""
    t0 = time.perf_counter()
    for step in steps:
        sql, params = (step, {}) if isinstance(step, str) else step
        result = conn.execute(text(sql), params)
        if fetch:
            result.fetchall()
    return 1000 * (time.perf_counter() - t0)


def _stage(conn: Connection, a: str, h: str, cols: str, r: dict) -> None:
    """The district's address and house rows, copied aside for this transaction (untimed)."""
    conn.execute(text(f"CREATE TEMP TABLE stage_a ON COMMIT DROP AS SELECT {cols} FROM {a} "
                      "WHERE code >= :lo AND code < :hi"), r)
    conn.execute(text(f"CREATE TEMP TABLE stage_h ON COMMIT DROP AS SELECT * FROM {h} "
                      "WHERE address_code >= :lo AND address_code < :hi"), r)


BBOX_PAGE = """SELECT json_build_object('type', 'Feature', 'id', t.id, 'geometry', ST_AsGeoJSON(t.geom)::json,
    'properties', json_build_object('code', t.code, 'full_text', t.full_text))
    FROM {a} t WHERE t.valid_to IS NULL AND t.status = 'active' AND t.level IN ('road', 'house_number', 'building')
    AND t.geom IS NOT NULL AND t.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) ORDER BY t.id LIMIT 100"""


def one_round(engine, district: str, codes: list[str], house_codes: list[str], boxes: list[tuple]) -> dict:
    """Every measured operation once on each table; ms."""
    out: dict[str, float] = {}
    lo, hi = district, _upper(district)
    r = {"d": district, "lo": lo, "hi": hi}
    with engine.connect() as conn:
        cols = _columns(conn, "standard_address")
        for kind in ("plain", "part"):
            a, h = f"{S}.addr_{kind}", f"{S}.house_{kind}"
            out[f"district_by_column_{kind}"] = _ms(conn, (
                f"SELECT code, full_text, ST_AsText(geom) FROM {a} WHERE district_code = :d AND valid_to IS NULL",
                r), fetch=True)
            out[f"district_by_range_{kind}"] = _ms(conn, (
                f"SELECT code, full_text, ST_AsText(geom) FROM {a} WHERE code >= :lo AND code < :hi "
                "AND valid_to IS NULL", r), fetch=True)
            out[f"district_houses_{kind}"] = _ms(conn, (
                f"SELECT address_code, use FROM {h} WHERE address_code >= :lo AND address_code < :hi "
                "AND valid_to IS NULL", r), fetch=True)
            out[f"code_lookup_{kind}"] = statistics.median(
                _ms(conn, (f"SELECT * FROM {a} WHERE code = :c AND valid_to IS NULL", {"c": c}), fetch=True)
                for c in codes)
            out[f"house_lookup_{kind}"] = statistics.median(
                _ms(conn, (f"SELECT * FROM {h} WHERE address_code = :c AND valid_to IS NULL", {"c": c}), fetch=True)
                for c in house_codes)
            out[f"bbox_page_{kind}"] = statistics.median(
                _ms(conn, (BBOX_PAGE.format(a=a), {"x0": x0, "y0": y0, "x1": x1, "y1": y1}), fetch=True)
                for x0, y0, x1, y1 in boxes)
            out[f"stamp_max_id_{kind}"] = _ms(conn, f"SELECT coalesce(max(id), 0) FROM {a}", fetch=True)
            out[f"count_star_{kind}"] = _ms(conn, f"SELECT count(*) FROM {a}", fetch=True)
        conn.rollback()
    # writes: each in its own transaction, committed (the table keeps the same rows)
    for kind in ("plain", "part"):
        a, h = f"{S}.addr_{kind}", f"{S}.house_{kind}"
        ia, ih = INSERT_A.format(a=a, cols=cols), INSERT_H.format(h=h)
        out.update(_reimport_then_vacuum(engine, kind, district, cols, ("analyze_whole", "ANALYZE")))
        if kind == "part":
            with engine.begin() as conn:
                _stage(conn, a, h, cols, r)
                out["reimport_truncate_part"] = _ms(conn, f"TRUNCATE {a}_{district}", ia)
                out["house_reimport_truncate_part"] = _ms(conn, f"TRUNCATE {h}_{district}", ih)
        # retiring a district's rows: DELETE (plain) vs detach + drop of its partition; put back untimed
        with engine.begin() as conn:
            _stage(conn, a, h, cols, r)
            if kind == "plain":
                out["drop_district_plain"] = _ms(conn, (f"DELETE FROM {a} WHERE code >= :lo AND code < :hi", r))
                out["house_drop_district_plain"] = _ms(
                    conn, (f"DELETE FROM {h} WHERE address_code >= :lo AND address_code < :hi", r))
            else:
                out["drop_district_part"] = _ms(conn, f"ALTER TABLE {a} DETACH PARTITION {a}_{district}",
                                                f"DROP TABLE {a}_{district}")
                out["house_drop_district_part"] = _ms(conn, f"ALTER TABLE {h} DETACH PARTITION {h}_{district}",
                                                      f"DROP TABLE {h}_{district}")
                for t in (a, h):
                    conn.execute(text(f"CREATE TABLE {t}_{district} PARTITION OF {t} "
                                      f"FOR VALUES FROM ('{lo}') TO ('{hi}')"))
            conn.execute(text(ia))
            conn.execute(text(ih))
        with engine.connect() as conn:
            raw = conn.execution_options(isolation_level="AUTOCOMMIT")
            raw.execute(text(f"VACUUM (ANALYZE) {a}"))
            raw.execute(text(f"VACUUM (ANALYZE) {h}"))
    return {k: round(v, 2) for k, v in out.items()}


INSERT_A = "INSERT INTO {a} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM stage_a"
INSERT_H = "INSERT INTO {h} OVERRIDING SYSTEM VALUE SELECT * FROM stage_h"


def _reimport_then_vacuum(engine, kind: str, district: str, cols: str, whole: tuple[str, str]) -> dict[str, float]:
    """A re-import of the district into the ``kind`` tables (DELETE + INSERT from the staged rows, committed),
    then VACUUM (ANALYZE) of what it touched (the whole plain table, or the district's partition), then the
    ``whole`` step (label, SQL verb) on the whole address table; ms."""
    out: dict[str, float] = {}
    r = {"lo": district, "hi": _upper(district)}
    a, h = f"{S}.addr_{kind}", f"{S}.house_{kind}"
    with engine.begin() as conn:
        _stage(conn, a, h, cols, r)
        out[f"reimport_delete_{kind}"] = _ms(conn, (f"DELETE FROM {a} WHERE code >= :lo AND code < :hi", r),
                                             INSERT_A.format(a=a, cols=cols))
        out[f"house_reimport_delete_{kind}"] = _ms(
            conn, (f"DELETE FROM {h} WHERE address_code >= :lo AND address_code < :hi", r), INSERT_H.format(h=h))
    with engine.connect() as conn:
        raw = conn.execution_options(isolation_level="AUTOCOMMIT")
        target = a if kind == "plain" else f"{a}_{district}"
        htarget = h if kind == "plain" else f"{h}_{district}"
        out[f"vacuum_after_reimport_{kind}"] = _ms(raw, f"VACUUM (ANALYZE) {target}")
        out[f"house_vacuum_after_reimport_{kind}"] = _ms(raw, f"VACUUM (ANALYZE) {htarget}")
        out[f"{whole[0]}_{kind}"] = _ms(raw, f"{whole[1]} {a}")
    return out


def vacuum_round(engine, district: str) -> dict:
    """A re-import of the district (DELETE + INSERT, committed), then VACUUM (ANALYZE) of what it touched: the
    whole plain table against the district's partition (autovacuum off on all of them); ms."""
    out: dict[str, float] = {}
    with engine.connect() as conn:
        cols = _columns(conn, "standard_address")
    for kind in ("plain", "part"):
        out.update(_reimport_then_vacuum(engine, kind, district, cols, ("vacuum_whole", "VACUUM (ANALYZE)")))
    return {k: round(v, 2) for k, v in out.items()}


def main() -> None:
    from gis_api.db import database_url, sqlalchemy_url

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the bench_part schema")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reuse", action="store_true", help="use the tables a --keep run left (no set-up)")
    ap.add_argument("--ops", choices=["all", "vacuum"], default="all",
                    help="vacuum: only a district's re-import and the VACUUM after it")
    args = ap.parse_args()
    engine = create_engine(sqlalchemy_url(database_url()), pool_pre_ping=True)
    load_start = os.getloadavg()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in load_start)}", file=sys.stderr)
    with engine.begin() as conn:
        if args.reuse:
            _autovacuum_off(conn)
            info = sizes_of(conn)
        else:
            info = setup(conn)
    print(json.dumps(info, ensure_ascii=False), file=sys.stderr)
    district = next(iter(info["districts"]))
    if args.ops == "vacuum":
        vac = []
        for _ in range(args.rounds):
            vac.append(vacuum_round(engine, district))
            print(json.dumps(vac[-1]), file=sys.stderr)
        load_end = os.getloadavg()
        (ROOT / "bench-output").mkdir(exist_ok=True)
        (ROOT / "bench-output" / "partition-vacuum.json").write_text(json.dumps(
            {"load_start": load_start, "load_end": load_end, "info": info, "district": district, "rounds": vac},
            indent=1))
        _table(vac, info, district, load_start, load_end)
        return
    rng = random.Random(args.seed)
    with engine.connect() as conn:
        codes = [r[0] for r in conn.execute(text(f"SELECT code FROM {S}.addr_plain WHERE valid_to IS NULL"))]
        hcodes = [r[0] for r in conn.execute(text(f"SELECT address_code FROM {S}.house_plain WHERE valid_to IS NULL"))]
        pts = conn.execute(text(f"SELECT ST_X(geom), ST_Y(geom) FROM {S}.addr_plain WHERE level = 'house_number' "
                                "AND geom IS NOT NULL AND valid_to IS NULL")).fetchall()
    sample = rng.sample(codes, 300)
    hsample = rng.sample(hcodes, 300)
    boxes = [(x - 0.003, y - 0.0027, x + 0.003, y + 0.0027) for x, y in rng.sample(pts, 20)]
    rounds = []
    for _ in range(args.rounds):
        rounds.append(one_round(engine, district, sample, hsample, boxes))
        print(json.dumps(rounds[-1]), file=sys.stderr)
    load_end = os.getloadavg()
    if not args.keep:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {S} CASCADE"))
    out = ROOT / "bench-output"
    out.mkdir(exist_ok=True)
    (out / "partition.json").write_text(json.dumps({"load_start": load_start, "load_end": load_end, "info": info,
                                                    "district": district, "rounds": rounds}, indent=1))
    _table(rounds, info, district, load_start, load_end)


def _mmm(values: list[float]) -> str:
    return " / ".join(f"{v:,.1f}" for v in (min(values), statistics.median(values), max(values)))


def _table(rounds: list[dict], info: dict, district: str, load_start, load_end) -> None:
    n = sum(info["districts"].values())
    print(f"{n:,} address rows in {len(info['districts'])} districts, {info['houses']:,} house rows; "
          f"district {district}: {info['districts'][district]:,} address rows; {len(rounds)} rounds; "
          f"load {' '.join(f'{x:.1f}' for x in load_start)} → {' '.join(f'{x:.1f}' for x in load_end)}\n")
    print("| operation (ms, min / median / max over rounds) | plain | partitioned | plain ÷ partitioned (medians) |")
    print("|---|---:|---:|---:|")
    names = sorted({k.rsplit("_", 1)[0] for r in rounds for k in r})
    for name in names:
        p = [r[f"{name}_plain"] for r in rounds if f"{name}_plain" in r]
        q = [r[f"{name}_part"] for r in rounds if f"{name}_part" in r]
        ratio = f"{statistics.median(p) / statistics.median(q):.2f}" if p and q else ""
        print(f"| {name} | {_mmm(p) if p else '—'} | {_mmm(q) if q else '—'} | {ratio} |")


if __name__ == "__main__":
    main()
