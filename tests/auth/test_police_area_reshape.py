"""Reshaping a stored police-station area (派出所辖区): GET /police-areas/{code} and PUT with a new outline,
on a real community of the demo: the version goes up, a point of the land gained is now inside the area
(so a police account granted the code acts there), a stale base version is 412, a bad polygon 422, an
unknown code 404, nothing written on a refusal; who may read and reshape (route × role)."""

from __future__ import annotations

import json

import pytest
from shapely.geometry import Point, mapping, shape
from sqlalchemy import text

from grid_builder.geom import to_metric, to_wgs84

CODE = "M-PA-RESHAPE"


@pytest.fixture
def area(engine, jurisdictions):
    """A 100 m × 80 m area over the test community, deleted afterwards."""
    with engine.begin() as conn:
        x, y = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM admin_unit "
                                 "WHERE code = :c) s"), {"c": jurisdictions["community"]}).one()
        c = to_metric(Point(x, y))
        corners = [to_wgs84(Point(c.x + dx, c.y + dy)) for dx, dy in ((-50, -40), (50, -40), (50, 40), (-50, 40))]
        ring = [[p.x, p.y] for p in [*corners, corners[0]]]
        conn.execute(text("DELETE FROM police_area WHERE code = :c"), {"c": CODE})
        conn.execute(text("INSERT INTO police_area (code, name, source, geom) VALUES (:c, '重塑测试派出所', 'test', "
                          "ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326)))"),
                     {"c": CODE, "g": json.dumps({"type": "Polygon", "coordinates": [ring]})})
    yield {"ring": ring, "centre": c}
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM police_area WHERE code = :c"), {"c": CODE})


def _row(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT version, source, md5(ST_AsBinary(geom)) FROM police_area WHERE code = :c"),
                            {"c": CODE}).one()


def test_admin_reshapes_a_stored_police_area(anon_client, role_headers, engine, area):
    from gis_api.auth import store

    admin = role_headers["admin"]
    got = anon_client.get(f"/police-areas/{CODE}", headers=admin).json()
    assert got["properties"]["version"] == 1 and got["properties"]["name"] == "重塑测试派出所"
    assert shape(got["geometry"]).area > 0
    c = area["centre"]
    pulled = to_wgs84(Point(c.x + 90, c.y + 40))  # the north-east corner pulled 40 m east
    ring = [list(p) for p in area["ring"]]
    ring[2] = [pulled.x, pulled.y]
    gained = to_wgs84(Point(c.x + 60, c.y + 30))  # outside the old rectangle, inside the new outline
    with engine.connect() as conn:
        assert CODE not in store.police_areas_at(conn, gained.x, gained.y)
    res = anon_client.put(f"/police-areas/{CODE}", headers=admin,
                          json={"geometry": {"type": "Polygon", "coordinates": [ring]}, "base_version": 1})
    assert res.status_code == 200, res.text
    assert res.json()["properties"]["version"] == 2 and res.json()["properties"]["source"] == "edit"
    with engine.connect() as conn:
        assert CODE in store.police_areas_at(conn, gained.x, gained.y)  # the police jurisdiction follows at once
        area_m2 = conn.execute(text("SELECT ST_Area(geom::geography) FROM police_area WHERE code = :c"),
                               {"c": CODE}).scalar()
    assert abs(area_m2 - (100 * 80 + 40 * 80 / 2)) < 0.02 * 9600  # the rectangle plus the triangle gained

    before = _row(engine)
    stale = anon_client.put(f"/police-areas/{CODE}", headers=admin,
                            json={"geometry": {"type": "Polygon", "coordinates": [area["ring"]]}, "base_version": 1})
    assert stale.status_code == 412 and stale.json()["error"] == "stale_version"
    bow = [area["ring"][0], area["ring"][2], area["ring"][1], area["ring"][3], area["ring"][0]]  # self-crossing
    bad = anon_client.put(f"/police-areas/{CODE}", headers=admin,
                          json={"geometry": {"type": "Point", "coordinates": area["ring"][0]}})
    assert bad.status_code == 422
    outside = anon_client.put(f"/police-areas/{CODE}", headers=admin,
                              json={"geometry": mapping(Point(2.35, 48.85).buffer(0.01))})  # Paris
    assert outside.status_code == 422
    assert _row(engine) == before  # nothing written by a refusal
    assert anon_client.put("/police-areas/M-PA-NONE", headers=admin,
                           json={"geometry": {"type": "Polygon", "coordinates": [bow]}}).status_code == 404
    assert anon_client.get("/police-areas/M-PA-NONE", headers=admin).status_code == 404


@pytest.mark.parametrize("role,read,write", [
    ("admin", 200, 200), ("police", 200, 403), ("street", 200, 403), ("community", 403, 403),
    ("grid_manager", 403, 403), ("planner", 403, 403), ("public", 401, 401),
])
def test_police_area_routes_by_role(anon_client, role_headers, engine, area, role, read, write):
    h = role_headers[role]
    assert anon_client.get(f"/police-areas/{CODE}", headers=h).status_code == read
    before = _row(engine)
    res = anon_client.put(f"/police-areas/{CODE}", headers=h,
                          json={"geometry": {"type": "Polygon", "coordinates": [area["ring"]]}})
    assert res.status_code == write
    if write != 200:
        assert _row(engine) == before
