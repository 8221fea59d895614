"""What the trigger-kept row count (migration 0017_scale_row_counter) costs a bulk write, and what it saves
the geocoder's stamp (issue 14).

On the database of ``DATABASE_URL`` (a synthetic city: `shequ demo synth`), in transactions that are rolled
back: insert R rows into ``standard_address`` with ``INSERT … SELECT`` with the counter's triggers enabled and
disabled, alternating, ``--rounds`` times; then time ``store.stamp`` against the ``count(*)`` it replaced.
Prints min / median / max.

    DATABASE_URL=… .venv/bin/python benchmarks/bench_row_counter.py [--rows 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from sqlalchemy import text

INSERT = text("""INSERT INTO standard_address (code, version, level, components, full_text, normalized_text, source,
    status, changed_by, change_reason)
    SELECT '7' || lpad(g::text, 11, '0'), 1, 'road', '{}'::jsonb, 'x' || g, 'x' || g, 'synthetic', 'active',
           'bench_row_counter', 'benchmark, rolled back' FROM generate_series(1, :n) g""")
TRIGGERS = ("shequ_address_rows_ins", "shequ_address_rows_del", "shequ_address_rows_truncate")


def _spread(xs: list[float], scale: float = 1.0) -> list[float]:
    return [round(scale * f(xs), 3) for f in (min, statistics.median, max)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from address_registry import store
    from gis_api.db import get_engine

    engine = get_engine()
    timings: dict[str, list[float]] = {"with triggers": [], "without triggers": []}
    for _ in range(args.rounds):
        for kind in timings:
            with engine.connect() as conn:
                trans = conn.begin()
                if kind == "without triggers":
                    for t in TRIGGERS:
                        conn.execute(text(f"ALTER TABLE standard_address DISABLE TRIGGER {t}"))
                t0 = time.perf_counter()
                conn.execute(INSERT, {"n": args.rows})
                timings[kind].append(time.perf_counter() - t0)
                trans.rollback()
    stamps, counts = [], []
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM standard_address")).scalar_one()
        for _ in range(20):
            t0 = time.perf_counter()
            store.stamp(conn)
            stamps.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            conn.execute(text("SELECT count(*) FROM standard_address")).scalar_one()
            counts.append(time.perf_counter() - t0)
    print(json.dumps({
        "load_average": [round(x, 2) for x in os.getloadavg()], "table_rows": rows, "inserted_rows": args.rows,
        "insert_s_min_median_max": {k: _spread(v) for k, v in timings.items()},
        "stamp_ms_min_median_max": _spread(stamps, 1000), "count_star_ms_min_median_max": _spread(counts, 1000),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
