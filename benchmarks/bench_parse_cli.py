"""Whole-CLI parsing throughput (issue 18): `shequ parse --jsonl` on 3,000 addresses, start-up included.

Inputs: the first 3,000 addresses of the corpus's train split (../shared/data/address-parsing/train.txt;
text only, one per line). Each run is a fresh `python -m gis_api.cli parse --jsonl < in.txt` process,
timed from launch to exit (interpreter start-up, imports, model load, numba kernels from their on-disk
cache, parsing, output). Two cases:

* cold: the numba cache of address_registry/parsing deleted first, i.e. the first call after an install
  that did not warm it (what `make venv` now does: see the Makefile's `warm` target);
* warm: the cache present (3 runs: min / median / max).

    .venv/bin/python benchmarks/bench_parse_cli.py [--skip-cold]

Raw results: bench-output/parse_cli.json; figures in docs/benchmarks.md, section "Parsing, whole CLI (issue 18)".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
N = 3000
CACHE_DIR = ROOT / "address_registry" / "parsing" / "__pycache__"


def _inputs() -> Path:
    from address_registry.parsing.corpus import read_corpus
    from gis_api.settings import get_settings

    shared = Path(os.environ.get("SHEQU_SHARED_DATA_DIR", get_settings().shared_data_dir))
    texts = []
    for g in read_corpus(shared / "address-parsing" / "train.txt"):
        texts.append(g.text.replace("\n", " "))
        if len(texts) == N:
            break
    dest = ROOT / "var" / "parse_cli_inputs.txt"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text("\n".join(texts) + "\n", encoding="utf-8")
    return dest


def _run(inp: Path) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    with inp.open("rb") as f:
        p = subprocess.run([sys.executable, "-m", "gis_api.cli", "parse", "--jsonl"], stdin=f,
                           capture_output=True, cwd=ROOT, env=env, timeout=600)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(p.stderr.decode()[-2000:])
    return wall, len(p.stdout.splitlines())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-cold", action="store_true")
    args = ap.parse_args(argv)
    inp = _inputs()
    out: dict = {"addresses": N, "load_before": ", ".join(f"{x:.2f}" for x in os.getloadavg())}
    if not args.skip_cold:
        for f in CACHE_DIR.glob("*.nb[ic]"):  # numba's index and compiled-kernel files only
            f.unlink()
        wall, n = _run(inp)
        out["cold_seconds"], out["cold_rate"] = wall, n / wall
    warm = []
    for _ in range(3):
        wall, n = _run(inp)
        assert n == N, n
        warm.append(wall)
    warm.sort()
    out["warm_seconds"] = warm
    out["warm_rate_min_median_max"] = [N / warm[-1], N / warm[1], N / warm[0]]
    out["load_after"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    dest = ROOT / "bench-output" / "parse_cli.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
