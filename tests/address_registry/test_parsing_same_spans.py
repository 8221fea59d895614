"""The parser's run time changes no output: on the corpus's whole dev and train splits (11,942 addresses) the
shipped parser gives exactly the recorded spans, both from its memory-mapped run-time arrays and derived in
memory (``cache=False``). The speed work of issue 18 was checked this way against the spans the parser gave
before it; the golden files now hold the spans of the model fitted on train + dev (they were re-recorded
when that model replaced the train-only one, after the runtime had been shown to give the old files'
spans with the old model). No timing here: the speed
is measured by ``benchmarks/bench_parse_cli.py`` (docs/benchmarks.md, "Parsing, whole CLI")."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from address_registry.parsing.corpus import read_corpus
from address_registry.parsing.features import N_FLAGS, FeatureExtractor
from address_registry.parsing.model import AddressParser, default_parser, load_lexicon
from address_registry.parsing.normalize import tokenize_fast

DATA = Path(__file__).parent / "data"
# "label:start-end …" per address, one line each, as the shipped model (fitted on train + dev) parsed them
# when it was installed, derived in memory (cache=False)
GOLDEN = {"dev": DATA / "parse_dev_shipped.txt.gz", "train": DATA / "parse_train_shipped.txt.gz"}
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
def test_same_spans_as_recorded(parser, splits, split):
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


def _python_flags(fe: FeatureExtractor, seqs) -> np.ndarray:
    """The flags by the plain Python reference (:meth:`FeatureExtractor._flags`, the fallback without numba)."""
    total = sum(len(s) for s in seqs)
    out = np.zeros((total, N_FLAGS), np.float32)
    cells: list[int] = []
    row = 0
    for seq in seqs:
        if seq:
            fe._flags([t[0] for t in seq], row, cells)
        row += len(seq)
    out.ravel()[cells] = 1
    return out


def test_compiled_flags_equal_the_python_reference(splits):
    """The compiled gazetteer / repetition flags are the Python reference's, token for token, on the whole
    dev + train splits and on addresses made to hit the corners (a name repeated, overlapping repeats, a
    name that is a prefix of another, digit runs, NUL, an address with more distinct names than the
    kernel's first buffer holds)."""
    fe = FeatureExtractor(load_lexicon())
    assert fe._compiled_flags is not None
    names = [n for n in fe.lexicon if len(n) >= 2][:200]
    corners = [
        "浙江省杭州市杭州市西湖区西湖区文三路32号32号", "北京北京北京市市", "上海上海上海", "aaaa1212ab12ab",
        "杭州\x00杭州", "", "杭", "广西壮族自治区广西南宁市南宁", "".join(names), "".join(names[:50]) * 3,
    ]
    texts = [t for split in ("dev", "train") for t in splits[split][0]] + corners
    seqs = [tokenize_fast(t) for t in texts]
    want = _python_flags(fe, seqs)
    for size in (len(seqs), 97):
        got = np.concatenate([fe.batch(seqs[a : a + size])[1] for a in range(0, len(seqs), size)])
        assert got.shape == want.shape
        bad = np.flatnonzero((got != want).any(axis=1))
        assert not len(bad), f"{len(bad)} tokens differ, first at token {bad[0]}"
    assert want.sum() > len(texts)  # the flags are set on this data: the comparison is not over zeros
    assert want[-sum(len(s) for s in seqs[-2:]) :].sum() > 100  # the gazetteer-name corners set many


def test_compiled_keys_equal_the_numpy_reference(splits):
    """The compiled keyed features are the numpy reference's (:meth:`FeatureExtractor._keys`, the fallback
    without numba), bit for bit, on the whole dev + train splits and a few corner addresses."""
    fe = FeatureExtractor(load_lexicon())
    kernel = fe._compiled_keys
    assert kernel is not None
    seen = []

    def spy(*args):
        seen.append(args)
        return kernel(*args)

    fe._compiled_keys = spy
    texts = [t for split in ("dev", "train") for t in splits[split][0]]
    texts += ["", "号号号1号2号", "ab12AB３４", "浙江省杭州市西湖区文三路32号3幢2单元501室", "\x00", "  ", "杭"]
    for size in (len(texts), 31):
        got = np.concatenate([fe.batch([tokenize_fast(t) for t in texts[a : a + size]])[0]
                              for a in range(0, len(texts), size)])  # fmt: skip
        want = np.concatenate([fe._keys(*args) for args in seen])
        seen.clear()
        assert got.dtype == want.dtype == np.uint64 and got.shape == want.shape
        bad = np.flatnonzero((got != want).any(axis=1))
        assert not len(bad), f"{len(bad)} tokens differ, first at token {bad[0]}"
    assert len(np.unique(want[:, 1])) > 1000  # real, varied keys (one per distinct character, at least)


def test_batch_span_building_equals_the_token_loop(splits):
    """spans_many builds the spans for a whole batch with numpy; the plain token-by-token loop it replaced
    (kept as ``_spans_reference``) gives the same spans, empty and blank addresses included."""
    parser = default_parser()
    texts = splits["dev"][0][:1500] + ["", "   ", "杭州", "", "浙江省杭州市西湖区文三路32号3幢2单元501室", ""]
    want = parser._spans_reference(texts)
    assert parser.spans_many(texts) == want
    assert parser.spans_many(texts, batch_size=5) == want
    assert want[-1] == [] and want[-6] == [] and len(want[-2]) >= 6


def test_threads_sharing_a_fresh_parser_get_the_same_spans(splits):
    """One parser serves many threads (the API): threads that meet new tokens at the same time, each adding
    them to the shared token table, still parse every address to its expected spans."""
    from concurrent.futures import ThreadPoolExecutor

    texts, want = splits["dev"]
    parser = AddressParser()  # its token table starts empty
    chunks = [list(range(i, 1200, 4)) for i in range(4)]

    def run(idx: list[int]) -> list[str]:
        return [_spans_text(s) for a in range(0, len(idx), 3)
                for s in parser.spans_many([texts[i] for i in idx[a : a + 3]])]  # fmt: skip

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, chunks))
    for idx, got in zip(chunks, results, strict=True):
        assert got == [want[i] for i in idx]
    assert len(parser.features._token_row) > 500  # the threads did fill the table
