"""Parsing and checking OGC API Features query parameters (pure)."""

import datetime as dt

import pytest

from layers import ogc, registry

ROAD = registry.get("road")
DISTRICT = registry.get("admin_district")


def test_defaults():
    q = ogc.parse_items_query(ROAD, [])
    assert (q.limit, q.offset, q.bbox, q.filters) == (ogc.DEFAULT_LIMIT, 0, None, {})
    assert q.crs.uri == ogc.CRS84 and not q.crs.lat_first


def test_bbox_axis_order_follows_bbox_crs():
    q = ogc.parse_items_query(ROAD, [("bbox", "121.48,31.22,121.52,31.25")])
    assert q.bbox == (121.48, 31.22, 121.52, 31.25)
    q = ogc.parse_items_query(ROAD, [("bbox", "31.22,121.48,31.25,121.52"),
                                     ("bbox-crs", "http://www.opengis.net/def/crs/EPSG/0/4490")])
    assert q.bbox == (121.48, 31.22, 121.52, 31.25)


def test_property_filters_typed():
    q = ogc.parse_items_query(ROAD, [("kind", "primary"), ("oneway", "true"), ("osm_id", "42")])
    assert q.filters == {"kind": "primary", "oneway": True, "osm_id": 42}


def test_datetime_instant_and_intervals():
    assert ogc.parse_datetime("2024-05-01T00:00:00Z") == (dt.datetime(2024, 5, 1, tzinfo=dt.UTC),) * 2
    start, end = ogc.parse_datetime("../2024-05-01")
    assert start is None and end == dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    q = ogc.parse_items_query(DISTRICT, [("datetime", "2020-01-01T00:00:00Z/..")])
    assert q.datetime[0].year == 2020 and q.datetime[1] is None
    # a layer without valid time ignores datetime, but it must still be well-formed
    assert ogc.parse_items_query(ROAD, [("datetime", "2024-01-01")]).datetime is None


@pytest.mark.parametrize("params, fragment", [
    ([("bbox", "1,2,3")], "bbox"),
    ([("bbox", "a,b,c,d")], "非数字"),
    ([("bbox", "121.5,31.3,121.4,31.2")], "最小"),
    ([("bbox", "0,95,1,96")], "范围"),
    ([("limit", "0")], "limit"),
    ([("limit", str(ogc.MAX_LIMIT + 1))], "上限"),
    ([("limit", "ten")], "整数"),
    ([("offset", "-1")], "offset"),
    ([("crs", "EPSG:3857")], "坐标参考系"),
    ([("bbox-crs", "EPSG:2000"), ("bbox", "1,2,3,4")], "坐标参考系"),
    ([("bbox-crs", "EPSG:4326")], "bbox-crs"),
    ([("datetime", "yesterday")], "RFC 3339"),
    ([("datetime", "2024-02-01/2024-01-01")], "开始晚于结束"),
    ([("nosuch", "1")], "未知参数"),
    ([("osm_id", "abc")], "integer"),
    ([("limit", "1"), ("limit", "2")], "重复"),
    ([("f", "xml")], "格式"),
])
def test_bad_parameters_raise_query_error(params, fragment):
    with pytest.raises(ogc.QueryError, match=fragment):
        ogc.parse_items_query(ROAD, params)


def test_page_links_next_and_prev():
    links = ogc.page_links("http://h/collections/road/items", [("kind", "primary"), ("limit", "10")],
                           offset=10, limit=10, number_matched=25, number_returned=10)
    rels = {link["rel"]: link["href"] for link in links}
    assert "offset=20" in rels["next"] and "offset=0" in rels["prev"] and "kind=primary" in rels["next"]
    last = ogc.page_links("http://h/x", [], offset=20, limit=10, number_matched=25, number_returned=5)
    assert "next" not in {link["rel"] for link in last}


def test_query_error_is_a_bad_request_naming_the_parameter():
    from geo.errors import BadRequest
    from gis_api.errors import status_and_code

    with pytest.raises(ogc.QueryError) as info:
        ogc.parse_items_query(ROAD, [("limit", "0")])
    exc = info.value
    assert isinstance(exc, BadRequest) and isinstance(exc, ValueError)
    assert exc.param == "limit" and exc.detail == {"parameter": "limit"}
    assert status_and_code(exc) == (400, "bad_request")  # OGC API Features: a bad parameter is a 400


def test_bbox_to_wgs84_only_moves_gcj02():
    box = (121.48, 31.22, 121.52, 31.25)
    assert ogc.bbox_to_wgs84(box, ogc.parse_crs("EPSG:4326")) == box
    assert ogc.bbox_to_wgs84(None, ogc.parse_crs("gcj02")) is None
    from geo.crs import gcj02_to_wgs84

    (x0, x1), (y0, y1) = gcj02_to_wgs84([box[0], box[2]], [box[1], box[3]])
    assert ogc.bbox_to_wgs84(box, ogc.parse_crs("gcj02")) == pytest.approx((x0, y0, x1, y1))
    assert abs(x0 - box[0]) > 1e-3  # the ~500 m GCJ-02 offset was undone
