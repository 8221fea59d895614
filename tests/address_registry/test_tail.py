"""The geocoder's reading of what follows a road or a name (already normalised text)."""

import pytest

from address_registry.geocoder import parse_tail
from address_registry.textnorm import normalize_text


@pytest.mark.parametrize("text, expected", [
    ("32号", ("32号", None, None, None, None)),
    ("32-1号", ("32-1号", None, None, None, None)),
    ("12弄3号", ("12弄3号", None, None, None, None)),
    ("附5号", ("附5号", None, None, None, None)),
    ("15甲号", ("15甲号", None, None, None, None)),
    ("100弄", ("100弄", None, None, None, None)),
    ("32", ("32号", None, None, None, None)),
    ("32号3幢2单元3层301室", ("32号", "3幢", "2单元", "3层", "301室")),
    ("32号3-2-301", ("32号", "3幢", "2单元", None, "301室")),
    ("32号3幢2单元301", ("32号", "3幢", "2单元", None, "301室")),
    ("", (None, None, None, None, None)),
])
def test_parse_tail(text, expected):
    t = parse_tail(text)
    assert (t.house, t.building, t.unit, t.floor, t.room) == expected


def test_tail_after_normalisation_of_spoken_forms():
    t = parse_tail(normalize_text("三十二号五号楼二门十二楼1201户"))
    assert (t.house, t.building, t.unit, t.floor, t.room) == ("32号", "5幢", "2单元", "12层", "1201室")
