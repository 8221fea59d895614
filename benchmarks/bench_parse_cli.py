"""Whole-CLI parsing throughput (issue 18): `shequ parse --jsonl` on 3,000 addresses, start-up included.

Inputs: the first 3,000 addresses of the corpus's train split (../shared/data/address-parsing/train.txt;
text only, one per line). Each run is a fresh `python -m gis_api.cli parse --jsonl < in.txt` process,
timed from launch to exit (interpreter start-up, imports, model load, numba kernels from their on-disk
cache, parsing, output). Two cases:

* cold: the numba cache of address_registry/parsing and the parser's saved run-time arrays
  (``parser-arrays-*.bin``, see address_registry/parsing/_arrays.py) deleted first, i.e. the first call
  after an install that did not warm them (what `make venv` does: see the Makefile's `var/.numba-warm`);
* warm: both caches present (``--runs`` runs, default 5: min / median / max);
* one address: ``shequ parse <one address>`` (same number of runs), the fixed start-up cost.

``--in-process``: also the in-process rate of ``parse_many`` on the dev split (2,985 addresses), pinned to
one core, best of 3, by wall and by CPU time (what ``bench_parse.py`` measures, without its cpca part).

Each run's wall time and CPU time (user + system of the child, from ``getrusage``) are recorded, with the
load average before and after, since the machine is shared.

    .venv/bin/python benchmarks/bench_parse_cli.py [--skip-cold] [--runs 5] [--in-process]

Raw results: bench-output/parse_cli.json; figures in docs/benchmarks.md, section "Parsing, whole CLI (issue 18)".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
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


def _run(inp: Path | None) -> tuple[float, float, int]:
    """(wall s, CPU s, output lines) of one fresh process: 3,000 lines on stdin, or one address argument."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["parse", "--jsonl"] if inp is not None else ["parse", "--jsonl", "浙江省杭州市西湖区文三路90号"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    with (inp.open("rb") if inp is not None else open(os.devnull, "rb")) as f:
        p = subprocess.run([sys.executable, "-m", "gis_api.cli", *args], stdin=f,
                           capture_output=True, cwd=ROOT, env=env, timeout=600)  # fmt: skip
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.decode()[-2000:])
    return wall, cpu, len(p.stdout.splitlines())


def _spread(xs: list[float]) -> list[float]:
    """min / median / max."""
    return [round(min(xs), 3), round(statistics.median(xs), 3), round(max(xs), 3)]


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _in_process() -> dict:
    """parse_many's rate in this process on the dev split, one core, best of 3 (wall and CPU)."""
    from address_registry.parsing import default_parser
    from address_registry.parsing.corpus import read_corpus
    from gis_api.settings import get_settings

    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    except (AttributeError, OSError):
        pass
    shared = Path(os.environ.get("SHEQU_SHARED_DATA_DIR", get_settings().shared_data_dir))
    texts = [g.text for g in read_corpus(shared / "address-parsing" / "dev.txt")]
    parser = default_parser()
    parser.parse_many(texts[:10])
    out = {"addresses": len(texts), "load_before": _load()}
    for name, clock in (("per_s_wall", time.perf_counter), ("per_cpu_s", time.process_time)):
        best = float("inf")
        for _ in range(3):
            t0 = clock()
            parser.parse_many(texts)
            best = min(best, clock() - t0)
        out[name] = round(len(texts) / best, 1)
    out["load_after"] = _load()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-cold", action="store_true")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--in-process", action="store_true")
    args = ap.parse_args(argv)
    inp = _inputs()
    out: dict = {"addresses": N, "load_before": _load(), "runs": args.runs}
    if not args.skip_cold:
        for f in [*CACHE_DIR.glob("*.nb[ic]"), *CACHE_DIR.glob("parser-arrays-*.bin")]:
            f.unlink()  # numba's index and compiled-kernel files, the parser's saved arrays
        wall, cpu, n = _run(inp)
        assert n == N, n
        out["cold"] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "rate": round(n / wall, 1)}
    for case, source in (("warm", inp), ("one_address", None)) if args.runs > 0 else ():
        walls, cpus, loads = [], [], []
        for _ in range(args.runs):
            load = _load()
            wall, cpu, n = _run(source)
            assert n == (N if source is not None else 1), n
            walls.append(wall)
            cpus.append(cpu)
            loads.append([load, _load()])
        out[case] = {"wall_s": walls, "cpu_s": cpus, "load_before_after": loads,
                     "wall_min_median_max": _spread(walls), "cpu_min_median_max": _spread(cpus)}  # fmt: skip
        if source is not None:
            out[case]["rate_by_wall_min_median_max"] = _spread([N / w for w in walls])
            out[case]["rate_by_cpu_min_median_max"] = _spread([N / c for c in cpus])
    out["load_after"] = _load()
    if args.in_process:
        out["in_process"] = _in_process()
    dest = ROOT / "bench-output" / "parse_cli.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k not in ("warm", "one_address")} | {
        c: {k: v for k, v in out[c].items() if k.endswith("max")} for c in ("warm", "one_address") if c in out},
        indent=2))


if __name__ == "__main__":
    main()
