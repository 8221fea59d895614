"""Normalisation used by the address parser: width, Chinese numerals, variant words, offset maps."""

import pytest

from address_registry.parsing import normalize, normalize_with_offsets, tokenize
from address_registry.parsing.normalize import chinese_numeral_value


@pytest.mark.parametrize(
    ("numeral", "value"),
    [("三十二", 32), ("十", 10), ("十一", 11), ("二十", 20), ("一百零五", 105), ("一百二十", 120),
     ("二零一", 201), ("二〇一", 201), ("两", 2), ("九", 9), ("三千零六", 3006)],
)  # fmt: skip
def test_chinese_numeral_value(numeral, value):
    assert chinese_numeral_value(numeral) == value


@pytest.mark.parametrize("bad", ["", "三a", "十十", "百十百", "路"])
def test_chinese_numeral_value_rejects(bad):
    assert chinese_numeral_value(bad) is None


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("杭州市文三路三十二号", "杭州市文三路32号"),
        ("文三路３２号３栋２门５０１户", "文三路32号3幢2单元501室"),
        ("Ａ座１２０１室", "A幢1201室"),
        ("12号楼3单元", "12幢3单元"),
        ("七弄十一号二〇一室", "7弄11号201室"),
        ("八楼整层", "8楼整层"),
        ("第三层", "第3层"),
        # names are not numbers: no suffix, or the suffix starts a place name
        ("八一路", "八一路"),
        ("三门县海游镇", "三门县海游镇"),
        ("五楼村", "五楼村"),
        ("九溪", "九溪"),
        ("一号线", "1号线"),
        ("浙江省　杭州市", "浙江省 杭州市"),
        ("１２—３", "12-3"),
    ],
)
def test_normalize(raw, norm):
    assert normalize(raw) == norm


def test_normalize_is_idempotent():
    s = normalize("文三路三十二号３栋２门５０１户")
    assert normalize(s) == s


def test_offset_map_points_into_original():
    raw = "文三路三十二号３栋２门"
    norm, offs = normalize_with_offsets(raw)
    assert norm == "文三路32号3幢2单元"
    assert len(offs) == len(norm) + 1 and offs[-1] == len(raw)
    assert raw[offs[norm.index("32")]] == "三"  # digits point at the numeral's first character
    assert raw[offs[norm.index("号")]] == "号"
    assert raw[offs[norm.index("幢")]] == "栋"
    assert raw[offs[norm.index("单元")]] == "门"
    assert offs == sorted(offs)


def test_tokens_cover_original_text():
    raw = "ＡＢ座 三十二号, tel:13812345678"
    tokens = tokenize(raw)
    assert tokens[0].start == 0 and tokens[-1].end == len(raw)
    assert all(a.end == b.start for a, b in zip(tokens, tokens[1:], strict=False))
    by_norm = {t.norm: t for t in tokens}
    assert by_norm["AB"] == ("AB", 0, 2)
    assert raw[by_norm["32"].start : by_norm["32"].end] == "三十二"
    assert by_norm["13812345678"].end - by_norm["13812345678"].start == 11


def test_fast_tokenizer_matches_tokenize():
    from address_registry.parsing.normalize import tokenize_fast

    for raw in ["", "文三路三十二号３栋２门５０１户", "ＡＢ座 tel:13812345678", "八一路二〇一室 X1y2"]:
        assert [tuple(t) for t in tokenize(raw)] == tokenize_fast(raw)
