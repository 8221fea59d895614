"""A fresh `shequ parse` process (issue 18): same results as before the start-up work, only the modules it
needs, numba kernels and run-time arrays loaded from their caches (from any working directory)."""

from __future__ import annotations

import gzip
import json
import mmap
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from address_registry.parsing import _arrays
from address_registry.parsing.corpus import read_corpus
from address_registry.parsing.model import AddressParser, default_parser

REPO = Path(__file__).resolve().parents[2]
# spans of the dev split's 2,985 addresses as the shipped model gave them when it was installed (the start-up
# work of issue 18 was checked against the spans from before it, on the model of that time), one line per
# address: "label:start-end …"
GOLDEN = Path(__file__).parent / "data" / "parse_dev_shipped.txt.gz"
# what a parse process must not load: the web / database / GIS stack, typer's pydantic adapters, scipy's
# sparse and linalg packages (numba needs only scipy.linalg.cython_blas: see address_registry/parsing/_blas.py)
HEAVY = ("fastapi", "starlette", "sqlalchemy", "psycopg", "psycopg2", "geopandas", "shapely", "pyproj",
         "pydantic", "alembic", "uvicorn", "scipy.sparse", "scipy.linalg")  # fmt: skip


def _memory_owner(a: np.ndarray) -> object:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a.base.obj if isinstance(a.base, memoryview) else a.base


def _spans_text(spans) -> str:
    return " ".join(f"{lab}:{a}-{b}" for lab, a, b in spans)


@pytest.fixture(scope="module")
def dev_texts(shared_data) -> list[str]:
    return [g.text for g in read_corpus(shared_data / "address-parsing" / "dev.txt")]


@pytest.fixture(scope="module")
def golden() -> list[str]:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def _first_difference(texts, got: list[str], want: list[str]) -> str:
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if g != w:
            return f"address {i} {texts[i]!r}: now {g!r}, before {w!r}"
    return ""


def test_shipped_parser_gives_the_recorded_spans_on_dev(dev_texts, golden):
    """The memory-mapped shipped model and the one derived in memory (cache=False) both parse the 2,985
    dev addresses exactly as recorded."""
    assert len(golden) == len(dev_texts) == 2985
    cached = [_spans_text(s) for s in default_parser().spans_many(dev_texts)]
    assert cached == golden, _first_difference(dev_texts, cached, golden)
    derived = [_spans_text(s) for s in AddressParser(cache=False).spans_many(dev_texts)]
    assert derived == golden, _first_difference(dev_texts, derived, golden)


_PROBE = """
import json, sys
sys.argv = ["shequ", "parse", "--jsonl"]
from gis_api.cli import app          # what the `shequ` console script runs
app()
from address_registry.parsing import _decode, _flags, _keys, _lstm
stats = {name: [sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values())]
         for name, f in (("decode", _decode.decode), ("emissions", _lstm.emissions), ("flags", _flags.flags),
                         ("keys", _keys.keys))}
with open(OUT, "w") as out:
    json.dump({"modules": sorted(sys.modules), "kernels": stats}, out)
"""


def _run_cli(tmp_path: Path, lines: list[str], name: str) -> tuple[list[dict], dict]:
    """`shequ parse --jsonl` in a fresh process started in ``tmp_path`` (not the checkout); its output and
    what it had loaded."""
    report = tmp_path / f"{name}.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", f"OUT = {str(report)!r}\n" + _PROBE],
        input=("\n".join(lines) + "\n").encode("utf-8"), capture_output=True, cwd=tmp_path, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    records = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]
    return records, json.loads(report.read_text())


