"""Normalisation shared by registry keys and geocoder queries."""

from address_registry.textnorm import (
    cn_to_int,
    house_number_parts,
    int_to_cn,
    normalize_house_number,
    normalize_text,
)


def test_numbers_variants_and_noise():
    assert normalize_text("上海市黄浦区中山东一路三十二号３幢二单元三楼301户") == "上海市黄浦区中山东一路32号3幢2单元3层301室"
    assert normalize_text("中山東二路32-1號 5座 2门 1201室") == "中山东二路32-1号5幢2单元1201室"
    assert normalize_text("浦东新区 世纪大道 1号, 张三 13812345678") == "浦东新区世纪大道1号张三"
    assert normalize_text("南京东路第一百零五号") == "南京东路105号"


def test_numerals_inside_names_are_kept():
    assert normalize_text("中山东一路") == "中山东一路"
    assert normalize_text("六门路三号") == "六门路3号"
    assert normalize_text("十六铺") == "十六铺"


def test_chinese_numerals_round_trip():
    for n in range(1, 3000):
        assert cn_to_int(int_to_cn(n)) == n
    assert cn_to_int("二〇三") == 203


def test_house_numbers():
    assert normalize_house_number("32") == "32号"
    assert normalize_house_number("32-1") == "32-1号"
    assert house_number_parts("12弄3号") == {"lane": 12, "fu": False, "main": 3, "sub": None}
    assert house_number_parts("附5号")["fu"] is True
    assert house_number_parts("32-1号")["sub"] == 1
    assert house_number_parts("100弄")["lane_only"] is True
    assert house_number_parts("东门") is None
