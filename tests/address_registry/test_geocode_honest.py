"""Geocoding the addresses people write, on the real demo registry: numbers the registry lacks placed
from real anchors (direction, parity, extrapolation, road stretch), the accuracy radius and source on
every answer, fuzzy matches refused when unsure, building names, text after the number, reverse
geocoding by footprint."""

import math

import pytest
from shapely.geometry import Point
from sqlalchemy import text

from address_registry.accuracy import MODEL, radius_m
from address_registry.interpolation import Anchor, estimate, fit_road
from address_registry.numbering import signed_offset


def _m(g, a, b):
    x1, y1 = g.projection.forward(a["lon"], a["lat"])
    x2, y2 = g.projection.forward(b.lon, b.lat) if hasattr(b, "lon") else g.projection.forward(b["lon"], b["lat"])
    return float(math.hypot(x1 - x2, y1 - y2))


def _road(g, name):
    return g.roads_by_name[name][0]


def _missing(g, road_code, numbers):
    """The first of ``numbers`` the registry does not hold on the road."""
    return next(n for n in numbers if (road_code, f"{n}号") not in g.below)


def test_missing_number_between_real_anchors_is_interpolated_and_within_its_radius(geocoder):
    # 中山东一路13号 (OSM) held out of the index: placed between its real neighbours
    road = _road(geocoder, "中山东一路")
    code = geocoder.below[(road, "13号")]
    truth = geocoder.by_code[code]
    with geocoder.held_out([code]):
        best = geocoder.geocode("上海市黄浦区中山东一路13号", 1)[0]
        assert (road, "13号") not in geocoder.below
    assert best["level"] == "house_number_interpolated" and best["accuracy"] == "interpolated"
    assert best["source"] is None and len(best["anchors"]) == 2
    assert _m(geocoder, best, truth) <= best["radius_m"] and _m(geocoder, best, truth) < 100
    # held_out restored the index
    assert geocoder.geocode("上海市黄浦区中山东一路13号", 1)[0]["address_code"] == code


def test_direction_and_parity_sides_learned_from_real_anchors(geocoder):
    # 四川中路: odd numbers on one side, even on the other, numbers growing along the axis
    road = _road(geocoder, "四川中路")
    numbering = geocoder.numbering[road]
    assert numbering.real and numbering.side[0] == -numbering.side[1]
    axis = geocoder.axes[road]
    odd = _missing(geocoder, road, range(135, 175, 2))
    even = _missing(geocoder, road, range(138, 220, 2))
    points = {}
    for n in (odd, even):
        res = geocoder.geocode(f"四川中路{n}号", 1)[0]
        assert res["accuracy"] == "interpolated", res
        x, y = geocoder.projection.forward(res["lon"], res["lat"])
        points[n] = Point(float(x), float(y))
        assert math.copysign(1, signed_offset(axis, points[n])) == numbering.side[n % 2]
    # the higher number lies farther along the direction the real numbers grow
    low = _missing(geocoder, road, range(41, 99, 2))
    res = geocoder.geocode(f"四川中路{low}号", 1)[0]
    x, y = geocoder.projection.forward(res["lon"], res["lat"])
    assert (axis.project(points[odd]) - axis.project(Point(float(x), float(y)))) * numbering.slope > 0


def test_direction_runs_either_way_and_sides_follow_the_anchors():
    # pure: numbers decreasing along the axis, odd on the right
    anchors = [Anchor(n, 500 - 5 * n, -12.0 if n % 2 else 12.0, True, str(n), 0, 0) for n in (11, 21, 31, 12, 40)]
    road = fit_road(600.0, anchors)
    assert road.slope == pytest.approx(-5.0) and road.side == {1: -1.0, 0: 1.0}
    est = estimate(road, 25)
    assert est.kind == "interpolated" and est.anchors == (21, 31)


def test_extrapolation_is_short_then_a_road_stretch_not_a_midpoint(geocoder):
    road = _road(geocoder, "四川中路")
    top = max(a.number for a in geocoder.numbering[road].anchors)
    near = geocoder.geocode(f"四川中路{_missing(geocoder, road, range(top + 2, top + 20, 2))}号", 1)[0]
    assert near["level"] == "house_number_interpolated" and near["accuracy"] == "extrapolated"
    assert near["anchors"] == [f"{top}号"]
    far = geocoder.geocode("四川中路2000号", 1)[0]
    assert far["level"] == "road" and far["accuracy"] == "road_stretch" and far["anchors"] == [f"{top}号"]
    assert far["radius_m"] > near["radius_m"]
    # at the end of the road the numbers run towards, not the road's own (middle) point
    rec = geocoder.by_code[road]
    axis = geocoder.axes[road]
    x, y = geocoder.projection.forward(far["lon"], far["lat"])
    m = axis.project(Point(float(x), float(y)))
    assert m > 0.9 * axis.length and _m(geocoder, far, rec) > 200