def test_cli_process_loads_only_the_parser_from_its_caches(tmp_path, dev_texts, golden):
    """A fresh `shequ parse --jsonl` process started outside the checkout: the recorded spans,
    none of the heavy modules imported, the numba kernels loaded from numba's cache (not compiled)."""
    texts = dev_texts[:400]
    records, seen = _run_cli(tmp_path, texts, "first")
    if any(misses for _hits, misses in seen["kernels"].values()):
        # a checkout whose cache was never warmed (`make` warms it): the first process compiled and saved
        # the kernels; the next one must load them
        records, seen = _run_cli(tmp_path, texts, "second")
    got = [_spans_text((c["label"], c["start"], c["end"]) for c in r["components"]) for r in records]
    assert [r["text"] for r in records] == texts
    assert got == golden[:400], _first_difference(texts, got, golden)
    loaded = set(seen["modules"])
    heavy = [m for m in loaded if m in HEAVY or m.startswith(tuple(h + "." for h in HEAVY))]
    assert heavy == ["scipy.linalg.cython_blas"], heavy  # that extension alone, without its package
    assert "numba" in loaded  # the compiled path did run
    # [cache hits, misses] per kernel
    assert seen["kernels"] == {"decode": [1, 0], "emissions": [1, 0], "flags": [1, 0], "keys": [1, 0]}


def test_fast_path_and_typer_path_print_the_same(dev_texts):
    """`shequ parse` taken by the fast path (the process's own argv) and by typer (in-process CliRunner)
    print the same bytes, both as JSON lines and as the table; other forms go to typer."""
    from typer.testing import CliRunner

    from gis_api.cli import app
    from gis_api.commands.parse import fast_main

    assert not fast_main(["--help"]) and not fast_main(["--jsonl", "--bogus"]) and not fast_main(["-x"])
    args = [dev_texts[0], dev_texts[1]]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for extra in (["--jsonl"], []):
        fast = subprocess.run([sys.executable, "-m", "gis_api.cli", "parse", *extra, *args], capture_output=True,
                              env=env, cwd=REPO, timeout=300)  # fmt: skip
        assert fast.returncode == 0, fast.stderr.decode()
        typed = CliRunner().invoke(app, ["parse", *extra, *args])
        assert typed.exit_code == 0, typed.output
        assert fast.stdout.decode("utf-8") == typed.stdout
    bogus = subprocess.run([sys.executable, "-m", "gis_api.cli", "parse", "--bogus"], capture_output=True, env=env,
                           cwd=REPO, timeout=300)  # fmt: skip
    assert bogus.returncode == 2 and "--bogus" in bogus.stderr.decode()


def test_run_time_arrays_are_saved_mapped_and_rebuilt(tmp_path, monkeypatch, dev_texts):
    """The shipped model's arrays: derived and saved on first use, memory-mapped (bit for bit the derived
    ones) afterwards; a damaged file is rebuilt; another weight file's stamp is another key."""
    monkeypatch.setenv("SHEQU_PARSER_CACHE_DIR", str(tmp_path))
    texts = dev_texts[:300]
    built = AddressParser()  # nothing in tmp_path yet: derives and saves
    files = list(tmp_path.glob("parser-arrays-*.bin"))
    assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o644"
    mapped = AddressParser()
    assert isinstance(_memory_owner(mapped.model.keys), mmap.mmap)  # read from the file, not derived
    assert built.model.labels == mapped.model.labels
    for a, b in ((built.model.arrays(), mapped.model.arrays()),
                 *((m.arrays(), n.arrays()) for m, n in zip(built.neural.members, mapped.neural.members,
                                                              strict=True))):  # fmt: skip
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    assert mapped.spans_many(texts) == built.spans_many(texts)

    files[0].write_bytes(files[0].read_bytes()[:100_000])  # truncated
    rebuilt = AddressParser()
    assert not isinstance(_memory_owner(rebuilt.model.keys), mmap.mmap)
    assert rebuilt.spans_many(texts) == built.spans_many(texts)
    assert files[0].stat().st_size > 100_000  # saved again

    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    key = _arrays.cache_key([other])
    os.utime(other, ns=(1, 1))
    assert _arrays.cache_key([other]) != key
    assert _arrays.load("0" * 20) is None


def test_fast_path_reader_going_away_exits_quietly(dev_texts):
    """`shequ parse --jsonl … | head -1`: exit status 1 and no traceback, as typer's path does."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "gis_api.cli", "parse", "--jsonl"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(("\n".join(dev_texts[:2500]) + "\n").encode("utf-8"))  # ≈ 400 kB of output: > a pipe
    proc.stdin.close()
    assert json.loads(proc.stdout.readline())["text"] == dev_texts[0]
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 1
    assert "Traceback" not in err and "BrokenPipe" not in err, err
