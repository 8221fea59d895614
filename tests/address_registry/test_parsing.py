"""Address parser: offsets on full-width / noisy text, numerals, variants, the decoders' agreement. The shipped
model is fitted on train + dev, so its accuracy is measured on addresses it never saw in
``test_parser_fixed_fold.py`` (fold 0 of the cross-validation, with that fold's models); the dev texts here
are only inputs."""

from __future__ import annotations

import pytest

from address_registry.parsing import LABELS, Component, parse, parse_many
from address_registry.parsing.corpus import read_corpus


@pytest.fixture(scope="module")
def dev(shared_data):
    return list(read_corpus(shared_data / "address-parsing" / "dev.txt"))


def labels_of(comps: list[Component]) -> dict[str, str]:
    return {c.label: c.text for c in comps}


def check_offsets(text: str, comps: list[Component]) -> None:
    """Every component is the original text at its offsets; components are in order, non-overlapping."""
    for c in comps:
        assert 0 <= c.start < c.end <= len(text)
        assert text[c.start : c.end] == c.text
        assert c.label in LABELS
    assert all(a.end <= b.start for a, b in zip(comps, comps[1:], strict=False))


def test_parse_many_equals_parse(dev):
    texts = [g.text for g in dev[:50]]
    assert parse_many(texts) == [parse(t) for t in texts]


def test_components_are_frozen():
    comp = parse("浙江省杭州市")[0]
    with pytest.raises(AttributeError):
        comp.label = "x"  # type: ignore[misc]


def test_typical_address():
    text = "浙江省杭州市西湖区文三路32号3幢2单元501室"
    comps = parse(text)
    check_offsets(text, comps)
    assert labels_of(comps) == {
        "prov": "浙江省", "city": "杭州市", "district": "西湖区", "road": "文三路", "roadno": "32号",
        "houseno": "3幢", "cellno": "2单元", "roomno": "501室",
    }  # fmt: skip
    road = next(c for c in comps if c.label == "road")
    assert (road.start, road.end) == (9, 12)


def test_full_width_offsets_match_half_width():
    half = "浙江省杭州市西湖区文三路32号3幢2单元501室"
    full = "浙江省杭州市西湖区文三路３２号３幢２单元５０１室"
    a, b = parse(half), parse(full)
    check_offsets(full, b)
    assert [(c.label, c.start, c.end) for c in a] == [(c.label, c.start, c.end) for c in b]
    assert labels_of(b)["roadno"] == "３２号"


def test_chinese_numerals_keep_original_text():
    text = "浙江省杭州市西湖区文三路三十二号三幢二单元五零一室"
    comps = parse(text)
    check_offsets(text, comps)
    got = labels_of(comps)
    assert got["road"] == "文三路"
    assert got["roadno"] == "三十二号"
    assert got["houseno"] == "三幢"
    assert got["cellno"] == "二单元"
    assert got["roomno"] == "五零一室"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("杭州市西湖区文三路32号3栋2单元501室", {"houseno": "3栋", "cellno": "2单元", "roomno": "501室"}),
        ("杭州市西湖区文三路32号3号楼2单元501室", {"houseno": "3号楼", "roomno": "501室"}),
        ("杭州市西湖区文三路32号A座1201室", {"houseno": "A座", "roomno": "1201室"}),
        ("杭州市西湖区文三路32号3幢2门501室", {"houseno": "3幢"}),
    ],
)
def test_variant_words(text, expected):
    comps = parse(text)
    check_offsets(text, comps)
    got = labels_of(comps)
    assert got["road"] == "文三路" and got["roadno"] == "32号"
    for lab, val in expected.items():
        assert got.get(lab) == val, (lab, got)


def test_missing_levels():
    text = "文三路32号3幢2单元501室"
    got = labels_of(parse(text))
    assert "prov" not in got and "city" not in got
    assert got["road"] == "文三路" and got["roadno"] == "32号" and got["roomno"] == "501室"
    got = labels_of(parse("西湖区文三路"))
    assert got == {"district": "西湖区", "road": "文三路"}


@pytest.mark.parametrize(
    "text",
    [
        "  浙江省 杭州市 西湖区  文三路32号，3幢 2单元 501室。 ",
        "浙江省杭州市西湖区文三路32号 张三 13812345678",
        "收货人：李四，电话 0571-88886666，浙江省杭州市西湖区文三路３２号",
        "【浙江省】杭州市/西湖区 文三路 32 号",
        "\t浙江省\u3000杭州市\u00a0西湖区文三路32号\r",
    ],
)
def test_noisy_inputs_keep_offsets(text):
    comps = parse(text)
    check_offsets(text, comps)
    got = labels_of(comps)
    assert got.get("city") == "杭州市"
    assert got.get("district") == "西湖区"