def test_every_answer_has_accuracy_radius_and_source(geocoder):
    for q in ("世纪大道1号", "黄浦区九江路", "浦东新区", "上海市黄浦区中山东一路11号"):
        for res in geocoder.geocode(q, 3):
            assert res["accuracy"] in MODEL and res["radius_m"] > 0, res
            assert res["source"] in ("osm", "generated", "import", "manual", None)
    best = geocoder.geocode("世纪大道1号", 1)[0]
    assert best["accuracy"] == "surveyed" and best["source"] == "osm" and best["radius_m"] >= radius_m("surveyed")
    # a generated number the real numbers contradict: still the registry's own address first, less sure
    gen = geocoder.geocode("上海市黄浦区中山东一路11号", 2)
    assert gen[0]["source"] == "generated" and gen[0]["score"] == 0.9
    assert gen[1]["accuracy"] == "interpolated" and gen[0]["radius_m"] >= _m(geocoder, gen[0], gen[1])


@pytest.mark.parametrize("q", ["新泰路57号", "上海市黄浦区新泰路57号"])
def test_ambiguous_fuzzy_road_is_refused(geocoder, q):
    # 新泰路 is no road here; 新路 is one character short of it: a candidate at most, never a sure answer
    res = geocoder.geocode(q, 3)
    assert all(r["score"] < 0.5 for r in res), res


def test_fuzzy_needs_the_named_district(geocoder):
    assert geocoder.geocode("宁博路", 1)[0]["formatted"].endswith("宁波路")
    assert geocoder.geocode("宁博路", 1)[0]["score"] > 0.9  # a homophone slip is sure
    wrong_district = geocoder.geocode("浦东新区宁博路", 1)[0]  # 宁波路 is in 黄浦区
    assert wrong_district["score"] < 0.5


def test_building_names_match_whole_or_as_the_unique_longer_name(geocoder):
    best = geocoder.geocode("星展银行大厦", 1)[0]
    assert best["accuracy"] == "named" and best["formatted"].endswith("陆家嘴环路1318号")
    part = geocoder.geocode("国际会议中心", 1)[0]
    full = geocoder.geocode("上海国际会议中心", 1)[0]
    assert part["address_code"] == full["address_code"] and part["score"] > 0.9
    # another building's name with a word in front is not that building
    assert geocoder.geocode("前汇丰银行大楼", 1)[0]["score"] < 0.5


def test_text_after_the_number_is_kept_as_detail(geocoder):
    best = geocoder.geocode("上海市浦东新区银城中路8号105室", 1)[0]
    assert best["components"]["house_number"] == "8号" and best["components"]["road"] == "银城中路"
    assert best["level"] == "house_number_interpolated" and best["detail"] == "105室"
    shop = geocoder.geocode("福州路89号上海书城", 1)[0]
    assert shop["formatted"].endswith("福州路89号") and shop["accuracy"] == "surveyed"
    assert shop["detail"] == "上海书城" and shop["score"] == 1.0
    floor = geocoder.geocode("星展银行大厦3楼", 1)[0]
    assert floor["formatted"].endswith("陆家嘴环路1318号") and floor["detail"] == "3层"


def test_reverse_answers_the_footprint_holding_the_point(client, registry, engine):
    with engine.connect() as conn:
        row = conn.execute(text("""
            SELECT s.code, ST_X(ST_PointOnSurface(b.geom)) AS x, ST_Y(ST_PointOnSurface(b.geom)) AS y,
                   ST_X(s.geom) AS px, ST_Y(s.geom) AS py
            FROM standard_address s JOIN building b ON b.id = s.building_id
            WHERE s.valid_to IS NULL AND s.level = 'house_number' AND s.source = 'osm'
              AND ST_Area(b.geom::geography) > 2000 ORDER BY s.code LIMIT 1""")).first()
    body = client.get("/reverse", params={"lon": row.x, "lat": row.y, "limit": 3}).json()
    a = body["address"]
    assert a["address_code"] == row.code and a["match"] == "footprint" and a["distance_m"] == 0
    assert a["accuracy"] == "surveyed" and a["source"] == "osm" and a["radius_m"] >= 10
    assert all("radius_m" in n and "source" in n for n in body["nearby"])


def test_geocode_api_documents_and_returns_the_new_fields(client, registry):
    res = client.get("/geocode", params={"q": "上海市浦东新区银城中路8号105室"}).json()["results"][0]
    assert {"accuracy", "radius_m", "source", "anchors", "evidence_m", "detail"} <= set(res)
    doc = client.get("/openapi.json").json()["paths"]["/geocode"]["get"]["description"]
    assert "radius_m" in doc and "accuracy" in doc and "source" in doc


def test_a_lane_number_the_registry_lacks_is_placed_at_its_lane(geocoder):
    # 四川中路126弄5-21号 (OSM) held out: the lane opens onto 四川中路 at number 126
    road = _road(geocoder, "四川中路")
    code = geocoder.below[(road, "126弄5-21号")]
    truth = geocoder.by_code[code]
    with geocoder.held_out([code]):
        best = geocoder.geocode("四川中路126弄5-21号", 1)[0]
    assert best["level"] == "house_number_interpolated" and best["components"]["house_number"] == "126弄5-21号"
    assert _m(geocoder, best, truth) <= best["radius_m"]
