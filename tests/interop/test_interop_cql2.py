"""OGC API - Features - Part 3: CQL2 text and JSON filters on the items route, checked against SQL written by
hand, and GDAL's OAPIF driver (a client nobody here wrote) sending its attribute filter to the server."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import text

FILTER_CONF = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter"


def _ids(client, layer: str, **params) -> set:
    r = client.get(f"/collections/{layer}/items", params={**params, "limit": 10000})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["numberMatched"] == len(body["features"])
    return {f["id"] for f in body["features"]}


def _sql_ids(engine, sql: str, **params) -> set:
    with engine.connect() as conn:
        return {row[0] for row in conn.execute(text(sql), params)}


def test_conformance_declares_part3_and_cql2(client):
    conf = client.get("/conformance").json()["conformsTo"]
    assert FILTER_CONF in conf
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text" in conf
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json" in conf


CASES = [
    ("road", "CASEI(name_en) LIKE casei('%EAST%ROAD%')", "SELECT id FROM road WHERE lower(name_en) LIKE '%east%road%'"),
    ("height_m > 50 AND name LIKE '%大厦%'",
     "SELECT id FROM building WHERE height_m > 50 AND name LIKE '%大厦%'"),
    ("floors BETWEEN 10 AND 20 OR kind IN ('school', 'hospital')",
     "SELECT id FROM building WHERE floors BETWEEN 10 AND 20 OR kind IN ('school', 'hospital')"),
    ("name IS NOT NULL AND NOT (height_m < 20)",
     "SELECT id FROM building WHERE name IS NOT NULL AND height_m >= 20"),
    ("S_INTERSECTS(geometry, POLYGON((121.484 31.235, 121.492 31.235, 121.492 31.242, 121.484 31.242, "
     "121.484 31.235)))",
     "SELECT id FROM building WHERE ST_Intersects(geom, ST_MakeEnvelope(121.484, 31.235, 121.492, 31.242, 4326))"),
    ("S_INTERSECTS(geometry, BBOX(121.484, 31.235, 121.492, 31.242)) AND height_m >= 30",
     "SELECT id FROM building WHERE height_m >= 30 AND "
     "ST_Intersects(geom, ST_MakeEnvelope(121.484, 31.235, 121.492, 31.242, 4326))"),
]


@pytest.mark.parametrize(("layer", "cql", "sql"), [c if len(c) == 3 else ("building", *c) for c in CASES])
def test_cql2_text_matches_hand_written_sql(client, engine, layer, cql, sql):
    want = _sql_ids(engine, sql)
    got = _ids(client, layer, filter=cql)
    assert got == want
    assert want, "a case that selects nothing proves little"


def test_cql2_json_and_the_cql_text_alias(client, engine):
    want = _sql_ids(engine, "SELECT id FROM road WHERE kind = 'primary' AND name LIKE '%路'")
    as_json = {"op": "and", "args": [{"op": "=", "args": [{"property": "kind"}, "primary"]},
                                     {"op": "like", "args": [{"property": "name"}, "%路"]}]}
    assert _ids(client, "road", filter=orjson.dumps(as_json).decode(), **{"filter-lang": "cql2-json"}) == want
    assert _ids(client, "road", filter="kind = 'primary' AND name LIKE '%路'", **{"filter-lang": "cql-text"}) == want
    # GDAL 3.6 style (pre-CQL2 ECQL) still parses under the alias
    ecql = "kind = 'primary' AND BBOX(geom, 121.0, 31.0, 122.0, 32.0)"
    assert _ids(client, "road", filter=ecql, **{"filter-lang": "cql-text"}) == _sql_ids(
        engine, "SELECT id FROM road WHERE kind = 'primary'")
    # filters combine with bbox and the property equality parameters
    both = _ids(client, "road", filter="name LIKE '%路'", kind="primary", bbox="121.48,31.22,121.50,31.25")
    assert both == _sql_ids(engine, "SELECT id FROM road WHERE kind = 'primary' AND name LIKE '%路' AND "
                                    "ST_Intersects(geom, ST_MakeEnvelope(121.48, 31.22, 121.50, 31.25, 4326))")


def test_ecql_dwithin_in_metres(client, engine):
    want = _sql_ids(engine, "SELECT id FROM poi WHERE ST_DWithin(geom::geography, "
                            "ST_SetSRID(ST_MakePoint(121.4903, 31.2397), 4326)::geography, 300)")
    assert want
    # DWITHIN is ECQL (not in CQL2 text): accepted under the cql-text alias
    got = _ids(client, "poi", filter="DWITHIN(geometry, POINT(121.4903 31.2397), 300, meters)",
               **{"filter-lang": "cql-text"})
    assert got == want


@pytest.mark.parametrize(("params", "param"), [
    ({"filter": "nosuch = 1"}, "filter"),
    ({"filter": "height_m > 'tall'"}, "filter"),
    ({"filter": "name = "}, "filter"),
    ({"filter": "height_m > 1; DROP TABLE building"}, "filter"),
    ({"filter": "S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))"}, "filter"),
    ({"filter": "{\"op\": \"=\"", "filter-lang": "cql2-json"}, "filter"),
    ({"filter": "name = 'x'", "filter-lang": "sql"}, "filter-lang"),
    ({"filter-lang": "cql2-text"}, "filter"),
    ({"filter": "name = 'x'", "filter-crs": "http://www.opengis.net/def/crs/EPSG/0/3857"}, "filter-crs"),
    ({"filter": "T_AFTER(valid_from, TIMESTAMP('2024-01-01T00:00:00Z'))"}, "filter"),
])
def test_bad_filters_are_400_naming_the_parameter(client, engine, params, param):
    r = client.get("/collections/building/items", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["detail"]["parameter"] == param
    with engine.connect() as conn:  # nothing was dropped
        assert conn.execute(text("SELECT count(*) FROM building")).scalar_one() > 1000


def test_gdal_oapif_driver_sends_its_filter_to_the_server(live_server, engine):
    """GDAL (pyogrio's bundled libgdal) reads the layer through ``OAPIF:`` with an attribute filter, in its own
    process (GDAL holds the GIL while it waits on HTTP, which would starve the in-process server)."""
    import json
    import subprocess
    import sys

    want = _sql_ids(engine, "SELECT id FROM building WHERE height_m > 60 AND name LIKE '%大厦%'")
    assert want
    code = (
        "import json, sys, pyogrio\n"
        "df = pyogrio.read_dataframe('OAPIF:' + sys.argv[1], layer='building', fid_as_index=True,\n"
        "                            where=\"height_m > 60 AND name LIKE '%大厦%'\")\n"
        "print(json.dumps({'ids': [int(i) for i in df.index], 'names': list(df['name']),\n"
        "                  'height_dtype': str(df['height_m'].dtype)}))\n"
    )
    env = {"CPL_DEBUG": "ON", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", code, live_server], capture_output=True, text=True,
                         timeout=120, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout)
    assert set(out["ids"]) == want
    assert all("大厦" in n for n in out["names"])
    # GDAL typed its fields from the collection's feature schema (describedby), not from a sample
    assert out["height_dtype"] == "float64" and "Lossy conversion" not in run.stderr
    assert "Using JSON schema" in run.stderr
    # the filter ran on the server: GDAL's debug log shows the request it sent
    assert "filter=" in run.stderr and "filter-lang=cql-text" in run.stderr
    assert "evaluated on client side" not in run.stderr


def test_feature_schema_is_the_describedby_link(client, anon_client):
    coll = client.get("/collections/building").json()
    href = next(lk["href"] for lk in coll["links"] if lk["rel"] == "describedby")
    schema = client.get(href.removeprefix("http://testserver")).json()
    props = schema["properties"]["properties"]["properties"]
    assert props["height_m"]["type"] == "number" and props["floors"]["type"] == "integer"
    assert props["name"]["title"] == "名称"
    assert anon_client.get("/collections/street_block/schema").status_code == 401
    assert client.get("/collections/nosuch/schema").status_code == 404
