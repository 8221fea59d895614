"""The geocoder's use of the free-text parser: only when its own matcher has no street-level answer."""

import re
from dataclasses import dataclass

import pytest

from address_registry import store
from address_registry.geocoder import Geocoder
from address_registry.service import free_text_parser

CHATTY = "麻烦送到陆家嘴那边那个世纪大到1号谢谢师傅"


@dataclass
class Span:
    label: str
    text: str
    start: int
    end: int


def street_only_parser(text):
    """A tiny rule parser with the parsing API's shape: the street and number are labelled, the rest
    is 'redundant'."""
    m = re.search(r"([\u4e00-\u9fff]{2}大[道到])(\d+号)", text)
    if not m:
        return [Span("redundant", text, 0, len(text))]
    return [Span("redundant", text[: m.start()], 0, m.start()), Span("road", m[1], m.start(1), m.end(1)),
            Span("roadno", m[2], m.start(2), m.end(2)), Span("redundant", text[m.end():], m.end(), len(text))]


@pytest.fixture(scope="module")
def inputs(engine, registry):
    with engine.connect() as conn:
        return store.load_geocoder_inputs(conn)


def test_parser_cleans_chatty_text_when_the_matcher_alone_fails(inputs):
    plain = Geocoder(**inputs)
    assert not plain.geocode(CHATTY) or plain.geocode(CHATTY)[0]["level"] in ("district", "township", "community")
    helped = Geocoder(**inputs, parser=street_only_parser)
    best = helped.geocode(CHATTY)[0]
    assert best["formatted"].endswith("世纪大道1号") and best["score"] < 1
    # a good query never goes through the parser
    calls = []
    counted = Geocoder(**inputs, parser=lambda t: calls.append(t) or street_only_parser(t))
    assert counted.geocode("世纪大道1号")[0]["score"] == 1.0 and calls == []


def test_a_failing_parser_does_not_fail_geocoding(inputs):
    def broken(_text):
        raise RuntimeError("model missing")

    g = Geocoder(**inputs, parser=broken)
    assert g.geocode(CHATTY) == Geocoder(**inputs).geocode(CHATTY)


def test_with_the_shipped_parser(inputs):
    parse = free_text_parser()
    if parse is None:
        pytest.skip("address_registry.parsing has no usable model in this checkout yet")
    g = Geocoder(**inputs, parser=parse)
    best = g.geocode("收件人：王先生 13912345678 上海市浦东新区世纪大道1号")[0]
    assert best["formatted"].endswith("世纪大道1号")
