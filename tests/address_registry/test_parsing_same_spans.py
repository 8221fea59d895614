"""The parser's speed work (issue 18, ≥ 5,000 addresses/s per core) changes no output: on the corpus's whole
dev and train splits (11,942 addresses) the shipped parser gives exactly the spans it gave before, both
from its memory-mapped run-time arrays and derived in memory (``cache=False``). No timing here: the speed
is measured by ``benchmarks/bench_parse_cli.py`` (docs/benchmarks.md, "Parsing, whole CLI")."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from address_registry.parsing.corpus import read_corpus
from address_registry.parsing.model import AddressParser, default_parser

DATA = Path(__file__).parent / "data"
# "label:start-end …" per address, one line each, as the parser gave them before the speed work: dev from
# commit 4ac03b9 (kept by test_parsing_startup.py), train from commit 50d6f33 (the same spans on dev)
GOLDEN = {"dev": DATA / "parse_dev_before_issue18.txt.gz", "train": DATA / "parse_train_before_issue18_speed.txt.gz"}
SIZES = {"dev": 2985, "train": 8957}


def _spans_text(spans) -> str:
    return " ".join(f"{lab}:{a}-{b}" for lab, a, b in spans)


@pytest.fixture(scope="module")
def splits(shared_data) -> dict[str, tuple[list[str], list[str]]]:
    out = {}
    for split, path in GOLDEN.items():
        texts = [g.text for g in read_corpus(shared_data / "address-parsing" / f"{split}.txt")]
        with gzip.open(path, "rt", encoding="utf-8") as f:
            out[split] = (texts, f.read().splitlines())
    return out


@pytest.fixture(scope="module", params=["memory-mapped", "derived"])
def parser(request) -> AddressParser:
    return default_parser() if request.param == "memory-mapped" else AddressParser(cache=False)


@pytest.mark.parametrize("split", ["dev", "train"])
def test_same_spans_as_before_the_speed_work(parser, splits, split):
    texts, want = splits[split]
    assert len(texts) == len(want) == SIZES[split]
    got = [_spans_text(s) for s in parser.spans_many(texts)]
    diff = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    assert not diff, f"{len(diff)} addresses differ; first {texts[diff[0]]!r}: now {got[diff[0]]!r}, before {want[diff[0]]!r}"
    # the golden files are real parses, not empty lines: most addresses have several spans
    assert sum(line.count(":") for line in want) > 5 * len(want)


def test_batch_boundaries_do_not_change_spans(parser, splits):
    """The networks and the decoder group addresses by length inside a batch: parsing in small batches, or
    one at a time, gives the same spans as one big batch."""
    texts, want = splits["dev"]
    texts, want = texts[:300], want[:300]
    assert [_spans_text(s) for s in parser.spans_many(texts, batch_size=7)] == want
    assert [_spans_text(parser.spans(t)) for t in texts[:60]] == want[:60]
