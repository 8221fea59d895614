"""A standard OGC API Features client (OWSLib, as QGIS-like tools do) reads every layer."""

import pytest

pytest.importorskip("owslib", reason="OWSLib is in the test extra: pip install -e .[test]")

BASE_LAYERS = {"water", "admin_district", "building", "railway", "road", "poi", "demo_address_point"}


def test_owslib_reads_every_collection(live_server):
    from owslib.ogcapi.features import Features

    api = Features(live_server)
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in api.conformance()["conformsTo"]
    collections = api.collections()["collections"]
    ids = [c["id"] for c in collections]
    assert {"building", "road", "poi", "admin_district"} <= set(ids)
    for cid in ids:
        meta = api.collection(cid)
        assert meta["id"] == cid
        fc = api.collection_items(cid, limit=5)
        assert fc["type"] == "FeatureCollection"
        assert len(fc["features"]) == min(5, fc["numberMatched"]), cid
        if cid in BASE_LAYERS:
            assert fc["numberMatched"] > 0, cid
        if not fc["features"]:
            continue  # e.g. townships before the grid builder has derived them
        fid = fc["features"][0]["id"]
        one = api.collection_item(cid, str(fid))
        assert one["id"] == fid
    queryables = api.collection_queryables("road")
    assert "kind" in queryables["properties"]


def test_owslib_bbox_query(live_server):
    from owslib.ogcapi.features import Features

    api = Features(live_server)
    fc = api.collection_items("building", bbox=[121.484, 31.235, 121.492, 31.242], limit=500)
    assert 10 < fc["numberReturned"] == fc["numberMatched"]