def test_empty_and_blank():
    assert parse("") == []
    assert parse_many(["", "   "])[0] == []
    check_offsets("   ", parse_many(["", "   "])[1])


def test_compiled_and_numpy_decoders_agree(dev):
    """The numba decoder and the numpy fallback give identical spans (exact Viterbi both)."""
    from address_registry.parsing import AddressParser

    texts = [g.text for g in dev[:400]] + ["", "浙江省杭州市", "ＡＢ座三十二号"]
    fast = AddressParser(use_numba=True)
    plain = AddressParser(use_numba=False)
    assert plain.model._compiled is None and fast.model._compiled is not None
    assert fast.spans_many(texts) == plain.spans_many(texts)


def test_bilstm_emissions_are_in_use(dev):
    """The shipped parser runs its three BiLSTMs, and their scores change what is parsed (their lift on
    unseen addresses is asserted in test_parser_fixed_fold.py)."""
    from address_registry.parsing import AddressParser, default_parser

    assert default_parser().neural is not None and len(default_parser().neural.members) == 3
    texts = [g.text for g in dev[:1000]]
    both = AddressParser().spans_many(texts)
    crf_only = AddressParser(neural_path=None).spans_many(texts)
    assert sum(a != b for a, b in zip(both, crf_only, strict=True)) > 20


def test_compiled_and_numpy_bilstm_agree(dev):
    """The numba BiLSTM (rational tanh) and the numpy one give the same emissions to float32 precision."""
    import numpy as np

    from address_registry.parsing import default_parser
    from address_registry.parsing.model import NEURAL_PATH
    from address_registry.parsing.neural import NeuralEmitter
    from address_registry.parsing.normalize import tokenize_fast

    parser = default_parser()
    fast = NeuralEmitter(NEURAL_PATH, parser.model.labels, use_numba=True)
    plain = NeuralEmitter(NEURAL_PATH, parser.model.labels, use_numba=False)
    assert fast._compiled is not None and plain._compiled is None
    toks = [tokenize_fast(g.text) for g in dev[:300]] + [[], tokenize_fast("ＡＢ座三十二号")]
    _, flags, lengths = parser.features.batch(toks)
    a, b = fast.emissions(toks, flags, lengths), plain.emissions(toks, flags, lengths)
    assert a.shape == b.shape == (int(lengths.sum()), len(parser.model.labels))
    np.testing.assert_allclose(a, b, atol=2e-3)
    assert np.abs(a).max() > 1.0  # real scores, not zeros


def test_bilstm_weights_must_match_the_crf_tag_set(tmp_path):
    import numpy as np

    from address_registry.parsing.model import NEURAL_PATH
    from address_registry.parsing.neural import NeuralEmitter

    with np.load(NEURAL_PATH) as z:
        d = {k: z[k] for k in z.files}
    d["labels"] = d["labels"][::-1]
    bad = tmp_path / "nn.bin"
    with open(bad, "wb") as f:
        np.savez(f, **d)
    with pytest.raises(ValueError, match="tag set"):
        NeuralEmitter(bad, [str(x) for x in d["labels"][::-1]])


def test_shipped_ensemble_sums_its_members(dev):
    """The package ships several networks (nn_weights.bin, nn_weights_<n>.bin); the parser loads them all and
    adds their scores: the ensemble's emissions equal the sum of each network's own."""
    import numpy as np

    from address_registry.parsing import default_parser
    from address_registry.parsing.model import NEURAL_PATH, neural_files
    from address_registry.parsing.neural import NeuralEmitter
    from address_registry.parsing.normalize import tokenize_fast

    files = neural_files(NEURAL_PATH)
    assert len(files) >= 2 and files[0] == NEURAL_PATH
    parser = default_parser()
    assert len(parser.neural.members) == len(files)
    toks = [tokenize_fast(g.text) for g in dev[:200]]
    _, flags, lengths = parser.features.batch(toks)
    total = parser.neural.emissions(toks, flags, lengths)
    each = [NeuralEmitter(f, parser.model.labels).emissions(toks, flags, lengths) for f in files]
    np.testing.assert_allclose(total, sum(each), rtol=1e-5, atol=1e-4)
    # members differ (different seeds), so the ensemble is not one network counted twice
    assert not np.allclose(each[0], each[1], atol=0.1)
