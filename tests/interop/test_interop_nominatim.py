"""Nominatim-compatible geocoding, checked with geopy's own ``Nominatim`` geocoder against a live server, and
the formats against the native ``/geocode`` and ``/reverse`` answers."""

from __future__ import annotations

import pytest

ADDRESS = "上海市浦东新区世纪大道1号"


@pytest.fixture(scope="module")
def registry(engine):
    """The demo standard-address registry (idempotent build, as the address tests do)."""
    from address_registry.service import build_registry

    with engine.begin() as conn:
        return build_registry(conn)


@pytest.fixture(scope="module")
def geopy_nominatim(live_server, registry):
    from geopy.geocoders import Nominatim

    return Nominatim(domain=live_server.removeprefix("http://") + "/nominatim", scheme="http",
                     user_agent="shequ-gis-tests", timeout=30)


def test_geopy_search_finds_the_native_best_result(geopy_nominatim, client):
    native = client.get("/geocode", params={"q": ADDRESS}).json()["results"][0]
    loc = geopy_nominatim.geocode(ADDRESS, addressdetails=True)
    assert loc is not None
    assert loc.address == native["formatted"]
    assert abs(loc.longitude - native["lon"]) < 1e-6 and abs(loc.latitude - native["lat"]) < 1e-6
    assert loc.raw["shequ:address_code"] == native["address_code"]
    assert loc.raw["address"]["road"] == "世纪大道" and loc.raw["address"]["country_code"] == "cn"
    many = geopy_nominatim.geocode("世纪大道", exactly_one=False, limit=3)
    assert 1 <= len(many) <= 3


def test_geopy_structured_query_and_reverse(geopy_nominatim, client):
    loc = geopy_nominatim.geocode({"city": "上海市", "county": "浦东新区", "street": "世纪大道1号"})
    assert loc is not None and loc.address.endswith("世纪大道1号")
    native = client.get("/reverse", params={"lon": loc.longitude, "lat": loc.latitude}).json()
    back = geopy_nominatim.reverse((loc.latitude, loc.longitude))
    assert back is not None
    assert back.raw["shequ:address_code"] == native["address"]["address_code"]
    assert back.address == native["address"]["formatted"]
    assert back.raw["shequ:grid"] == native["grid"]


def test_viewbox_bounded_keeps_only_results_inside(client, registry):
    everywhere = client.get("/nominatim/search", params={"q": "世纪大道", "limit": 20}).json()
    assert everywhere
    lat0, lon0 = float(everywhere[0]["lat"]), float(everywhere[0]["lon"])
    box = f"{lon0 - 0.001},{lat0 + 0.001},{lon0 + 0.001},{lat0 - 0.001}"
    inside = client.get("/nominatim/search", params={"q": "世纪大道", "viewbox": box, "bounded": 1}).json()
    assert inside and all(abs(float(p["lon"]) - lon0) <= 0.001 and abs(float(p["lat"]) - lat0) <= 0.001
                          for p in inside)


@pytest.mark.parametrize("fmt", ["json", "jsonv2", "geojson", "geocodejson"])
def test_formats(client, registry, fmt):
    r = client.get("/nominatim/search", params={"q": ADDRESS, "format": fmt, "addressdetails": 1, "limit": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    if fmt in ("json", "jsonv2"):
        assert isinstance(body, list) and body[0]["display_name"].endswith("世纪大道1号")
        assert ("category" in body[0]) == (fmt == "jsonv2") and ("class" in body[0]) == (fmt == "json")
    else:
        feat = body["features"][0]
        assert body["type"] == "FeatureCollection" and feat["geometry"]["type"] == "Point"
        props = feat["properties"]["geocoding"] if fmt == "geocodejson" else feat["properties"]
        assert props["shequ:address_code"]
        if fmt == "geocodejson":
            assert body["geocoding"]["query"] == ADDRESS and props["street"] == "世纪大道"


def test_lookup_and_status(client, registry):
    best = client.get("/nominatim/search", params={"q": ADDRESS, "limit": 1}).json()[0]
    code = best["shequ:address_code"]
    got = client.get("/nominatim/lookup", params={"osm_ids": f"{code},nosuchcode", "format": "json"}).json()
    assert [p["shequ:address_code"] for p in got] == [code]
    assert client.get("/nominatim/status").text == "OK"
    assert client.get("/nominatim/status", params={"format": "json"}).json()["status"] == 0


@pytest.mark.parametrize(("params", "param"), [
    ({"q": ADDRESS, "format": "xml"}, "format"),
    ({}, "q"),
    ({"q": ADDRESS, "street": "世纪大道1号"}, "q"),
    ({"q": ADDRESS, "viewbox": "1,2,3"}, "viewbox"),
    ({"q": ADDRESS, "bounded": "yes"}, "bounded"),
    ({"q": ADDRESS, "limit": "ten"}, "limit"),
])
def test_bad_search_parameters_are_400(client, registry, params, param):
    r = client.get("/nominatim/search", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["detail"]["parameter"] == param


def test_reverse_needs_lat_and_lon(client, registry):
    r = client.get("/nominatim/reverse", params={"lat": "31.2"})
    assert r.status_code == 400 and r.json()["detail"]["parameter"] == "lon"
    r = client.get("/nominatim/reverse", params={"lat": "95", "lon": "121"})
    assert r.status_code == 400 and r.json()["detail"]["parameter"] == "lat"
