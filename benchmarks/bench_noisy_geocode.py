"""Noisy geocodes per second on one core (issue 14's ≥ 5,000 target at 10⁶), in-process, no server.

    .venv/bin/python benchmarks/bench_noisy_geocode.py --size 1000000                  # the 10⁶ city, with and without the parser
    .venv/bin/python benchmarks/bench_noisy_geocode.py --size 3000000 --tiles 3 --no-parser
    .venv/bin/python benchmarks/bench_noisy_geocode.py --size 10000000 --tiles 9 --no-parser   # ~10 GB of memory

The synthetic city of ``--size`` addresses (`address_registry.synth`, seed 1; ``--tiles K`` as `shequ demo synth
--tiles K`) is grown in memory and its geocoder built from the records (as `bench_scale.py` does); 2,000 noisy
forms of 1,200 seeded active addresses (`address_registry.noisy`, as `bench_growth.py` sends to the API) are
geocoded in three passes on one pinned core, after 200 warm-up queries. Printed per pass: queries per second by
wall and per CPU-second (process time), with and without the free-text parser's fallback.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def noisy_texts(records, aliases, seed: int, n: int = 2000) -> list[str]:
    """``n`` noisy forms of 1,200 seeded active addresses (roads to rooms), shuffled."""
    from address_registry.noisy import noisy_queries

    levels = ("road", "house_number", "building", "unit", "floor", "room")
    rng = random.Random(seed)
    sample = rng.sample([r for r in records if r.level in levels], 1200)
    roads = sorted({r.components.get("road", "") for r in records if r.level == "road"})
    texts = [q for _, q, _ in noisy_queries(sample, aliases, seed=seed, road_names=roads)]
    rng.shuffle(texts)
    return texts[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--tiles", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-parser", action="store_true", help="only the geocoder without the parser's fallback")
    args = ap.parse_args()
    from address_registry import geocoder_cache, synth
    from address_registry.geocoder import Geocoder

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    shared = Path(os.environ.get("SHEQU_SHARED_DATA_DIR", ROOT.parent / "shared" / "data"))
    inputs = synth.inputs_from_files(shared)
    records, aliases = [], []
    for _base, city in synth.grow_tiles(inputs["roads"], inputs["districts"], args.size, args.tiles, seed=args.seed,
                                        admin_names=inputs["admin_names"]):
        records += city.records
        aliases += city.aliases
    texts = noisy_texts(records, aliases, args.seed)
    print(f"{len(records):,} addresses in {args.tiles} tile(s); {len(texts)} noisy queries; "
          f"load {os.getloadavg()}", flush=True)
    parsers = [("no parser", None)] + ([] if args.no_parser else [("parser fallback", geocoder_cache.free_text_parser())])
    for label, parser in parsers:
        g = Geocoder(records, aliases, road_lines=synth.road_lines(inputs["roads"]), parser=parser)
        for q in texts[:200]:
            g.geocode(q, 5)
        for rep in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            for q in texts:
                g.geocode(q, 5)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"{label}: pass {rep + 1}: {len(texts) / wall:,.0f} /s by wall, {len(texts) / cpu:,.0f} per CPU-second",
                  flush=True)


if __name__ == "__main__":
    main()
